//! What admission costs through the real API server: the time of `create` calls of KonvoyClusters
//! (kube::Api, one at a time) in three namespaces that differ only in what validates them:
//!
//! - (a) `bench-a`: nothing;
//! - (b) `bench-b`: supportgate's webhook (the real server, in-process on its own runtime, called
//!   by the API server over TLS at https://127.0.0.1:PORT/validate, HTTP/1.1 as for a webhook
//!   behind a Service);
//! - (c) `bench-c`: a `ValidatingAdmissionPolicy` in CEL for one rule (Konvoy minor within
//!   1.6–1.8, with the Kubernetes CEL semver library), evaluated inside the API server;
//! - (d) `bench-d`: Kyverno's admission controller (hack/kyverno, its own process, as its
//!   development guide runs it outside a cluster) enforcing the whole Konvoy policy as a Kyverno
//!   user would write it (benches/peers/kyverno/konvoy-support.yaml, two CEL ValidatingPolicies);
//! - (e) `bench-e`: `supportgate run --no-controller` as its own process (the peer of (d) for
//!   CPU and memory: (b) shares this bench's process).
//!
//! For (d) and (e), each webhook process's CPU time over the timed creates (per review) and its
//! resident memory (idle before the timed creates, peak over its life) come from /proc. A
//! closed-loop run follows: `SG_BENCH_CONCURRENCY` (default 8) concurrent creates through the API
//! server, `SG_BENCH_CLOSED` (default 200) per variant and round, two rounds in rotated order.
//!
//! All are registered together (the webhooks, the policy binding and Kyverno's webhooks select
//! their namespace by `kubernetes.io/metadata.name`) and the creates are interleaved in rotated
//! order (a, b, c, d, e, then b, c, d, e, a, ...) so every variant sees the same API server, etcd
//! and machine state. A run of creates before anything is registered (a0) shows what the
//! registrations cost the unmatched namespace.
//! Every variant is shown in effect (a denied dry run) before anything is timed.
//!
//! Environment: `SG_BENCH_CREATES` (per variant, default 300), `SUPPORTGATE_CACHE` (the control
//! plane binaries, as for the end-to-end tests).

mod common;
use common::*;

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;
use support::ControlPlane;
use support::kyverno::{Kyverno, proc_usage};
use support::operator::{CertFiles, http_get};
use supportgate::engine::policyset::PolicySet;
use supportgate::runtime::metrics::{Metrics, VerdictLabels};
use supportgate::runtime::state::Shared;
use supportgate::webhook::config::{Endpoint, WebhookSettings, validating_webhook_configuration};
use supportgate::webhook::server::serve_webhook;
use supportgate::webhook::tls::{CertPaths, ReloadingResolver, generate, load_pair, server_config};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

const VWC: &str = "supportgate-bench";
const VAP: &str = "bench-konvoy-window";
const VWC_E: &str = "supportgate-bench-process";
const WEBHOOK_E: &str = "process.supportgate.dev";
const KYVERNO_POLICY: &str = "benches/peers/kyverno/konvoy-support.yaml";

fn cluster(name: &str, konvoy: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": name, "labels": {"environment": "production"}},
        "spec": {
            "cloudProviderAccountRef": {"name": "aws-prod"},
            "provisioner": {
                "provider": "aws",
                "aws": {"region": "us-west-2", "availabilityZones": ["us-west-2c"]},
                "nodePools": [
                    {"name": "worker", "count": 4, "machine": {"type": "m5.2xlarge"}},
                    {"name": "control-plane", "controlPlane": true, "count": 3, "machine": {"type": "m5.xlarge"}}
                ],
                "version": konvoy
            },
            "cluster": {
                "kubernetes": {"version": "1.20.13"},
                "addons": [
                    {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
                     "configVersion": "stable-1.20-4.4.0",
                     "addonsList": [{"name": "cert-manager", "enabled": true}, {"name": "prometheus", "enabled": true}, {"name": "traefik", "enabled": true}]},
                    {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander",
                     "configVersion": "stable-1.20-1.4.4",
                     "addonsList": [{"name": "kommander", "enabled": true}]}
                ]
            }
        }
    }))
    .expect("a KonvoyCluster")
}

