//! `helm install` in the cert-manager mode: a Certificate (self-signed Issuer) makes the
//! Secret and cert-manager injects the caBundle; supportgate may neither write that Secret nor
//! create one, and uninstall leaves no webhook configuration or Certificate behind.

use serde_json::json;

use crate::cluster::exclusive;
use crate::rbac::{allowed, expected_rbac, rule_lines};
use crate::render::strs;
use crate::support::chart::{CHART, Release, get_json, helm_ok};
use crate::support::{ControlPlane, stderr};

const NS: &str = "sgcm-e2e";
const FULLNAME: &str = "sgcm-supportgate";

#[test]
fn helm_install_in_the_cert_manager_mode() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    cp.install_crd_files("tests/fixtures/crds-certmanager/");
    let ns = NS;
    cp.create_namespace(ns);
    helm_ok(
        cp,
        &[
            "install",
            "sgcm",
            CHART,
            "-n",
            ns,
            "--set",
            "certManager.enabled=true",
            // The CRD and the default policy belong to another release in this cluster.
            "--set",
            "crds.install=false",
            "--set",
            "policy.create=false",
        ],
    );
    let _release = Release::new(cp, "sgcm", ns);
    cert_manager_makes_the_certificate_and_injects_the_ca(cp);
    supportgate_neither_writes_the_secret_nor_the_ca_bundle(cp);
    helm_uninstall_leaves_no_webhook_configuration_or_certificate(cp);
}

/// The webhook configuration asks cert-manager for the caBundle; the Certificate is for the
/// Service's names, from a self-signed Issuer.
fn cert_manager_makes_the_certificate_and_injects_the_ca(cp: &ControlPlane) {
    let (ns, fullname) = (NS, FULLNAME);
    let vwc = get_json(cp, &["validatingwebhookconfiguration", fullname]);
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{ns}/{fullname}")
    );
    assert!(vwc["webhooks"][0]["clientConfig"]["caBundle"].is_null());
    let cert = get_json(cp, &["-n", ns, "certificate", fullname]);
    assert_eq!(cert["spec"]["secretName"], "sgcm-supportgate-tls");
    assert_eq!(
        cert["spec"]["dnsNames"],
        json!([
            "sgcm-supportgate.sgcm-e2e.svc",
            "sgcm-supportgate.sgcm-e2e.svc.cluster.local"
        ])
    );
    assert_eq!(
        cert["spec"]["issuerRef"],
        json!({"name": "sgcm-supportgate-selfsigned", "kind": "Issuer", "group": "cert-manager.io"})
    );
    let issuer = get_json(cp, &["-n", ns, "issuer", "sgcm-supportgate-selfsigned"]);
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));
}

/// The Secret is cert-manager's: mounted as it is, and supportgate neither writes it nor
/// patches the webhook configuration's caBundle (its rules, yes).
fn supportgate_neither_writes_the_secret_nor_the_ca_bundle(cp: &ControlPlane) {
    let (ns, fullname) = (NS, FULLNAME);
    let deploy = get_json(cp, &["-n", ns, "deployment", fullname]);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"],
        json!({"secretName": "sgcm-supportgate-tls", "defaultMode": 420})
    );
    let args = strs(&pod["containers"][0]["args"]);
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--self-managed-certs") || a.starts_with("--cert-secret-name")),
        "{args:?}"
    );
    // The rules follow the policies with cert-manager too.
    assert!(
        args.contains(&"--sync-webhook-rules".to_string())
            && args.contains(&"--webhook-config-name=sgcm-supportgate".to_string()),
        "{args:?}"
    );
    assert!(args.contains(&"--leader-election-lease=sgcm-supportgate".to_string()));
    let (want_cluster, want_ns) = expected_rbac(fullname, false, false);
    assert_eq!(
        rule_lines(&get_json(cp, &["clusterrole", fullname])["rules"]),
        want_cluster
    );
    assert_eq!(
        rule_lines(&get_json(cp, &["-n", ns, "role", fullname])["rules"]),
        want_ns
    );
    let who = (ns, fullname);
    assert!(!allowed(cp, who, "get", "secrets:sgcm-supportgate-tls", ns));
    assert!(!allowed(cp, who, "create", "secrets", ns));
    assert!(allowed(
        cp,
        who,
        "patch",
        "validatingwebhookconfigurations.admissionregistration.k8s.io:sgcm-supportgate",
        ""
    ));
    assert!(!allowed(
        cp,
        who,
        "patch",
        "validatingwebhookconfigurations.admissionregistration.k8s.io:someone-else",
        ""
    ));
    assert!(allowed(
        cp,
        who,
        "update",
        "leases.coordination.k8s.io:sgcm-supportgate",
        ns
    ));
}

fn helm_uninstall_leaves_no_webhook_configuration_or_certificate(cp: &ControlPlane) {
    let (ns, fullname) = (NS, FULLNAME);
    helm_ok(cp, &["uninstall", "sgcm", "-n", ns, "--wait"]);
    let left = cp.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app.kubernetes.io/instance=sgcm",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left.trim(), "");
    let o = cp.kubectl(&["-n", ns, "get", "certificate", fullname]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
}
