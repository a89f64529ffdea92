//! The Helm chart on the test control plane: `helm` with its own home, a release uninstalled
//! however the test ends, and `supportgate run` set up the way the chart's Deployment runs it.

use std::process::{Command, Output};

use serde_json::{Value, json};

use super::{ControlPlane, repo, stderr, stdout};

pub const CHART: &str = "charts/supportgate";

/// Runs helm against the test control plane, with its own config/cache directories.
pub fn helm(cp: &ControlPlane, args: &[&str]) -> Output {
    let home = cp.dir.join("helm-home");
    Command::new(cp.tool("helm"))
        .args(args)
        .env("KUBECONFIG", &cp.kubeconfig)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("KUBECACHEDIR", home.join("kube-cache"))
        .current_dir(repo())
        .output()
        .expect("run helm")
}

/// Runs helm and panics with its output unless it succeeds; returns stdout.
pub fn helm_ok(cp: &ControlPlane, args: &[&str]) -> String {
    let o = helm(cp, args);
    assert!(
        o.status.success(),
        "helm {} failed:\n{}\n{}",
        args.join(" "),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `kubectl get ARGS -o json`.
pub fn get_json(cp: &ControlPlane, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    serde_json::from_str(&cp.kubectl_ok(&all, None)).expect("kubectl -o json")
}

/// Uninstalls a release when dropped, so that a failed test leaves no webhook configuration
/// (pointing at a process that is gone, with failurePolicy Fail) to block the other tests.
pub struct Release<'a> {
    pub cp: &'a ControlPlane,
    pub name: String,
    pub namespace: String,
}

impl<'a> Release<'a> {
    pub fn new(cp: &'a ControlPlane, name: &str, namespace: &str) -> Self {
        Release {
            cp,
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = helm(
            self.cp,
            &["uninstall", &self.name, "-n", &self.namespace, "--wait"],
        );
    }
}

/// The arguments of the chart's container after `run`, as the kubelet expands them, without
/// the listen addresses and certificate files (the test's own).
pub fn container_args(cp: &ControlPlane, ns: &str, fullname: &str) -> Vec<String> {
    let deploy = get_json(cp, &["-n", ns, "deployment", fullname]);
    let own = [
        "--webhook-addr=",
        "--health-addr=",
        "--tls-cert-file=",
        "--tls-key-file=",
    ];
    deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .skip(1)
        .filter_map(Value::as_str)
        .filter(|a| !own.iter().any(|o| a.starts_with(o)))
        .map(|a| a.replace("$(POD_NAMESPACE)", ns))
        .collect()
}

/// Applies a JSON patch to the chart's webhook configuration `fullname`.
pub fn patch_webhook_configuration(cp: &ControlPlane, fullname: &str, patch: &Value) {
    cp.kubectl_ok(
        &[
            "patch",
            "validatingwebhookconfiguration",
            fullname,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    );
}

/// Points the chart's webhook configuration at `url` (a process on the host) in place of its
/// Service, leaving the caBundle to the process (self-managed certificates).
pub fn point_webhook_at(cp: &ControlPlane, fullname: &str, url: &str) {
    let patch = json!([
        {"op": "remove", "path": "/webhooks/0/clientConfig/service"},
        {"op": "add", "path": "/webhooks/0/clientConfig/url", "value": url},
    ]);
    patch_webhook_configuration(cp, fullname, &patch);
}