/// The one rule, in CEL: the Konvoy minor must be 1.6, 1.7 or 1.8.
fn policy_yaml() -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {VAP}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [kommander.mesosphere.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [konvoyclusters]
  variables:
  - name: version
    expression: "has(object.spec.provisioner) && has(object.spec.provisioner.version) ? string(object.spec.provisioner.version) : ''"
  validations:
  - expression: "isSemver(variables.version, true) && semver(variables.version, true).major() == 1 && semver(variables.version, true).minor() >= 6 && semver(variables.version, true).minor() <= 8"
    messageExpression: "'[konvoy-unsupported] Konvoy ' + variables.version + ' is out of support: supported are 1.8.x, 1.7.x, 1.6.x'"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {VAP}}}
spec:
  policyName: {VAP}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {{kubernetes.io/metadata.name: bench-c}}
"#
    )
}

/// Starts supportgate's webhook server on its own runtime (as its own process would have);
/// returns its URL, CA, the metrics it counts into, and the stop switch.
fn start_webhook() -> (String, String, Arc<Metrics>, watch::Sender<bool>) {
    let certs = generate(&["127.0.0.1", "localhost"], "bench-ca").expect("certificates");
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let paths = CertPaths {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    std::fs::write(&paths.cert, &certs.cert_pem).expect("write cert");
    std::fs::write(&paths.key, &certs.key_pem).expect("write key");
    let (ck, _) = load_pair(&paths).expect("load the pair");
    // kube-apiserver calls webhooks behind a Service (and any non-loopback URL) over HTTP/1.1
    // only (ALPN `http/1.1`; kubernetes issue 75791), but would use HTTP/2 for this loopback URL.
    // Offer HTTP/1.1 only, so the bench takes the production path.
    let mut config = (*server_config(ReloadingResolver::new(ck)).expect("TLS config")).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let metrics = Arc::new(Metrics::new());
    let shared = Shared::new(None, metrics.clone(), 3 * 1024 * 1024 + 64 * 1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sg-webhook".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
                .thread_name("sg-server")
                .enable_all()
                .build()
                .expect("webhook runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                serve_webhook(listener, acceptor, shared, stop_rx, Duration::from_secs(5)).await;
            });
        })
        .expect("webhook thread");
    let addr = addr_rx.recv().expect("the webhook's address");
    (
        format!("https://{addr}/validate"),
        certs.ca_pem,
        metrics,
        stop_tx,
    )
}

