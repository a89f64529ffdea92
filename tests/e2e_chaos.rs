//! Chaos: a webhook replica restarts under a steady stream of creates (nothing unsupported may
//! slip through), and the API server restarts while the controller converges 1,000 objects
//! (no condition lost or duplicated).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    let args = ["--no-controller", "--shutdown-drain-seconds=1"];
    let mut a = Operator::start_on(cp, &cp.kubeconfig, &certs, port_a, &args);
    let mut b = Operator::start_on(cp, &cp.kubeconfig, &certs, port_b, &args);
    a.wait_ready().await;
    b.wait_ready().await;
    let lb = balancer(vec![port_a, port_b]).await;

    let settings = WebhookSettings {
        name: "supportgate-chaos".into(),
        endpoint: Endpoint::Url(format!("https://127.0.0.1:{lb}/validate")),
        ca_bundle_pem: certs.generated.ca_pem.clone().into_bytes(),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        // Only this test's namespace: the other test of this binary may run alongside.
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
    let probe = "apiVersion: konvoy.mesosphere.io/v1beta2\nkind: ClusterProvisioner\nmetadata: {name: p}\nspec: {version: v1.4.6}\n";
    wait_webhook_effective(cp, ns, probe).await;

    let api: Api<DynamicObject> = Api::namespaced_with(cp.client().await, ns, &ar());
    let (wrongly_admitted, rightly_denied, admitted, failed) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = async {
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
                (Ok(_), true) => wrongly_admitted.fetch_add(1, Ordering::Relaxed),
                (Ok(_), false) => admitted.fetch_add(1, Ordering::Relaxed),
                (Err(kube::Error::Api(s)), true) if s.message.contains("[konvoy-unsupported]") => {
                    rightly_denied.fetch_add(1, Ordering::Relaxed)
                }
                (Err(_), _) => failed.fetch_add(1, Ordering::Relaxed),
            };
        }
    };
    let chaos = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // SIGTERM replica A (it drains), then start it again on the same port.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(a.child.id().to_string())
            .status();
        let _ = a.child.wait();
        a = Operator::start_on(cp, &cp.kubeconfig, &certs, port_a, &args);
        a.wait_ready().await;
        // And once more without grace: a crash.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = b.child.kill();
        let _ = b.child.wait();
        b = Operator::start_on(cp, &cp.kubeconfig, &certs, port_b, &args);
        b.wait_ready().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
    };
    tokio::join!(load, chaos);
    let (w, d, ok, f) = (
        wrongly_admitted.load(Ordering::Relaxed),
        rightly_denied.load(Ordering::Relaxed),
        admitted.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
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

    let count = |reason: &'static str| {
        let api = api.clone();
        async move {
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
    };
    eventually(
        Duration::from_secs(120),
        "1,000 objects conditioned",
        || async { (count("KonvoyNearingEnd").await? == n).then_some(()) },
    )
    .await;

    // Konvoy 1.9 is released, and the API server restarts while the controller works through it.
    let with_19 = DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n    kommander: \"1.5\"\n",
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&with_19));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cp.restart_apiserver();
    eventually(
        Duration::from_secs(180),
        "1,000 objects converged after the restart",
        || async { (count("KonvoyUnsupported").await? == n).then_some(()) },
    )
    .await;
    println!(
        "converged {n} objects across an API server restart in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        op.child.try_wait().unwrap().is_none(),
        "supportgate survived:\n{}",
        op.logs()
    );
    // Back to the default policy, which flips all 1,000 again, and SIGTERM while the
    // controller works through them: the process must stop its controllers before its runtime
    // and exit cleanly, without a panic from a reconciler cancelled under a live controller.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
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
