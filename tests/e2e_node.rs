//! supportgate installed as users install it: the image built by the local recipe
//! (hack/image.sh), imported into a real node (kubelet + containerd, `up --node`), installed
//! with `helm install`, and called by kube-apiserver through its Service with the caBundle the
//! pods wrote themselves. Then leader failover and a rolling upgrade under a bounded load loop,
//! certificate rotation inside the cluster, `helm uninstall`, and the plain manifests.
//!
//! All traffic stays on loopback or inside the node's own network namespace: the test reaches
//! the apiserver through the node's loopback port forward. The figures (requests sent,
//! admitted, refused, failed) are printed; run with `--nocapture` to see them.

#[path = "support/node.rs"]
mod node;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, GroupVersionKind, PostParams};
use kube::core::ApiResource;
use kube::{Api, Client};
use node::Node;

const NS: &str = "supportgate";
const CLUSTERS_NS: &str = "kommander";

/// The README's walk-through: (name, admitted?, what the answer must contain).
const EXAMPLES: [(&str, bool, &str); 4] = [
    ("prod-east", true, ""),
    ("staging-legacy", true, "Warning: [konvoy-nearing-end]"),
    ("docs-sample", false, "[kba-kubernetes-mismatch]"),
    (
        "old-west",
        false,
        "[konvoy-unsupported] spec.provisioner.version: Konvoy 1.5.6 is out of support",
    ),
];

fn step(what: &str) {
    println!("\n==> {what}");
}

/// Builds the image with the local recipe from this test build's binary and imports it.
fn build_and_import_image(node: &Node) {
    let repo = env!("CARGO_MANIFEST_DIR");
    let archive = node.dir.join("supportgate.oci.tar");
    let started = Instant::now();
    let out = Command::new(format!("{repo}/hack/image.sh"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_supportgate"))
        .arg("--strip")
        .arg("--out")
        .arg(&archive)
        // What `docker build -t supportgate:0.1.0` names it, and the chart's default image.
        .arg("--name")
        .arg(format!(
            "docker.io/library/supportgate:{}",
            env!("CARGO_PKG_VERSION")
        ))
        .output()
        .expect("run hack/image.sh");
    assert!(
        out.status.success(),
        "hack/image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.import_image(&archive);
    let size = std::fs::metadata(&archive)
        .map(|m| m.len() >> 20)
        .unwrap_or(0);
    // containerd holds the image now.
    let _ = std::fs::remove_file(&archive);
    println!(
        "image built and imported in {:.1}s ({} MB)",
        started.elapsed().as_secs_f64(),
        size
    );
}

fn install_fixture_crds(node: &Node) {
    node.kubectl_ok(
        &["apply", "--server-side", "-f", "tests/fixtures/crds/"],
        None,
    );
    node.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "-f",
            "tests/fixtures/crds/",
        ],
        None,
    );
    node.kubectl_ok(&["create", "namespace", CLUSTERS_NS], None);
}

/// Waits for the rollout; on failure shows the pods, their events and logs, and the node's.
fn rollout(node: &Node, deployment: &str) {
    let o = node.kubectl(
        &[
            "-n",
            NS,
            "rollout",
            "status",
            &format!("deployment/{deployment}"),
            "--timeout=300s",
        ],
        None,
    );
    if !o.status.success() {
        let pods = node.kubectl(&["-n", NS, "describe", "pods"], None);
        let logs = node.kubectl(
            &[
                "-n",
                NS,
                "logs",
                "-l",
                "app.kubernetes.io/name=supportgate",
                "--tail=30",
            ],
            None,
        );
        panic!(
            "rollout of {deployment} failed: {}\n--- pods\n{}\n--- logs\n{}{}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&pods.stdout),
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr),
            node.logs()
        );
    }
}