/// Polls a server-side dry run of an unsupported cluster in `ns` until the error contains
/// `expect` (or, with `None`, until it is admitted).
async fn wait_dry_run(api: &Api<DynamicObject>, expect: Option<&str>, what: &str) {
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let start = Instant::now();
    loop {
        let r = api
            .create(&pp, &cluster("dry-run-unsupported", "v1.5.6"))
            .await;
        let ok = match (&r, expect) {
            (Ok(_), None) => true,
            (Err(e), Some(want)) => e.to_string().contains(want),
            _ => false,
        };
        if ok {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("{what} not in effect after 60 s; last answer: {r:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Stats {
    median: f64,
    p99: f64,
    mean: f64,
    n: usize,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |p: f64| {
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        ms(v[rank.clamp(1, v.len()) - 1])
    };
    let median = if v.len().is_multiple_of(2) {
        (ms(v[v.len() / 2 - 1]) + ms(v[v.len() / 2])) / 2.0
    } else {
        ms(v[v.len() / 2])
    };
    Stats {
        median,
        p99: at(99.0),
        mean: v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64,
        n: v.len(),
    }
}

async fn timed_create(api: &Api<DynamicObject>, name: &str) -> Duration {
    let obj = cluster(name, "v1.8.5");
    let start = Instant::now();
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    start.elapsed()
}

/// Sum and count of a Prometheus histogram `name`, over the series whose labels contain every
/// string in `labels`.
fn histogram(text: &str, name: &str, labels: &[&str]) -> (f64, f64) {
    let mut sum = 0.0;
    let mut count = 0.0;
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        if !labels.iter().all(|l| series.contains(l)) {
            continue;
        }
        let value: f64 = value.parse().unwrap_or(0.0);
        if series.starts_with(&format!("{name}_sum")) {
            sum += value;
        } else if series.starts_with(&format!("{name}_count")) {
            count += value;
        }
    }
    (sum, count)
}

fn apiserver_metrics(cp: &ControlPlane) -> String {
    cp.kubectl_ok(&["get", "--raw", "/metrics"], None)
}

/// Mean in ms over what a histogram gained between two scrapes.
fn mean_ms(before: (f64, f64), after: (f64, f64)) -> (f64, f64) {
    let n = after.1 - before.1;
    let mean = if n > 0.0 {
        (after.0 - before.0) / n * 1e3
    } else {
        f64::NAN
    };
    (mean, n)
}

fn main() {
    let n: usize = std::env::var("SG_BENCH_CREATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let warmup = 30;
    // As `supportgate run` does: an info-level subscriber (here writing to a sink).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .try_init();
    let cp = ControlPlane::shared();
    cp.install_crd_files("tests/fixtures/crds/");
    for ns in ["bench-a", "bench-b", "bench-c", "bench-d", "bench-e"] {
        cp.create_namespace(ns);
    }
    let version = String::from_utf8_lossy(&cp.kubectl_in(&["version", "-o", "json"], None).stdout)
        .into_owned();
    let server_version = serde_json::from_str::<serde_json::Value>(&version)
        .ok()
        .and_then(|v| v["serverVersion"]["gitVersion"].as_str().map(String::from))
        .unwrap_or_else(|| "unknown".into());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = cp.client().await;
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
            "konvoyclusters",
        );
        let api = |ns: &str| Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar);
        let (a, b, c) = (api("bench-a"), api("bench-b"), api("bench-c"));
        let (d, e) = (api("bench-d"), api("bench-e"));

        // a0: nothing registered.
        for i in 0..warmup {
            timed_create(&a, &format!("a0-warm-{i}")).await;
        }
        let mut a0 = Vec::new();
        for i in 0..n {
            a0.push(timed_create(&a, &format!("a0-{i}")).await);
        }

        // (b) the webhook, for bench-b only.
        let (url, ca, metrics, stop) = start_webhook();
        let settings = WebhookSettings {
            name: VWC.into(),
            endpoint: Endpoint::Url(url.clone()),
            ca_bundle_pem: ca.into_bytes(),
            failure_policy: "Fail".into(),
            timeout_seconds: 5,
            excluded_namespaces: Vec::new(),
        };
        let set = PolicySet::embedded_default();
        let mut vwc = validating_webhook_configuration(&settings, set.targets());
        for w in vwc.webhooks.iter_mut().flatten() {
            w.namespace_selector = Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    "bench-b".to_string(),
                )])),
                match_expressions: None,
            });
        }
        let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let _ = vwcs.delete(VWC, &DeleteParams::default()).await;
        vwcs.create(&PostParams::default(), &vwc)
            .await
            .expect("create the ValidatingWebhookConfiguration");
        // (c) the ValidatingAdmissionPolicy, for bench-c only.
        cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy_yaml()));
        // (d) Kyverno, for bench-d only; (e) supportgate as a process, for bench-e only.
        let mut kyverno = start_kyverno(cp);
        let mut process = SupportgateProcess::start(cp).await;
        register_process(&vwcs, &set, &process).await;

        wait_dry_run(
            &b,
            Some("admission webhook \"versions.supportgate.dev\" denied the request"),
            "the webhook",
        )
        .await;
        wait_dry_run(
            &c,
            Some(&format!("ValidatingAdmissionPolicy '{VAP}'")),
            "the ValidatingAdmissionPolicy",
        )
        .await;
        wait_dry_run(&d, Some("kyverno"), "Kyverno").await;
        wait_dry_run(
            &e,
            Some(&format!("admission webhook \"{WEBHOOK_E}\" denied the request")),
            "the supportgate process",
        )
        .await;
        wait_dry_run(&a, None, "nothing in bench-a").await;
        // And each leaves the supported cluster alone.
        for (api, ns) in [(&a, "a"), (&b, "b"), (&c, "c"), (&d, "d"), (&e, "e")] {
            for i in 0..warmup {
                timed_create(api, &format!("{ns}-warm-{i}")).await;
            }
        }
        let allowed = || {
            metrics
                .admission_requests
                .get_or_create(&VerdictLabels {
                    verdict: "allowed",
                    operation: "CREATE",
                })
                .get()
        };
        let reviews_before = allowed();
        const WEBHOOK_CALL: &str = "apiserver_admission_webhook_admission_duration_seconds";
        const WEBHOOK_LABELS: &[&str] = &["name=\"versions.supportgate.dev\"", "operation=\"CREATE\""];
        const SERVER_SIDE: &str = "supportgate_admission_duration_seconds";
        let m0 = apiserver_metrics(cp);
        let s0 = metrics.encode();
        let ky_requests0 = kyverno_requests(&kyverno).await;
        let idle = [proc_usage(kyverno.pid()), proc_usage(process.pid())];

        let mut times: [Vec<Duration>; 5] = Default::default();
        let apis = [&a, &b, &c, &d, &e];
        for i in 0..n {
            // Rotate the order so no variant always runs right after the same other one.
            for k in 0..5 {
                let v = (i + k) % 5;
                let name = format!("{}-{i}", ["a", "b", "c", "d", "e"][v]);
                times[v].push(timed_create(apis[v], &name).await);
            }
        }
        let busy = [proc_usage(kyverno.pid()), proc_usage(process.pid())];
        let ky_requests = kyverno_requests(&kyverno).await - ky_requests0;
        let reviewed = allowed() - reviews_before;
        let m1 = apiserver_metrics(cp);
        let s1 = metrics.encode();
        let webhook_call = mean_ms(
            histogram(&m0, WEBHOOK_CALL, WEBHOOK_LABELS),
            histogram(&m1, WEBHOOK_CALL, WEBHOOK_LABELS),
        );
        let server_side = mean_ms(
            histogram(&s0, SERVER_SIDE, &[]),
            histogram(&s1, SERVER_SIDE, &[]),
        );
        assert_eq!(
            reviewed, n as u64,
            "the webhook answered exactly the bench-b creates"
        );

        kyverno.assert_running();
        let closed = closed_loop(&[("a", &a), ("c", &c), ("d", &d), ("e", &e)]).await;
        kyverno.stop();
        process.stop();
        vwcs.delete(VWC_E, &DeleteParams::default())
            .await
            .expect("delete the process's webhook configuration");
        vwcs.delete(VWC, &DeleteParams::default())
            .await
            .expect("delete the webhook configuration");
        cp.kubectl_ok(
            &[
                "delete",
                "validatingadmissionpolicybinding,validatingadmissionpolicy",
                VAP,
            ],
            None,
        );
        let _ = stop.send(true);

        let [ta, tb, tc, td, te] = times;
        let (s0, sa, sb, sc) = (stats(a0), stats(ta), stats(tb), stats(tc));
        let (sd, se) = (stats(td), stats(te));
        println!("\n== supportgate through the API server ==");
        println!(
            "machine: {} cores, {}; kube-apiserver {server_version} + etcd on the same machine; load average: {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
            load_average()
        );
        println!(
            "{n} sequential `create` calls of a KonvoyCluster per variant (kube::Api, {warmup} warm-up creates each), interleaved; times in ms"
        );
        println!(
            "  {:<46} {:>8} {:>8} {:>8} {:>6}",
            "", "median", "p99", "mean", "n"
        );
        for (name, s) in [
            ("(a0) nothing registered at all", &s0),
            ("(a) no webhook (namespace not matched)", &sa),
            ("(b) supportgate webhook", &sb),
            ("(c) ValidatingAdmissionPolicy (CEL, 1 rule)", &sc),
            ("(d) Kyverno (2 ValidatingPolicies, whole policy)", &sd),
            ("(e) supportgate run, own process", &se),
        ] {
            println!(
                "  {:<46} {:>8.3} {:>8.3} {:>8.3} {:>6}",
                name, s.median, s.p99, s.mean, s.n
            );
        }
        println!("added to a create, against (a):");
        println!(
            "  (b)-(a): median {:+.3} ms, p99 {:+.3} ms, mean {:+.3} ms",
            sb.median - sa.median,
            sb.p99 - sa.p99,
            sb.mean - sa.mean
        );
        println!(
            "  (c)-(a): median {:+.3} ms, p99 {:+.3} ms, mean {:+.3} ms",
            sc.median - sa.median,
            sc.p99 - sa.p99,
            sc.mean - sa.mean
        );
        for (name, s) in [("(d)", &sd), ("(e)", &se)] {
            println!(
                "  {name}-(a): median {:+.3} ms, p99 {:+.3} ms, mean {:+.3} ms",
                s.median - sa.median,
                s.p99 - sa.p99,
                s.mean - sa.mean
            );
        }
        println!(
            "  ratio Kyverno/supportgate (own processes) of the time added: median {:.2}x, p99 {:.2}x",
            (sd.median - sa.median) / (se.median - sa.median),
            (sd.p99 - sa.p99) / (se.p99 - sa.p99)
        );
        print_process_costs(n, ky_requests, idle, busy);
        print_closed_loop(&closed);
        println!(
            "  (a)-(a0): median {:+.3} ms (the cost of the registrations to a namespace none matches)",
            sa.median - s0.median
        );
        println!(
            "where (b) spends it (means over the timed creates, from the servers' own metrics; kube-apiserver times a ValidatingAdmissionPolicy only when it denies or fails):"
        );
        println!(
            "  kube-apiserver calling the webhook ({WEBHOOK_CALL}): {:.3} ms over {} calls",
            webhook_call.0, webhook_call.1
        );
        println!(
            "    of which supportgate, body received to answer encoded ({SERVER_SIDE}): {:.3} ms over {} reviews",
            server_side.0, server_side.1
        );

    });
}

