//! End to end, issue 28 paths 3 and 4, as a namespace user (a ServiceAccount whose Role grants
//! KonvoyClusters in its own namespace only) through `kubectl` against a real kube-apiserver with
//! RBAC on, the operator serving the webhook:
//!
//! - (a) a cluster on Konvoy 1.6.3 cannot be moved to 1.8.5 by unsetting its version first: the
//!   unset is refused with `version-removed`, and the direct step stays refused;
//! - (b) a KBA entry whose repository is respelled (case, `.git`, trailing slash, `#ref`, `?ref=`)
//!   and whose tag is for another Kubernetes minor is refused with `kba-kubernetes-mismatch`,
//!   with the same message as the canonical spelling.

mod support;

use std::path::Path;
use std::time::Duration;

use support::accounts::{AsUser, NamespaceUser};
use support::operator::{CertFiles, Operator, unregister_webhook};
use support::{ControlPlane, eventually, stderr, stdout};

const NS: &str = "gates-e2e";
const OPERATOR_NS: &str = "gates-system";
const WEBHOOK: &str = "supportgate-gates-e2e";
const USER: &str = "dev";
const WAIT: Duration = Duration::from_secs(45);
const KBA: &str = "https://github.com/mesosphere/kubernetes-base-addons";

/// A KonvoyCluster; `version` is the provisioner's version line (empty: none), `kba_repo` and
/// `kba_ref` its KBA entry.
fn cluster(name: &str, version: &str, k8s: &str, kba_repo: &str, kba_ref: &str) -> String {
    let minor: Vec<&str> = k8s.split('.').take(2).collect();
    let minor = minor.join(".");
    // The Kommander minor that pairs with the Konvoy one (1.6 -> 1.2 .. 1.8 -> 1.4).
    let kommander = match version.get(..4) {
        Some("v1.6") => 2,
        Some("v1.7") => 3,
        _ => 4,
    };
    let version = if version.is_empty() {
        String::new()
    } else {
        format!("\n    version: {version}")
    };
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata: {{name: {name}, namespace: {NS}, labels: {{environment: production}}}}
spec:
  provisioner:
    provider: aws{version}
  cluster:
    kubernetes: {{version: {k8s}}}
    addons:
    - configRepository: '{kba_repo}'
      configVersion: {kba_ref}
      addonsList: [{{name: prometheus, enabled: true}}]
    - configRepository: https://github.com/mesosphere/kubeaddons-kommander
      configVersion: stable-{minor}-1.{kommander}.4
      addonsList: [{{name: kommander, enabled: true}}]
"
    )
}

/// A ServiceAccount of `NS` that may manage KonvoyClusters there and nothing else; its
/// kubeconfig at `path`.
fn namespace_user<'a>(cp: &'a ControlPlane, path: &Path) -> AsUser<'a> {
    NamespaceUser {
        ns: NS,
        name: USER,
        group: "kommander.mesosphere.io",
        resources: &["konvoyclusters"],
        verbs: &["get", "list", "create", "update", "patch"],
    }
    .create(cp, path)
}

/// The denial's text, from a `kubectl` that must have been refused by the webhook.
fn refused(o: &std::process::Output, what: &str) -> String {
    let err = stderr(o);
    assert!(
        !o.status.success() && err.contains("denied the request"),
        "{what} must be refused by the webhook; stdout {} stderr {err}",
        stdout(o)
    );
    err
}

#[tokio::test]
async fn the_gate_cannot_be_walked_around_by_a_namespace_user() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    for ns in [NS, OPERATOR_NS] {
        cp.create_namespace(ns);
    }
    let certs = CertFiles::new();
    let ns_flag = format!("--namespace={OPERATOR_NS}");
    let mut op = Operator::start(cp, &certs, &["--no-leader-election", &ns_flag]);
    let probe = cluster("probe", "v1.5.6", "1.17.17", KBA, "stable-1.17-2.7.0");
    op.serve_admission(cp, &certs, WEBHOOK, NS, &probe).await;
    let user = namespace_user(cp, &certs.dir.path().join("dev-kubeconfig"));

    a_minor_cannot_be_skipped_by_unsetting_the_version(cp, &user).await;
    a_respelled_kba_repository_is_judged_as_the_canonical_one(&user);
    a_ref_only_in_the_url_is_judged_and_a_foreign_repository_warned(&user);

    cp.kubectl_ok(&["delete", "namespace", NS, "--wait=false"], None);
    let _ = unregister_webhook(cp, WEBHOOK).await;
    drop(op);
}