/// The supportgate processes of the node's pods, as the kernel sees them: (uid, gid, CapEff).
/// A process is the node's when its cgroup is one of the node's containers (/k8s.io/<id>).
fn pod_processes(node: &Node) -> Vec<(String, String, String)> {
    let bundles = node
        .dir
        .join("containerd/state/io.containerd.runtime.v2.task/k8s.io");
    let ids: Vec<String> = std::fs::read_dir(&bundles)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let p = entry.path();
        let Ok(cmd) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let cgroup = std::fs::read_to_string(p.join("cgroup")).unwrap_or_default();
        let in_node = ids
            .iter()
            .any(|id| cgroup.contains(&format!("/k8s.io/{id}")));
        if !cmd.starts_with(b"/supportgate\0") || !in_node {
            continue;
        }
        let status = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        found.push((field("Uid:"), field("Gid:"), field("CapEff:")));
    }
    found
}

fn install_with_helm(node: &Node) {
    step("helm install supportgate charts/supportgate --namespace supportgate --create-namespace");
    let out = node.helm_ok(&[
        "install",
        "supportgate",
        "charts/supportgate",
        "--namespace",
        NS,
        "--create-namespace",
    ]);
    println!("{}", out.lines().take(6).collect::<Vec<_>>().join("\n"));
    rollout(node, "supportgate");
    step("kubectl get pods -n supportgate");
    println!("{}", node.kubectl_ok(&["get", "pods", "-n", NS], None));
    let ready = node.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "deployment",
            "supportgate",
            "-o",
            "jsonpath={.status.readyReplicas}/{.spec.replicas}",
        ],
        None,
    );
    assert_eq!(ready, "2/2", "ready replicas");
    // The chart's securityContext is what the kernel enforces on the running processes.
    let procs = pod_processes(node);
    assert_eq!(
        procs.len(),
        2,
        "two supportgate processes in the node: {procs:?}"
    );
    for (uid, gid, caps) in &procs {
        assert_eq!(
            (uid.as_str(), gid.as_str()),
            ("65532", "65532"),
            "{procs:?}"
        );
        assert_eq!(caps, "0000000000000000", "capabilities dropped: {procs:?}");
    }
    let spec = node.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[0].securityContext}",
        ],
        None,
    );
    for needle in [
        "\"readOnlyRootFilesystem\":true",
        "\"runAsNonRoot\":true",
        "\"drop\":[\"ALL\"]",
        "\"type\":\"RuntimeDefault\"",
    ] {
        assert!(spec.contains(needle), "missing {needle} in {spec}");
    }
}

/// Splits the README's example file into one document per cluster.
fn example_docs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clusters/konvoyclusters.yaml"),
    )
    .expect("examples");
    text.split("\n---\n")
        .filter(|d| d.contains("kind:"))
        .map(|d| {
            let name = d
                .lines()
                .find_map(|l| l.strip_prefix("  name: "))
                .expect("metadata.name")
                .trim()
                .to_string();
            (name, format!("{d}\n"))
        })
        .collect()
}

/// Waits until the in-cluster webhook answers (its pods wrote the Secret and the caBundle).
fn wait_for_webhook(node: &Node) {
    let probe = "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {name: probe, namespace: kommander}\nspec: {provisioner: {provider: aws, version: v1.4.0}}\n";
    let started = Instant::now();
    loop {
        let o = node.kubectl(&["apply", "--dry-run=server", "-f", "-"], Some(probe));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if !o.status.success() && err.contains("denied the request") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the webhook never answered through its Service: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let vwc = node.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfiguration",
            "supportgate",
            "-o",
            "json",
        ],
        None,
    );
    let vwc: serde_json::Value = serde_json::from_str(&vwc).expect("json");
    let client_config = &vwc["webhooks"][0]["clientConfig"];
    assert_eq!(
        client_config["service"]["name"], "supportgate",
        "{client_config}"
    );
    assert!(client_config.get("url").is_none(), "{client_config}");
    let ca = client_config["caBundle"].as_str().unwrap_or("");
    assert!(ca.len() > 100, "the pods wrote a caBundle: {client_config}");
}

fn walk_through_examples(node: &Node) {
    step("kubectl apply -f examples/clusters/konvoyclusters.yaml, one cluster at a time");
    for (name, doc) in example_docs() {
        let (_, admitted, needle) = EXAMPLES
            .iter()
            .find(|(n, ..)| *n == name)
            .unwrap_or_else(|| panic!("an example not in the walk-through: {name}"));
        let o = node.kubectl(&["apply", "-f", "-"], Some(&doc));
        let answer = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        println!(
            "{} {name}\n  {}",
            if o.status.success() {
                "ADMITTED"
            } else {
                "REFUSED "
            },
            answer.trim().replace('\n', "\n  ")
        );
        assert_eq!(o.status.success(), *admitted, "{name}: {answer}");
        assert!(
            answer.contains(needle),
            "{name}: missing {needle:?} in {answer}"
        );
    }
}

