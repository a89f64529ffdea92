//! The plain manifests (`manifests/supportgate.yaml`) install with one `kubectl apply` on a
//! fresh cluster, and one `kubectl delete` of the same file leaves no webhook configuration.

use crate::cluster::{CRD_NAME, delete_project_crd, exclusive};
use crate::render::strs;
use crate::support::chart::get_json;
use crate::support::{ControlPlane, stderr, stdout};

#[test]
fn the_plain_manifests_install_with_one_kubectl_apply_on_a_fresh_cluster() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    delete_project_crd(cp);

    let o = cp.kubectl(&["apply", "--server-side", "-f", "manifests/supportgate.yaml"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for line in [
        "namespace/supportgate serverside-applied",
        "customresourcedefinition.apiextensions.k8s.io/supportpolicies.supportgate.dev serverside-applied",
        "deployment.apps/supportgate serverside-applied",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/supportgate serverside-applied",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(!stderr(&o).contains("PodSecurity"), "{}", stderr(&o));

    let ns = get_json(cp, &["namespace", "supportgate"]);
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // No policy in the file (it would race its own CRD's discovery): the pods create it.
    assert!(!out.contains("supportpolicy"), "{out}");
    let deploy = get_json(cp, &["-n", "supportgate", "deployment", "supportgate"]);
    let args = strs(&deploy["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(
        args.iter().any(|a| a == "--create-default-policy"),
        "{args:?}"
    );
    let vwc = get_json(cp, &["validatingwebhookconfiguration", "supportgate"]);
    let webhook = &vwc["webhooks"][0];
    assert_eq!(
        webhook["clientConfig"]["service"]["namespace"],
        "supportgate"
    );
    assert!(
        webhook["clientConfig"]["caBundle"].is_null(),
        "the caBundle is supportgate's to write: {webhook}"
    );

    // Removal: the same file, and no webhook configuration is left to block anything.
    let o = cp.kubectl(&[
        "delete",
        "-f",
        "manifests/supportgate.yaml",
        "--ignore-not-found",
        "--wait=false",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    cp.kubectl_ok(&["wait", "--for=delete", CRD_NAME, "--timeout=60s"], None);
    let left = cp.kubectl_ok(
        &["get", "validatingwebhookconfigurations", "-o", "name"],
        None,
    );
    assert!(!left.contains("/supportgate\n"), "{left}");
}