/// (a) Path 3. A cluster on 1.6.3 (supported, the oldest in the window: a warning) cannot
/// reach 1.8.5 by having its version unset first.
async fn a_minor_cannot_be_skipped_by_unsetting_the_version(cp: &ControlPlane, user: &AsUser<'_>) {
    let v163 = cluster("east", "v1.6.3", "1.18.13", KBA, "stable-1.18-3.3.0");
    let o = eventually(WAIT, "east on 1.6.3 admitted", || async {
        let o = user.apply(&v163);
        o.status.success().then_some(o)
    })
    .await;
    assert!(stderr(&o).contains("konvoy-nearing-end"), "{}", stderr(&o));
    let v185 = cluster("east", "v1.8.5", "1.18.13", KBA, "stable-1.18-3.3.0");
    let err = refused(&user.apply(&v185), "1.6.3 -> 1.8.5");
    assert!(err.contains("[upgrade-skips-minor]"), "{err}");
    // Step one of the walk around: unset the version. Refused, naming the version to restore.
    let unset = user.kubectl(
        &[
            "-n",
            NS,
            "patch",
            "konvoycluster",
            "east",
            "--type=json",
            "-p",
            r#"[{"op": "remove", "path": "/spec/provisioner/version"}]"#,
        ],
        None,
    );
    let err = refused(&unset, "unsetting the version");
    assert!(
        err.contains("[version-removed]") && err.contains("`v1.6.3`"),
        "{err}"
    );
    // The same by apply (a manifest without the version line).
    let err = refused(
        &user.apply(&cluster("east", "", "1.18.13", KBA, "stable-1.18-3.3.0")),
        "applying without the version",
    );
    assert!(err.contains("[version-removed]"), "{err}");
    // The cluster still names 1.6.3, so step two is the direct skip, still refused.
    let stored = cp.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "konvoycluster",
            "east",
            "-o",
            "jsonpath={.spec.provisioner.version}",
        ],
        None,
    );
    assert_eq!(stored, "v1.6.3");
    let err = refused(&user.apply(&v185), "1.6.3 -> 1.8.5 after the refused unset");
    assert!(err.contains("[upgrade-skips-minor]"), "{err}");
    // A one-minor step is fine.
    let v175 = cluster("east", "v1.7.5", "1.18.13", KBA, "stable-1.18-3.3.0");
    let o = user.apply(&v175);
    assert!(o.status.success(), "1.6.3 -> 1.7.5: {}", stderr(&o));
}

/// (b) Path 4. Konvoy 1.8.5 on Kubernetes 1.20.13 with a KBA tag for 1.18, its repository
/// spelled in every way that names the same one: refused with the same message.
fn a_respelled_kba_repository_is_judged_as_the_canonical_one(user: &AsUser<'_>) {
    let wrong = "stable-1.18-3.0.0";
    let canonical = refused(
        &user.apply(&cluster("west", "v1.8.5", "1.20.13", KBA, wrong)),
        "the canonical spelling",
    );
    assert!(
        canonical.contains("[kba-kubernetes-mismatch]"),
        "{canonical}"
    );
    let message = |err: &str| {
        err.lines()
            .find(|l| l.contains("[kba-kubernetes-mismatch]"))
            .map(str::to_string)
            .unwrap_or_default()
    };
    for repo in [
        "Mesosphere/Kubernetes-Base-Addons",
        "https://GitHub.com/mesosphere/kubernetes-base-addons",
        "https://github.com/Mesosphere/Kubernetes-Base-Addons.git",
        "https://github.com/mesosphere/kubernetes-base-addons/",
        "https://github.com/mesosphere/kubernetes-base-addons#stable-1.18-3.0.0",
        "https://github.com/mesosphere/kubernetes-base-addons?ref=stable-1.18-3.0.0",
    ] {
        let err = refused(
            &user.apply(&cluster("west", "v1.8.5", "1.20.13", repo, wrong)),
            repo,
        );
        assert!(err.contains("[kba-kubernetes-mismatch]"), "{repo}: {err}");
        assert_eq!(message(&err), message(&canonical), "{repo}");
    }
}

fn a_ref_only_in_the_url_is_judged_and_a_foreign_repository_warned(user: &AsUser<'_>) {
    let wrong = "stable-1.18-3.0.0";
    // The ref only in the URL is judged too.
    let url_only = cluster(
        "west",
        "v1.8.5",
        "1.20.13",
        "https://github.com/mesosphere/kubernetes-base-addons.git#stable-1.18-3.0.0",
        wrong,
    )
    .replace("      configVersion: stable-1.18-3.0.0\n", "");
    let err = refused(&user.apply(&url_only), "a ref only in the URL");
    assert!(err.contains("[kba-kubernetes-mismatch]"), "{err}");
    // A repository the policy does not know is admitted on production with a warning naming it.
    let foreign = cluster(
        "west",
        "v1.8.5",
        "1.20.13",
        "https://github.com/acme/addons",
        wrong,
    );
    let o = user.apply(&foreign);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("[ref-unidentified]")
            && stderr(&o).contains("https://github.com/acme/addons"),
        "{}",
        stderr(&o)
    );
}