fn conditions_appear(node: &Node) {
    step("the Supported conditions written by the leader");
    let started = Instant::now();
    let cols = "custom-columns=NAME:.metadata.name,SUPPORTED:.status.conditions[?(@.type==\"Supported\")].status,REASON:.status.conditions[?(@.type==\"Supported\")].reason";
    loop {
        let table = node.kubectl_ok(
            &["-n", CLUSTERS_NS, "get", "konvoyclusters", "-o", cols],
            None,
        );
        let done = table
            .lines()
            .any(|l| l.starts_with("prod-east ") && l.contains("True") && l.contains("Supported"))
            && table.lines().any(|l| {
                l.starts_with("staging-legacy ")
                    && l.contains("True")
                    && l.contains("KonvoyNearingEnd")
            });
        if done {
            println!("{table}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "conditions never appeared:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let started = Instant::now();
    loop {
        let objects = node.kubectl_ok(
            &[
                "get",
                "supportpolicy",
                "default",
                "-o",
                "jsonpath={.status.objects}",
            ],
            None,
        );
        if !objects.is_empty() {
            println!("{}", node.kubectl_ok(&["get", "supportpolicies"], None));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the default policy's status never counted the objects"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What a bounded apply loop saw. `failed` counts calls that got neither a verdict nor an
/// admission (e.g. "failed calling webhook": no replica reachable).
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    admitted: usize,
    refused: usize,
    failed: usize,
    unsupported_admitted: usize,
    supported_refused: usize,
    failures: Vec<String>,
    took: Duration,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {}, admitted {}, refused {}, failed {} (unsupported admitted: {}, supported refused: {}) in {:.1}s",
            self.sent,
            self.admitted,
            self.refused,
            self.failed,
            self.unsupported_admitted,
            self.supported_refused,
            self.took.as_secs_f64()
        )
    }
}

fn konvoy_clusters(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster");
    Api::namespaced_with(client.clone(), CLUSTERS_NS, &ApiResource::from_gvk(&gvk))
}

/// Every other cluster is supported (Konvoy 1.8.5) or not (1.5.6, out of support).
fn load_cluster(name: &str, supported: bool) -> DynamicObject {
    let (konvoy, k8s) = if supported {
        ("v1.8.5", "1.20.13")
    } else {
        ("v1.5.6", "1.17.17")
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": name, "namespace": CLUSTERS_NS},
        "spec": {"provisioner": {"provider": "aws", "version": konvoy}, "cluster": {"kubernetes": {"version": k8s}}}
    }))
    .expect("cluster object")
}

/// Creates `count` clusters one after another (bounded in count and in time), alternating
/// supported and unsupported ones, through the node's loopback port forward.
async fn apply_loop(
    api: Api<DynamicObject>,
    prefix: String,
    count: usize,
    progress: Arc<AtomicUsize>,
) -> Tally {
    let mut t = Tally::default();
    let started = Instant::now();
    for i in 0..count {
        if started.elapsed() > Duration::from_secs(240) {
            break;
        }
        let supported = i % 2 == 0;
        let obj = load_cluster(&format!("{prefix}-{i}"), supported);
        t.sent += 1;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                t.admitted += 1;
                t.unsupported_admitted += usize::from(!supported);
            }
            Err(kube::Error::Api(s)) if s.message.contains("denied the request") => {
                t.refused += 1;
                t.supported_refused += usize::from(supported);
            }
            Err(e) => {
                t.failed += 1;
                if t.failures.len() < 5 {
                    t.failures.push(e.to_string());
                }
            }
        }
        progress.store(i + 1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    t.took = started.elapsed();
    t
}

/// Runs the apply loop and, once a third of it is sent, `disrupt` (blocking, e.g. kubectl).
async fn under_load(
    client: &Client,
    prefix: &str,
    count: usize,
    disrupt: impl FnOnce() + Send + 'static,
) -> Tally {
    let progress = Arc::new(AtomicUsize::new(0));
    let looped = tokio::spawn(apply_loop(
        konvoy_clusters(client),
        prefix.to_string(),
        count,
        progress.clone(),
    ));
    while progress.load(Ordering::SeqCst) < count / 3 && !looped.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::spawn_blocking(disrupt)
        .await
        .expect("disruption");
    let t = looped.await.expect("apply loop");
    assert_eq!(
        t.unsupported_admitted, 0,
        "an unsupported cluster was admitted: {t}"
    );
    assert_eq!(
        t.supported_refused, 0,
        "a supported cluster was refused: {t}"
    );
    assert_eq!(t.sent, t.admitted + t.refused + t.failed, "{t}");
    t
}

fn lease_holder(node: &Node) -> String {
    node.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "lease",
            "supportgate",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    )
}

