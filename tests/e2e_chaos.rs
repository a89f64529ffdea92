//! Chaos: a webhook replica restarts under a steady stream of creates (nothing unsupported may
//! slip through), and the API server restarts while the controller converges 1,000 objects
//! (no condition lost or duplicated).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::core::ApiResource;
use serde_json::json;
use support::operator::{CertFiles, Operator, wait_webhook_effective};
use support::{ControlPlane, eventually, free_port};
use supportgate::api::webhook_configuration::{
    Endpoint, WebhookSettings, validating_webhook_configuration,
};
use supportgate::engine::policy::DEFAULT_POLICY_YAML;
use supportgate::engine::policyset::PolicySet;
use tokio::net::{TcpListener, TcpStream};

fn ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters",
    )
}

fn cluster(ns: &str, name: &str, konvoy: &str, k8s: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provisioner": {"version": konvoy}, "cluster": {"kubernetes": {"version": k8s}}}
    }))
    .expect("fixture")
}

/// A loopback TCP balancer: each connection goes to the next backend that accepts it, as a
/// Service's kube-proxy rules with readiness would route.
async fn balancer(backends: Vec<u16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let backends = backends.clone();
            let next = next.clone();
            tokio::spawn(async move {
                for _ in 0..backends.len() {
                    let b = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
                    if let Ok(mut out) = TcpStream::connect(("127.0.0.1", b)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Registers a webhook configuration, failing closed, for the balancer on `lb`; only this
/// test's namespace (the other test of this binary may run alongside).
async fn register_behind(
    cp: &ControlPlane,
    lb: u16,
    certs: &CertFiles,
) -> Api<ValidatingWebhookConfiguration> {
    let settings = WebhookSettings {
        name: "supportgate-chaos".into(),
        endpoint: Endpoint::Url(format!("https://127.0.0.1:{lb}/validate")),
        ca_bundle_pem: certs.generated.ca_pem.clone().into_bytes(),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        excluded_namespaces: vec!["chaos-controller".into(), "kube-system".into()],
    };
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(cp.client().await);
    let _ = vwcs
        .delete("supportgate-chaos", &DeleteParams::default())
        .await;
    vwcs.create(
        &PostParams::default(),
        &validating_webhook_configuration(&settings, PolicySet::embedded_default().targets()),
    )
    .await
    .expect("webhook configuration");
    vwcs
}

/// What the stream of creates met.
#[derive(Default)]
struct Tally {
    wrongly_admitted: AtomicU64,
    rightly_denied: AtomicU64,
    admitted: AtomicU64,
    failed: AtomicU64,
}

/// Creates supported and unsupported clusters in turn until `stop`, counting the answers.
async fn create_until(api: &Api<DynamicObject>, ns: &str, stop: &AtomicBool, tally: &Tally) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let bad = i.is_multiple_of(2);
        let obj = if bad {
            cluster(ns, &format!("bad-{i}"), "v1.5.6", "1.17.17")
        } else {
            cluster(ns, &format!("good-{i}"), "v1.8.5", "1.20.13")
        };
        match (api.create(&PostParams::default(), &obj).await, bad) {
            (Ok(_), true) => tally.wrongly_admitted.fetch_add(1, Ordering::Relaxed),
            (Ok(_), false) => tally.admitted.fetch_add(1, Ordering::Relaxed),
            (Err(kube::Error::Api(s)), true) if s.message.contains("[konvoy-unsupported]") => {
                tally.rightly_denied.fetch_add(1, Ordering::Relaxed)
            }
            (Err(_), _) => tally.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// The replicas behind the balancer, each on its own port.
struct Replicas<'a> {
    cp: &'a ControlPlane,
    certs: &'a CertFiles,
    a: (Operator, u16),
    b: (Operator, u16),
}

const REPLICA_ARGS: [&str; 2] = ["--no-controller", "--shutdown-drain-seconds=1"];

impl Replicas<'_> {
    fn start(&self, port: u16) -> Operator {
        Operator::start_on(
            self.cp,
            &self.cp.kubeconfig,
            self.certs,
            port,
            &REPLICA_ARGS,
        )
    }

    /// SIGTERM replica A (it drains) and start it again on the same port; then the same for B
    /// without grace (a crash); two seconds between, then `stop`.
    async fn restart_both(&mut self, stop: &AtomicBool) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.a.0.child.id().to_string())
            .status();
        let _ = self.a.0.child.wait();
        self.a.0 = self.start(self.a.1);
        self.a.0.wait_ready().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = self.b.0.child.kill();
        let _ = self.b.0.child.wait();
        self.b.0 = self.start(self.b.1);
        self.b.0.wait_ready().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
    }
}

// Multi-threaded: the balancer must keep forwarding while a test thread blocks on kubectl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_replica_restarting_never_lets_an_unsupported_cluster_in() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    let ns = "chaos-webhook";
    cp.create_namespace(ns);
    let certs = CertFiles::new();
    let (port_a, port_b) = (free_port(), free_port());
    let a = Operator::start_on(cp, &cp.kubeconfig, &certs, port_a, &REPLICA_ARGS);
    let b = Operator::start_on(cp, &cp.kubeconfig, &certs, port_b, &REPLICA_ARGS);
    let mut replicas = Replicas {
        cp,
        certs: &certs,
        a: (a, port_a),
        b: (b, port_b),
    };
    replicas.a.0.wait_ready().await;
    replicas.b.0.wait_ready().await;
    let lb = balancer(vec![port_a, port_b]).await;
    let vwcs = register_behind(cp, lb, &certs).await;
    let probe = "apiVersion: konvoy.mesosphere.io/v1beta2\nkind: ClusterProvisioner\nmetadata: {name: p}\nspec: {version: v1.4.6}\n";
    wait_webhook_effective(cp, ns, probe).await;

    let api: Api<DynamicObject> = Api::namespaced_with(cp.client().await, ns, &ar());
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    tokio::join!(
        create_until(&api, ns, &stop, &tally),
        replicas.restart_both(&stop)
    );
    let (w, d, ok, f) = (
        tally.wrongly_admitted.load(Ordering::Relaxed),
        tally.rightly_denied.load(Ordering::Relaxed),
        tally.admitted.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    println!(
        "chaos: {ok} supported admitted, {d} unsupported denied, {w} wrongly admitted, {f} failed"
    );
    assert_eq!(
        w, 0,
        "an unsupported cluster got in while a replica restarted"
    );
    assert!(
        d > 10 && ok > 10,
        "the stream kept going: {ok} admitted, {d} denied"
    );
    vwcs.delete("supportgate-chaos", &DeleteParams::default())
        .await
        .expect("cleanup");
}

/// How many clusters have a Supported condition with `reason`; asserts none has two.
async fn count_with_reason(api: &Api<DynamicObject>, reason: &str) -> Option<usize> {
    let list = api.list(&ListParams::default()).await.ok()?;
    let mut with = 0;
    for o in &list.items {
        let supported: Vec<_> = o.data["status"]["conditions"]
            .as_array()
            .map(|cs| cs.iter().filter(|c| c["type"] == "Supported").collect())
            .unwrap_or_default();
        assert!(
            supported.len() <= 1,
            "duplicated Supported condition on {:?}",
            o.metadata.name
        );
        if supported.first().is_some_and(|c| c["reason"] == reason) {
            with += 1;
        }
    }
    Some(with)
}

#[tokio::test]
async fn the_controller_converges_1000_objects_across_an_api_server_restart() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    let ns = "chaos-controller";
    cp.create_namespace(ns);
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client().await, ns, &ar());
    let n = 1000;
    stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &cluster(ns, &format!("c{i:04}"), "v1.6.3", "1.18.13"),
                )
                .await
                .expect("create");
            }
        })
        .await;
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &["--no-leader-election"]);
    op.wait_ready().await;
    eventually(
        Duration::from_secs(120),
        "1,000 objects conditioned",
        || async { (count_with_reason(&api, "KonvoyNearingEnd").await? == n).then_some(()) },
    )
    .await;
    converges_across_an_api_server_restart(cp, &api, n).await;
    sigterm_mid_work_stops_the_controllers_first(cp, op).await;
}

