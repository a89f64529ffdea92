//! The cluster the chart tests share: the project's CRDs, which tests delete and re-create one
//! at a time, namespaces, server-side dry runs, and the objects the webhook judges.

use std::process::Output;
use std::sync::{Mutex, MutexGuard};

use crate::support::ControlPlane;

pub const CRD_NAME: &str = "crd/supportpolicies.supportgate.dev";
pub const CRD_NAMES: [&str; 2] = [CRD_NAME, "crd/supportexceptions.supportgate.dev"];

/// Tests that create or delete the cluster-scoped SupportPolicy CRD run one at a time, also when
/// the test binary is run with several threads.
static CLUSTER_SCOPED: Mutex<()> = Mutex::new(());

pub fn exclusive() -> MutexGuard<'static, ()> {
    CLUSTER_SCOPED.lock().unwrap_or_else(|p| p.into_inner())
}

/// A runtime for the tests that run `supportgate` and wait on it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Installs crds/ (server-side, taking the fields over from whoever applied them before) and
/// waits until the CRD is established. Other tests of this binary delete and re-create it.
pub fn ensure_project_crd(cp: &ControlPlane) {
    for crd in CRD_NAMES {
        let deleting = cp.kubectl_ok(
            &[
                "get",
                crd,
                "--ignore-not-found",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ],
            None,
        );
        if !deleting.trim().is_empty() {
            cp.kubectl_ok(&["wait", "--for=delete", crd, "--timeout=60s"], None);
        }
    }
    cp.kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "crds/"],
        None,
    );
    for crd in CRD_NAMES {
        cp.kubectl_ok(
            &["wait", "--for=condition=Established", "--timeout=60s", crd],
            None,
        );
    }
}

/// Deletes the project's CRDs (a fresh cluster, as a first install meets it).
pub fn delete_project_crd(cp: &ControlPlane) {
    for crd in CRD_NAMES.iter().rev() {
        cp.kubectl_ok(&["delete", crd, "--ignore-not-found", "--wait=true"], None);
    }
}

/// A namespace that enforces the `restricted` Pod Security profile and warns about violations
/// (for workloads such as Deployments the API server answers with warnings).
pub fn restricted_namespace(cp: &ControlPlane, name: &str) {
    cp.create_namespace(name);
    cp.kubectl_ok(
        &[
            "label",
            "--overwrite",
            "namespace",
            name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
}

/// A strict server-side dry run of `yaml` (every document validated against its schema).
pub fn dry_run(cp: &ControlPlane, yaml: &str) -> Output {
    cp.kubectl_in(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=chart-e2e",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(yaml),
    )
}

/// A KonvoyCluster on the Konvoy release `konvoy`, with the Kommander that release ships.
pub fn konvoy_cluster(name: &str, konvoy: &str, k8s: &str) -> String {
    let kommander = match konvoy.trim_start_matches('v').get(..3) {
        Some("1.8") => "1.4.4",
        Some("1.7") => "1.3.3",
        _ => "1.1.4",
    };
    konvoy_cluster_paired(name, konvoy, k8s, kommander)
}

/// A KonvoyCluster on a Konvoy release the test chooses, paired with its Kommander.
pub fn konvoy_cluster_paired(name: &str, konvoy: &str, k8s: &str, kommander: &str) -> String {
    let minor = k8s.rsplit_once('.').map(|(m, _)| m).unwrap_or(k8s);
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {k8s}}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-{minor}-4.4.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-{minor}-{kommander}\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

/// Base64, as a Kubernetes `[]byte` field holds it.
pub fn base64(bytes: &[u8]) -> String {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}