fn pod_names(node: &Node) -> Vec<String> {
    node.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=supportgate",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        None,
    )
    .split_whitespace()
    .map(String::from)
    .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

async fn leader_failover(node: &'static Node, client: &Client) {
    step("leader failover: delete the leader pod in the middle of a bounded apply loop");
    let leader = lease_holder(node);
    assert!(
        pod_names(node).contains(&leader),
        "the Lease holder {leader:?} is one of the pods"
    );
    let victim = leader.clone();
    let t = under_load(client, "failover", 300, move || {
        node.kubectl_ok(&["-n", NS, "delete", "pod", &victim, "--wait=false"], None);
    })
    .await;
    println!("failover: {t}\n  failures: {:?}", t.failures);
    wait_until(
        "another replica to take the Lease",
        Duration::from_secs(120),
        || {
            let h = lease_holder(node);
            !h.is_empty() && h != leader
        },
    );
    println!("the Lease moved from {leader} to {}", lease_holder(node));
    rollout(node, "supportgate");
    // Conditions keep converging under the new leader: every admitted load cluster gets one.
    wait_until(
        "conditions on every admitted cluster",
        Duration::from_secs(120),
        || {
            let missing = node.kubectl_ok(
            &["-n", CLUSTERS_NS, "get", "konvoyclusters", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Supported\")].status}{\"\\n\"}{end}"],
            None,
        );
            !missing.lines().any(|l| l.ends_with('='))
        },
    );
}

async fn rolling_upgrade(node: &'static Node, client: &Client) {
    step(
        "helm upgrade with a changed value (selfManagedCerts.checkSeconds=3) during a bounded apply loop",
    );
    let before = pod_names(node);
    let t = under_load(client, "upgrade", 300, move || {
        node.helm_ok(&[
            "upgrade",
            "supportgate",
            "charts/supportgate",
            "--namespace",
            NS,
            "--reuse-values",
            "--set",
            "selfManagedCerts.checkSeconds=3",
        ]);
        rollout(node, "supportgate");
    })
    .await;
    println!("rolling upgrade: {t}\n  failures: {:?}", t.failures);
    // The old pods drain (up to their grace period) and go; two new ones serve.
    wait_until("the old pods to go", Duration::from_secs(90), || {
        pod_names(node).iter().all(|p| !before.contains(p))
    });
    let after = pod_names(node);
    assert_eq!(
        after.len(),
        2,
        "every pod was replaced: {before:?} -> {after:?}"
    );
    let args = node.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "deployment",
            "supportgate",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ],
        None,
    );
    assert!(args.contains("\"--cert-check-seconds=3\""), "{args}");
}

fn secret_field(node: &Node, path: &str) -> String {
    node.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "secret",
            "supportgate-tls",
            "-o",
            &format!("jsonpath={path}"),
        ],
        None,
    )
}

fn ca_bundle(node: &Node) -> String {
    node.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfiguration",
            "supportgate",
            "-o",
            "jsonpath={.webhooks[0].clientConfig.caBundle}",
        ],
        None,
    )
}

fn tomorrow_utc() -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    today.saturating_add(jiff::Span::new().days(1)).to_string()
}