/// Konvoy 1.9 is released, and the API server restarts while the controller works through it.
async fn converges_across_an_api_server_restart(
    cp: &ControlPlane,
    api: &Api<DynamicObject>,
    n: usize,
) {
    let with_19 = DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n    kommander: \"1.5\"\n",
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&with_19));
    let started = Instant::now();
    // Let the controller start on it, so that the restart comes mid-work.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cp.restart_apiserver();
    eventually(
        Duration::from_secs(180),
        "1,000 objects converged after the restart",
        || async { (count_with_reason(api, "KonvoyUnsupported").await? == n).then_some(()) },
    )
    .await;
    println!(
        "converged {n} objects across an API server restart in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Back to the default policy, which flips all 1,000 again, and SIGTERM while the controller
/// works through them: the process must stop its controllers before its runtime and exit
/// cleanly, without a panic from a reconciler cancelled under a live controller.
async fn sigterm_mid_work_stops_the_controllers_first(cp: &ControlPlane, mut op: Operator) {
    assert!(
        op.child.try_wait().unwrap().is_none(),
        "supportgate survived:\n{}",
        op.logs()
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    // Let the controller start on it, so that the signal comes mid-work.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(op.child.id().to_string())
        .status();
    let status = op.child.wait().expect("wait for supportgate");
    let logs = op.logs();
    assert!(status.success(), "exit after SIGTERM: {status}\n{logs}");
    assert!(!logs.contains("panicked"), "a panic at shutdown:\n{logs}");
    assert!(
        logs.contains("controller tasks stopped"),
        "shutdown did not wait for the controller's tasks:\n{logs}"
    );
}
