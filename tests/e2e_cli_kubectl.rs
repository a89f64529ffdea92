//! End to end: `supportgate check` decodes YAML exactly as the real `kubectl` sends it, and its
//! verdict on a file is the webhook's verdict on `kubectl apply --dry-run=server` of that file,
//! for creates and (with `--previous`) for updates.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::operator::{CertFiles, Operator, register_webhook, wait_webhook_effective};
use support::{ControlPlane, stderr, stdout};

const NS: &str = "cli-kubectl";
/// The webhook configuration leaves this namespace out: there the API server stores what
/// kubectl sent without asking supportgate, which shows the decoded object itself.
const UNWATCHED_NS: &str = "kube-system";

/// A production KonvoyCluster with the istio addon's `enabled` and the Kubernetes version as
/// written, plus scalars that YAML 1.1 resolves in other ways.
fn cluster(name: &str, konvoy: &str, k8s: &str, istio: &str, labels: &str) -> String {
    format!(
        r#"apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata:
  name: {name}
  labels: {{environment: production{labels}}}
spec:
  provisioner: {{provider: aws, version: {konvoy}}}
  cluster:
    kubernetes:
      version: {k8s}
    addons:
    - configRepository: https://github.com/mesosphere/kubernetes-base-addons
      configVersion: stable-1.20-4.4.0
      addonsList:
      - {{name: prometheus, enabled: true}}
      - name: istio
        enabled: {istio}
    - configRepository: https://github.com/mesosphere/kubeaddons-kommander
      configVersion: stable-1.20-1.4.4
      addonsList: [{{name: kommander, enabled: true}}]
  scalars:
    octal: 0755
    hex: 0x1F
    underscores: 1_000
    exponent: 1e3
    whole: 3.0
    plain: v1.20
    tilde: ~
    mixedCase: yEs
    date: 2024-1-2
    timestamp: 2001-12-14T21:59:43Z
    signed: +12
    binary: 0b101
    notOctal: 09
    keys: {{on: 1, n: 2}}
    merged:
      <<: {{a: 1, b: 2}}
      b: 3
"#
    )
}

async fn register(cp: &ControlPlane, url: String, ca_bundle: Vec<u8>) {
    register_webhook(cp, "supportgate-cli-kubectl", url, ca_bundle, UNWATCHED_NS).await;
}