/// Kyverno's admission controller for bench-d only, with the policy in effect.
fn start_kyverno(cp: &ControlPlane) -> Kyverno {
    let selector = r#"{"matchLabels":{"kubernetes.io/metadata.name":"bench-d"}}"#;
    let mut k = Kyverno::start_with_selector(cp, selector);
    let mut probe = cluster("dry-run-unsupported", "v1.5.6");
    probe.metadata.namespace = Some("bench-d".into());
    let probe = serde_json::to_string(&probe).expect("probe JSON");
    k.apply_and_wait(cp, &support::repo().join(KYVERNO_POLICY), "bench-d", &probe);
    k
}

/// `supportgate run --no-controller` as its own process (webhook only, info logging as
/// deployed); killed on drop.
struct SupportgateProcess {
    child: std::process::Child,
    port: u16,
    ca: String,
    _certs: CertFiles,
}

impl SupportgateProcess {
    async fn start(cp: &ControlPlane) -> SupportgateProcess {
        let certs = CertFiles::new();
        let port = support::free_port();
        let health = support::free_port();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_supportgate"))
            .arg("run")
            .arg(format!("--webhook-addr=127.0.0.1:{port}"))
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .arg("--tls-cert-file")
            .arg(certs.cert())
            .arg("--tls-key-file")
            .arg(certs.key())
            .arg("--no-controller")
            .env("KUBECONFIG", &cp.kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn supportgate run");
        let start = Instant::now();
        while !matches!(http_get(health, "/readyz").await, Ok((200, _))) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("supportgate run exited early ({status})");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "supportgate run not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ca = certs.generated.ca_pem.clone();
        SupportgateProcess {
            child,
            port,
            ca,
            _certs: certs,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SupportgateProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn register_process(
    vwcs: &Api<ValidatingWebhookConfiguration>,
    set: &PolicySet,
    p: &SupportgateProcess,
) {
    let settings = WebhookSettings {
        name: VWC_E.into(),
        endpoint: Endpoint::Url(format!("https://127.0.0.1:{}/validate", p.port)),
        ca_bundle_pem: p.ca.clone().into_bytes(),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        excluded_namespaces: Vec::new(),
    };
    let mut vwc = validating_webhook_configuration(&settings, set.targets());
    for w in vwc.webhooks.iter_mut().flatten() {
        // Its own webhook name, so kube-apiserver's per-webhook metrics keep (b) and (e) apart.
        w.name = WEBHOOK_E.into();
        w.namespace_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_string(),
                "bench-e".to_string(),
            )])),
            match_expressions: None,
        });
    }
    let _ = vwcs.delete(VWC_E, &DeleteParams::default()).await;
    vwcs.create(&PostParams::default(), &vwc)
        .await
        .expect("create the process's ValidatingWebhookConfiguration");
}