async fn certificate_rotation(node: &'static Node, client: &Client) {
    step("certificate rotation inside the cluster, during a bounded apply loop");
    let cert_before = secret_field(node, "{.data.tls\\.crt}");
    let bundle_before = ca_bundle(node);
    // The pods' certificate "expires tomorrow": inside the 30-day rotation window, so the next
    // check (every 3 s since the upgrade) issues a new CA and serving certificate.
    let expiring = tomorrow_utc();
    let t = under_load(client, "rotation", 240, move || {
        node.kubectl_ok(
            &[
                "-n",
                NS,
                "annotate",
                "secret",
                "supportgate-tls",
                &format!("supportgate.dev/not-after={expiring}"),
                "--overwrite",
            ],
            None,
        );
        wait_until(
            "a new serving certificate in the Secret",
            Duration::from_secs(60),
            || secret_field(node, "{.data.tls\\.crt}") != cert_before,
        );
        wait_until(
            "the new CA in the webhook configuration",
            Duration::from_secs(60),
            || ca_bundle(node) != bundle_before,
        );
    })
    .await;
    println!("certificate rotation: {t}\n  failures: {:?}", t.failures);
    let not_after = secret_field(node, "{.metadata.annotations.supportgate\\.dev/not-after}");
    println!("new certificate valid until {not_after}");
    assert_ne!(
        not_after,
        tomorrow_utc(),
        "the rotated certificate has a full lifetime"
    );
    assert_eq!(
        t.failed, 0,
        "calls failed while the certificate rotated: {t}"
    );
}

fn uninstall(node: &Node) {
    step("helm uninstall supportgate");
    println!(
        "{}",
        node.helm_ok(&["uninstall", "supportgate", "--namespace", NS, "--wait"])
    );
    let vwc = node.kubectl(
        &["get", "validatingwebhookconfiguration", "supportgate"],
        None,
    );
    let err = String::from_utf8_lossy(&vwc.stderr);
    assert!(
        !vwc.status.success() && err.contains("NotFound"),
        "the webhook configuration is gone: {err}"
    );
    // Nobody is left unable to create the checked kinds.
    let doc = "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {name: after-uninstall, namespace: kommander}\nspec: {provisioner: {provider: aws, version: v1.8.5}}\n";
    node.kubectl_ok(&["apply", "-f", "-"], Some(doc));
    // The CRD and the policies stay, as documented.
    node.kubectl_ok(&["get", "crd", "supportpolicies.supportgate.dev"], None);
    node.kubectl_ok(&["get", "supportpolicy", "default"], None);
    println!("{}", node.kubectl_ok(&["get", "supportpolicies"], None));
    wait_until("the pods to go", Duration::from_secs(120), || {
        pod_names(node).is_empty()
    });
}

fn plain_manifests(node: &Node) {
    step("kubectl apply -f manifests/supportgate.yaml");
    node.kubectl_ok(&["apply", "-f", "manifests/supportgate.yaml"], None);
    rollout(node, "supportgate");
    wait_for_webhook(node);
    let refused = node.kubectl(
        &["apply", "-f", "-"],
        Some(
            &example_docs()
                .into_iter()
                .find(|(n, _)| n == "old-west")
                .expect("old-west")
                .1,
        ),
    );
    let err = String::from_utf8_lossy(&refused.stderr).into_owned();
    println!("$ kubectl apply -f old-west.yaml\n{err}");
    assert!(
        !refused.status.success() && err.contains("[konvoy-unsupported]"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_on_a_real_node() {
    let started = Instant::now();
    let node = tokio::task::spawn_blocking(Node::shared)
        .await
        .expect("node");
    println!(
        "node ready in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        node.dir.display()
    );
    let client = node::client(&node.kubeconfig).await;
    tokio::task::block_in_place(|| {
        build_and_import_image(node);
        install_fixture_crds(node);
        install_with_helm(node);
        wait_for_webhook(node);
        walk_through_examples(node);
        conditions_appear(node);
    });
    leader_failover(node, &client).await;
    rolling_upgrade(node, &client).await;
    certificate_rotation(node, &client).await;
    tokio::task::block_in_place(|| {
        uninstall(node);
        plain_manifests(node);
    });
    println!("\ne2e_node total: {:.1}s", started.elapsed().as_secs_f64());
    node.remove_on_stop();
}