/// `supportgate check` on a file: exit code and the rules it denies.
fn cli(dir: &Path, args: &[&str]) -> (i32, BTreeSet<String>) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .args(["check", "--output=json"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run supportgate check");
    let j: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    let rules = j["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["violations"].as_array().into_iter().flatten())
        .filter(|v| v["severity"] == "deny")
        .filter_map(|v| v["rule"].as_str().map(str::to_string))
        .collect();
    (o.status.code().expect("exited"), rules)
}

/// The webhook's verdict: whether `kubectl apply --dry-run=server` passed, and the rules its
/// denial lists (`- [rule] ...`).
fn webhook(cp: &ControlPlane, file: &Path) -> (bool, BTreeSet<String>, String) {
    let path = file.to_str().expect("utf-8 path");
    let o = cp.kubectl(&["-n", NS, "apply", "--dry-run=server", "-f", path]);
    let err = stderr(&o);
    let rules = err
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- ["))
        .filter_map(|l| l.split_once(']').map(|(r, _)| r.to_string()))
        .collect();
    (o.status.success(), rules, err)
}

/// What the API server holds after kubectl sent the file, where no webhook intervenes.
fn as_kubectl_sends(cp: &ControlPlane, file: &Path) -> Value {
    let path = file.to_str().expect("utf-8 path");
    let o = cp.kubectl(&[
        "-n",
        UNWATCHED_NS,
        "create",
        "--dry-run=server",
        "-o",
        "json",
        "-f",
        path,
    ]);
    assert!(o.status.success(), "kubectl create: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("kubectl -o json")
}

#[tokio::test]
async fn check_decodes_and_decides_as_kubectl_and_the_webhook() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();

    // A cluster out of support that exists before the webhook, for the update cases.
    let legacy = cluster("legacy", "v1.5.6", "1.17.17", "false", "");
    std::fs::write(d.join("legacy-old.yaml"), &legacy).unwrap();
    let o = cp.kubectl(&[
        "-n",
        NS,
        "apply",
        "-f",
        d.join("legacy-old.yaml").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &[]);
    op.wait_ready().await;
    register(cp, op.url(), certs.generated.ca_pem.clone().into_bytes()).await;
    let probe = cluster("probe", "v1.5.6", "1.17.17", "false", "");
    wait_webhook_effective(cp, NS, &probe).await;

    let denied = each_spelling_is_decided_as_kubectl_sends_it(cp, d);
    // The cases cover both verdicts: five booleans that kubectl sends as true and 1.20 as 1.2.
    assert_eq!(denied, 6, "denied cases");

    updates_are_ratcheted_as_the_webhook_ratchets_them(cp, d);
    drop(op);
}

/// YAML 1.1 booleans and numbers-that-look-like-versions: `supportgate check` decodes each as
/// kubectl sends it and decides as the webhook does. Returns how many were denied.
fn each_spelling_is_decided_as_kubectl_sends_it(cp: &ControlPlane, d: &Path) -> usize {
    let cases = [
        ("yes", "1.20.13"),
        ("on", "1.20.13"),
        ("y", "1.20.13"),
        ("Y", "1.20.13"),
        ("ON", "1.20.13"),
        ("yEs", "1.20.13"),
        ("off", "1.20.13"),
        ("\"yes\"", "1.20.13"),
        ("false", "1.20"),
        ("false", "\"1.20.13\""),
    ];
    let mut denied = 0;
    for (i, (istio, k8s)) in cases.iter().enumerate() {
        let what = format!("enabled: {istio}, version: {k8s}");
        let file = d.join(format!("case-{i}.yaml"));
        std::fs::write(
            &file,
            cluster(&format!("case-{i}"), "v1.8.5", k8s, istio, ""),
        )
        .unwrap();

        let sent = as_kubectl_sends(cp, &file);
        let (decoded, errors) =
            supportgate::cli::input::parse("case.yaml", &std::fs::read_to_string(&file).unwrap());
        assert!(errors.is_empty(), "{what}: {errors:?}");
        assert_eq!(
            decoded[0].object.object["spec"], sent["spec"],
            "{what}: spec as kubectl sends it"
        );

        let (code, cli_rules) = cli(d, &[file.to_str().unwrap()]);
        let (allowed, hook_rules, message) = webhook(cp, &file);
        assert_eq!(
            code == 0,
            allowed,
            "{what}: check exit {code}, webhook: {message}"
        );
        assert_eq!(cli_rules, hook_rules, "{what}: {message}");
        denied += usize::from(!allowed);
    }
    denied
}

/// Updates: relabelling the out-of-support cluster is ratcheted; downgrading it is not.
fn updates_are_ratcheted_as_the_webhook_ratchets_them(cp: &ControlPlane, d: &Path) {
    let old = d.join("legacy-old.yaml");
    let prev = format!("--previous={}", old.display());
    for (konvoy, labels) in [("v1.5.6", ", team: a"), ("v1.4.0", "")] {
        let what = format!("update to {konvoy}");
        let file = d.join("legacy-new.yaml");
        std::fs::write(&file, cluster("legacy", konvoy, "1.17.17", "false", labels)).unwrap();
        let (code, cli_rules) = cli(d, &[prev.as_str(), file.to_str().unwrap()]);
        let (allowed, hook_rules, message) = webhook(cp, &file);
        assert_eq!(
            code == 0,
            allowed,
            "{what}: check exit {code}, webhook: {message}"
        );
        assert_eq!(cli_rules, hook_rules, "{what}: {message}");
        assert_eq!(allowed, konvoy == "v1.5.6", "{what}: {message}");
    }
}