/// The admission requests Kyverno counted (its Prometheus endpoint), or NaN if unreadable.
async fn kyverno_requests(k: &Kyverno) -> f64 {
    let Ok((200, text)) = http_get(k.metrics_port, "/metrics").await else {
        return f64::NAN;
    };
    text.lines()
        .filter(|l| l.starts_with("kyverno_admission_requests_total"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

fn print_process_costs(
    n: usize,
    ky_requests: f64,
    idle: [(u64, u64, u64); 2],
    busy: [(u64, u64, u64); 2],
) {
    // SAFETY: sysconf reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    println!(
        "webhook processes over the {n} timed creates each (CPU from /proc/PID/stat, RSS from /proc/PID/status; Kyverno counted {ky_requests} admission requests):"
    );
    println!(
        "  {:<34} {:>16} {:>14} {:>14}",
        "", "CPU per review", "idle RSS", "peak RSS"
    );
    for (name, i, b) in [
        ("(d) Kyverno", idle[0], busy[0]),
        ("(e) supportgate run", idle[1], busy[1]),
    ] {
        let cpu_ms = (b.2 - i.2) as f64 / tick / n as f64 * 1e3;
        println!(
            "  {:<34} {:>13.3} ms {:>10.1} MiB {:>10.1} MiB",
            name,
            cpu_ms,
            i.0 as f64 / 1024.0,
            b.1 as f64 / 1024.0
        );
    }
    let cpu = |k: usize| (busy[k].2 - idle[k].2) as f64;
    println!(
        "  ratio Kyverno/supportgate: CPU per review {:.1}x, idle RSS {:.1}x, peak RSS {:.1}x",
        cpu(0) / cpu(1).max(1.0),
        idle[0].0 as f64 / idle[1].0.max(1) as f64,
        busy[0].1 as f64 / busy[1].1.max(1) as f64
    );
}

/// Throughput with `SG_BENCH_CONCURRENCY` creates in flight: creates per second for each
/// variant, over two rounds in rotated order.
async fn closed_loop(variants: &[(&str, &Api<DynamicObject>)]) -> Vec<(String, f64)> {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let concurrency = env("SG_BENCH_CONCURRENCY", 8).max(1);
    let per_round = env("SG_BENCH_CLOSED", 200).max(concurrency);
    let mut totals: Vec<(Duration, usize)> = vec![(Duration::ZERO, 0); variants.len()];
    for round in 0..2 {
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            let (tag, api) = variants[v];
            let start = Instant::now();
            let next = std::sync::atomic::AtomicUsize::new(0);
            let workers = (0..concurrency).map(|_| async {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= per_round {
                        break;
                    }
                    timed_create(api, &format!("closed-{tag}-{round}-{i}")).await;
                }
            });
            futures::future::join_all(workers).await;
            totals[v].0 += start.elapsed();
            totals[v].1 += per_round;
        }
    }
    variants
        .iter()
        .zip(totals)
        .map(|((tag, _), (t, count))| {
            (
                format!("({tag}) x{concurrency}"),
                count as f64 / t.as_secs_f64(),
            )
        })
        .collect()
}

fn print_closed_loop(closed: &[(String, f64)]) {
    println!("closed loop (creates in flight through the API server; creates per second):");
    for (name, rate) in closed {
        println!("  {name:<34} {rate:>10.1}/s");
    }
    let rate = |tag: &str| {
        closed
            .iter()
            .find(|(n, _)| n.starts_with(tag))
            .map_or(f64::NAN, |(_, r)| *r)
    };
    println!(
        "  ratio of throughput supportgate (e) / Kyverno (d): {:.2}x",
        rate("(e)") / rate("(d)")
    );
}
