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
//! - (f) `bench-f`, only with `SG_BENCH_APISERVER_BASELINE=<path of another supportgate binary>`:
//!   that build as its own process, exactly as (e), so two builds are compared in the same run.
//!
//! - (g) `bench-g`: a trivial webhook on the same TLS configuration and HTTP/1.1 stack as (b), in
//!   this process, that reads the review, finds its uid and answers "allowed": what any webhook
//!   costs kube-apiserver to call, whatever it does. (b)-(g) is supportgate's own share.
//!
//! For (d), (e) and (f), each webhook process's CPU time over the timed creates (per review) and its
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

// The shipped binary's allocator (src/main.rs), so that (b), in this process, serves as (e) does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::*;

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;
use support::ControlPlane;
use support::kyverno::{Kyverno, proc_usage};
use support::operator::{CertFiles, http_get};
use supportgate::api::webhook_configuration::{
    Endpoint, WebhookSettings, validating_webhook_configuration,
};
use supportgate::base::metrics::{Metrics, VerdictLabels};
use supportgate::base::state::Shared;
use supportgate::engine::policyset::PolicySet;
use supportgate::webhook::server::serve_webhook;
use supportgate::webhook::tls::{CertPaths, ReloadingResolver, generate, load_pair, server_config};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

const VWC: &str = "supportgate-bench";
const VAP: &str = "bench-konvoy-window";
/// Where a `supportgate run` process of the bench is registered: its own configuration and
/// webhook name (so kube-apiserver's per-webhook metrics keep the variants apart), for one
/// namespace.
struct Hook {
    vwc: &'static str,
    webhook: &'static str,
    namespace: &'static str,
}

const HOOK_B: Hook = Hook {
    vwc: VWC,
    webhook: "versions.supportgate.dev",
    namespace: "bench-b",
};
const HOOK_E: Hook = Hook {
    vwc: "supportgate-bench-process",
    webhook: "process.supportgate.dev",
    namespace: "bench-e",
};
const HOOK_F: Hook = Hook {
    vwc: "supportgate-bench-baseline",
    webhook: "baseline.supportgate.dev",
    namespace: "bench-f",
};
const HOOK_G: Hook = Hook {
    vwc: "supportgate-bench-trivial",
    webhook: "trivial.bench.supportgate.dev",
    namespace: "bench-g",
};
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
    let (acceptor, ca) = http1_acceptor();
    let metrics = Arc::new(Metrics::new());
    let shared = Shared::new(None, metrics.clone(), 3 * 1024 * 1024 + 64 * 1024);
    // The embedded default is the policy here: nothing to sync, so reviews are judged.
    shared.mark_synced_for_tests();
    let (stop_tx, stop_rx) = watch::channel(false);
    let addr = spawn_server("sg-webhook", move |listener| async move {
        serve_webhook(listener, acceptor, shared, stop_rx, Duration::from_secs(5)).await;
    });
    (format!("https://{addr}/validate"), ca, metrics, stop_tx)
}

/// A TLS acceptor with supportgate's server configuration for 127.0.0.1, and its CA.
fn http1_acceptor() -> (TlsAcceptor, String) {
    let certs = generate(&["127.0.0.1", "localhost"], "bench-ca").expect("certificates");
    // The pair is read once into memory; the directory goes when this returns.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
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
    (TlsAcceptor::from(Arc::new(config)), certs.ca_pem)
}

/// Runs `serve` on a listener of 127.0.0.1 on its own multi-threaded runtime (as its own process
/// would have), on a thread named `name`; returns the listener's address.
fn spawn_server<F, Fut>(name: &str, serve: F) -> std::net::SocketAddr
where
    F: FnOnce(TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
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
                serve(listener).await;
            });
        })
        .expect("server thread");
    addr_rx.recv().expect("the server's address")
}

/// (g): the trivial webhook. Returns its URL, CA and the count of reviews it answered. It runs
/// until the process exits.
fn start_trivial_webhook() -> (String, String, Arc<AtomicU64>) {
    let (acceptor, ca) = http1_acceptor();
    let answered = Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    let addr = spawn_server("sg-trivial", move |listener| {
        serve_trivial(listener, acceptor, count)
    });
    (format!("https://{addr}/validate"), ca, answered)
}

async fn serve_trivial(listener: TcpListener, acceptor: TlsAcceptor, answered: Arc<AtomicU64>) {
    let builder = hyper::server::conn::http1::Builder::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, answered) = (acceptor.clone(), builder.clone(), answered.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let answered = answered.clone();
                async move {
                    let body = Limited::new(req.into_body(), 3 * 1024 * 1024)
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    answered.fetch_add(1, Ordering::Relaxed);
                    let mut r = http::Response::new(Full::new(allow_answer(&body)));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
        });
    }
}

/// "Allowed" for the review in `body`. kube-apiserver encodes `request.uid` as the request's
/// first field, so the first `"uid":"` is it (a wrong uid would fail the create, and the bench).
fn allow_answer(body: &[u8]) -> Bytes {
    let text = std::str::from_utf8(body).unwrap_or("");
    let uid = text
        .split_once("\"uid\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(uid, _)| uid);
    Bytes::from(format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"{uid}","allowed":true}}}}"#
    ))
}

/// Polls a server-side dry run of an unsupported cluster in `ns` until the error contains
/// `expect` (or, with `None`, until it is admitted).
fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..PostParams::default()
    }
}

async fn wait_dry_run(api: &Api<DynamicObject>, expect: Option<&str>, what: &str) {
    let pp = dry_run();
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

/// The value of the unlabelled counter `name` in a Prometheus text exposition (NaN if absent).
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
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

/// One namespace of the interleaved creates and what validates it.
struct Variant {
    tag: &'static str,
    label: &'static str,
    api: Api<DynamicObject>,
}

/// What the servers' own metrics say about (b)'s webhook calls over the timed creates.
struct CallSplit {
    webhook_call: (f64, f64),
    server_side: (f64, f64),
    /// Connections supportgate accepted over the timed creates: 0 when kube-apiserver keeps
    /// reusing one, so no create pays a TLS handshake.
    connections: f64,
}

const WEBHOOK_CALL: &str = "apiserver_admission_webhook_admission_duration_seconds";
const WEBHOOK_LABELS: &[&str] = &["name=\"versions.supportgate.dev\"", "operation=\"CREATE\""];
const SERVER_SIDE: &str = "supportgate_admission_duration_seconds";
const ACCEPTED: &str = "supportgate_webhook_connections_accepted_total";

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env_usize("SG_BENCH_CREATES", 300);
    let baseline = std::env::var_os("SG_BENCH_APISERVER_BASELINE").map(PathBuf::from);
    if let Some(bin) = &baseline {
        assert!(
            bin.is_file(),
            "SG_BENCH_APISERVER_BASELINE={}: no such file",
            bin.display()
        );
    }
    // As `supportgate run` does: an info-level subscriber (here writing to a sink).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .try_init();
    let cp = ControlPlane::shared();
    cp.install_crd_files("tests/fixtures/crds/");
    for ns in [
        "bench-a", "bench-b", "bench-c", "bench-d", "bench-e", "bench-f", "bench-g",
    ] {
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
    rt.block_on(run(cp, n, baseline.as_deref(), &server_version));
}

#[expect(
    clippy::too_many_lines,
    reason = "one measured run: every variant shares the client, the warm-up and the process handles, in the order the figures are printed"
)]
async fn run(cp: &ControlPlane, n: usize, baseline: Option<&Path>, server_version: &str) {
    let warmup = 30;
    let client = cp.client().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters",
    );
    let api = |ns: &str| Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar);
    let mut variants = vec![
        Variant {
            tag: "a",
            label: "(a) no webhook (namespace not matched)",
            api: api("bench-a"),
        },
        Variant {
            tag: "b",
            label: "(b) supportgate webhook",
            api: api("bench-b"),
        },
        Variant {
            tag: "c",
            label: "(c) ValidatingAdmissionPolicy (CEL, 1 rule)",
            api: api("bench-c"),
        },
        Variant {
            tag: "d",
            label: "(d) Kyverno (2 ValidatingPolicies, whole policy)",
            api: api("bench-d"),
        },
        Variant {
            tag: "e",
            label: "(e) supportgate run, own process",
            api: api("bench-e"),
        },
        Variant {
            tag: "g",
            label: "(g) trivial webhook (reads, answers allowed)",
            api: api("bench-g"),
        },
    ];
    if baseline.is_some() {
        variants.push(Variant {
            tag: "f",
            label: "(f) supportgate run, baseline build",
            api: api("bench-f"),
        });
    }

    // a0: nothing registered.
    let a0 = creates(&variants[0].api, "a0", warmup, n).await;

    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let set = PolicySet::embedded_default();
    // (b) the webhook, for bench-b only.
    let (url, ca, metrics, stop) = start_webhook();
    register(&vwcs, &set, (url, &ca), &HOOK_B).await;
    // (g) the trivial webhook, for bench-g only.
    let (url, ca, trivial) = start_trivial_webhook();
    register(&vwcs, &set, (url, &ca), &HOOK_G).await;
    // (c) the ValidatingAdmissionPolicy, for bench-c only.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy_yaml()));
    // (d) Kyverno, for bench-d only; (e) supportgate as a process, for bench-e only; (f) the
    // baseline build, for bench-f only.
    let mut kyverno = start_kyverno(cp);
    let own = Path::new(env!("CARGO_BIN_EXE_supportgate"));
    let mut processes = vec![SupportgateProcess::start(cp, own).await];
    register(&vwcs, &set, processes[0].url_ca(), &HOOK_E).await;
    if let Some(bin) = baseline {
        processes.push(SupportgateProcess::start(cp, bin).await);
        register(&vwcs, &set, processes[1].url_ca(), &HOOK_F).await;
    }
    wait_in_effect(&variants, &trivial).await;
    for v in &variants {
        creates(&v.api, &format!("{}-warm", v.tag), warmup, 0).await;
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
    let trivial_before = trivial.load(Ordering::Relaxed);
    let (m0, s0) = (apiserver_metrics(cp), metrics.encode());
    let ky_requests0 = kyverno_requests(&kyverno).await;
    let pids: Vec<u32> = std::iter::once(kyverno.pid())
        .chain(processes.iter().map(SupportgateProcess::pid))
        .collect();
    let idle: Vec<_> = pids.iter().map(|p| proc_usage(*p)).collect();
    let times = interleaved(&variants, n).await;
    let busy: Vec<_> = pids.iter().map(|p| proc_usage(*p)).collect();
    let ky_requests = kyverno_requests(&kyverno).await - ky_requests0;
    let reviewed = allowed() - reviews_before;
    let trivial_reviewed = trivial.load(Ordering::Relaxed) - trivial_before;
    let (m1, s1) = (apiserver_metrics(cp), metrics.encode());
    let split = CallSplit {
        webhook_call: mean_ms(
            histogram(&m0, WEBHOOK_CALL, WEBHOOK_LABELS),
            histogram(&m1, WEBHOOK_CALL, WEBHOOK_LABELS),
        ),
        server_side: mean_ms(
            histogram(&s0, SERVER_SIDE, &[]),
            histogram(&s1, SERVER_SIDE, &[]),
        ),
        connections: counter(&s1, ACCEPTED) - counter(&s0, ACCEPTED),
    };
    assert_eq!(
        reviewed, n as u64,
        "the webhook answered exactly the bench-b creates"
    );
    assert_eq!(
        trivial_reviewed, n as u64,
        "the trivial webhook answered exactly the bench-g creates"
    );

    kyverno.assert_running();
    let looped: Vec<(&str, &Api<DynamicObject>)> = variants
        .iter()
        .filter(|v| v.tag != "b" && v.tag != "g")
        .map(|v| (v.tag, &v.api))
        .collect();
    let closed = closed_loop(&looped).await;
    kyverno.stop();
    for p in &mut processes {
        p.stop();
    }
    let mut configs = vec![HOOK_E.vwc, HOOK_G.vwc, VWC];
    if baseline.is_some() {
        configs.push(HOOK_F.vwc);
    }
    for name in configs {
        vwcs.delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete the webhook configuration {name}: {e}"));
    }
    cp.kubectl_ok(
        &[
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            VAP,
        ],
        None,
    );
    let _ = stop.send(true);

    let all: Vec<Stats> = times.into_iter().map(stats).collect();
    print_times(n, warmup, server_version, &stats(a0), &variants, &all);
    print_process_costs(n, ky_requests, &idle, &busy);
    print_closed_loop(&closed);
    print_call_split(&split);
}

/// `warmup` untimed creates, then `n` timed ones, in the namespace of `api`.
async fn creates(api: &Api<DynamicObject>, prefix: &str, warmup: usize, n: usize) -> Vec<Duration> {
    for i in 0..warmup {
        timed_create(api, &format!("{prefix}-warm-{i}")).await;
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        times.push(timed_create(api, &format!("{prefix}-{i}")).await);
    }
    times
}

/// `n` creates per variant, in an order rotated each round so no variant always runs right
/// after the same other one.
async fn interleaved(variants: &[Variant], n: usize) -> Vec<Vec<Duration>> {
    let mut times = vec![Vec::with_capacity(n); variants.len()];
    for i in 0..n {
        for k in 0..variants.len() {
            let v = (i + k) % variants.len();
            let name = format!("{}-{i}", variants[v].tag);
            times[v].push(timed_create(&variants[v].api, &name).await);
        }
    }
    times
}

fn namespace_selector(ns: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            ns.to_string(),
        )])),
        match_expressions: None,
    }
}

/// Every variant is shown in effect before anything is timed: an unsupported cluster is denied
/// by what validates its namespace, and admitted where nothing does.
async fn wait_in_effect(variants: &[Variant], trivial: &AtomicU64) {
    for v in variants {
        if v.tag == "g" {
            // It admits everything: in effect once it has answered a dry run.
            let start = Instant::now();
            while trivial.load(Ordering::Relaxed) == 0 {
                let _ = v
                    .api
                    .create(&dry_run(), &cluster("dry-run-trivial", "v1.5.6"))
                    .await;
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "the trivial webhook never called"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        }
        let (expect, what) = match v.tag {
            "a" => (None, "nothing in bench-a".to_string()),
            "b" => (
                Some(
                    "admission webhook \"versions.supportgate.dev\" denied the request".to_string(),
                ),
                "the webhook".to_string(),
            ),
            "c" => (
                Some(format!("ValidatingAdmissionPolicy '{VAP}'")),
                "the ValidatingAdmissionPolicy".to_string(),
            ),
            "d" => (Some("kyverno".to_string()), "Kyverno".to_string()),
            tag => {
                let hook = if tag == "e" { &HOOK_E } else { &HOOK_F };
                (
                    Some(format!(
                        "admission webhook \"{}\" denied the request",
                        hook.webhook
                    )),
                    format!("the supportgate process in {}", hook.namespace),
                )
            }
        };
        wait_dry_run(&v.api, expect.as_deref(), &what).await;
    }
}

fn print_times(
    n: usize,
    warmup: usize,
    server_version: &str,
    s0: &Stats,
    variants: &[Variant],
    stats: &[Stats],
) {
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
        "  {:<50} {:>8} {:>8} {:>8} {:>6}",
        "", "median", "p99", "mean", "n"
    );
    let row = |name: &str, s: &Stats| {
        println!(
            "  {:<50} {:>8.3} {:>8.3} {:>8.3} {:>6}",
            name, s.median, s.p99, s.mean, s.n
        );
    };
    row("(a0) nothing registered at all", s0);
    for (v, s) in variants.iter().zip(stats) {
        row(v.label, s);
    }
    let sa = &stats[0];
    println!("added to a create, against (a):");
    for (v, s) in variants.iter().zip(stats).skip(1) {
        println!(
            "  ({})-(a): median {:+.3} ms, p99 {:+.3} ms, mean {:+.3} ms",
            v.tag,
            s.median - sa.median,
            s.p99 - sa.p99,
            s.mean - sa.mean
        );
    }
    let of = |tag: &str| {
        variants
            .iter()
            .position(|v| v.tag == tag)
            .map(|i| &stats[i])
    };
    let added = |tag: &str| of(tag).map_or(f64::NAN, |s| s.median - sa.median);
    println!(
        "  (b)-(c): median {:+.3} ms (the webhook against one CEL rule in the API server; target <= +0.3 ms)",
        added("b") - added("c")
    );
    println!(
        "  (g)-(c): median {:+.3} ms (calling any webhook at all, against one CEL rule)",
        added("g") - added("c")
    );
    println!(
        "  (b)-(g): median {:+.3} ms (supportgate's own share: its server against the trivial one)",
        added("b") - added("g")
    );
    let p99 = |tag: &str| of(tag).map_or(f64::NAN, |s| s.p99 - sa.p99);
    println!(
        "  ratio Kyverno/supportgate (own processes) of the time added: median {:.2}x, p99 {:.2}x",
        added("d") / added("e"),
        p99("d") / p99("e")
    );
    if of("f").is_some() {
        println!(
            "  ratio this build/baseline build (e)/(f) of the time added: median {:.2}x",
            added("e") / added("f")
        );
    }
    println!(
        "  (a)-(a0): median {:+.3} ms (the cost of the registrations to a namespace none matches)",
        sa.median - s0.median
    );
}

fn print_call_split(split: &CallSplit) {
    println!(
        "where (b) spends it (means over the timed creates, from the servers' own metrics; kube-apiserver times a ValidatingAdmissionPolicy only when it denies or fails):"
    );
    println!(
        "  kube-apiserver calling the webhook ({WEBHOOK_CALL}): {:.3} ms over {} calls",
        split.webhook_call.0, split.webhook_call.1
    );
    println!(
        "    of which supportgate, body received to answer encoded ({SERVER_SIDE}): {:.3} ms over {} reviews",
        split.server_side.0, split.server_side.1
    );
    println!(
        "  connections supportgate accepted over them ({ACCEPTED}): {}",
        split.connections
    );
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
    async fn start(cp: &ControlPlane, binary: &Path) -> SupportgateProcess {
        let certs = CertFiles::new();
        let port = support::free_port();
        let health = support::free_port();
        let mut child = std::process::Command::new(binary)
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
            .unwrap_or_else(|e| panic!("spawn {} run: {e}", binary.display()));
        let start = Instant::now();
        while !matches!(http_get(health, "/readyz").await, Ok((200, _))) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} run exited early ({status})", binary.display());
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

    fn url_ca(&self) -> (String, &str) {
        (
            format!("https://127.0.0.1:{}/validate", self.port),
            &self.ca,
        )
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

/// Registers the webhook at `url` (its CA `ca`) for the kinds supportgate validates, in
/// `hook.namespace` only.
async fn register(
    vwcs: &Api<ValidatingWebhookConfiguration>,
    set: &PolicySet,
    (url, ca): (String, &str),
    hook: &Hook,
) {
    let settings = WebhookSettings {
        name: hook.vwc.into(),
        endpoint: Endpoint::Url(url),
        ca_bundle_pem: ca.as_bytes().to_vec(),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        excluded_namespaces: Vec::new(),
    };
    let mut vwc = validating_webhook_configuration(&settings, set.targets());
    for w in vwc.webhooks.iter_mut().flatten() {
        w.name = hook.webhook.into();
        w.namespace_selector = Some(namespace_selector(hook.namespace));
    }
    let _ = vwcs.delete(hook.vwc, &DeleteParams::default()).await;
    vwcs.create(&PostParams::default(), &vwc)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create the ValidatingWebhookConfiguration {}: {e}",
                hook.vwc
            )
        });
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

/// CPU per review and memory of the webhook processes: Kyverno (d), this build (e) and, if
/// given, the baseline build (f), in that order.
fn print_process_costs(
    n: usize,
    ky_requests: f64,
    idle: &[(u64, u64, u64)],
    busy: &[(u64, u64, u64)],
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
    let names = [
        "(d) Kyverno",
        "(e) supportgate run",
        "(f) supportgate run, baseline",
    ];
    for ((name, i), b) in names.iter().zip(idle).zip(busy) {
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
    let ratios = |x: usize, y: usize| {
        format!(
            "CPU per review {:.2}x, idle RSS {:.2}x, peak RSS {:.2}x",
            cpu(x) / cpu(y).max(1.0),
            idle[x].0 as f64 / idle[y].0.max(1) as f64,
            busy[x].1 as f64 / busy[y].1.max(1) as f64
        )
    };
    println!("  ratio Kyverno/supportgate: {}", ratios(0, 1));
    if idle.len() > 2 {
        println!("  ratio this build/baseline build: {}", ratios(1, 2));
    }
}

/// Throughput with `SG_BENCH_CONCURRENCY` creates in flight: creates per second for each
/// variant, over two rounds in rotated order.
async fn closed_loop(variants: &[(&str, &Api<DynamicObject>)]) -> Vec<(String, f64)> {
    let concurrency = env_usize("SG_BENCH_CONCURRENCY", 8).max(1);
    let per_round = env_usize("SG_BENCH_CLOSED", 200).max(concurrency);
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
    if closed.iter().any(|(n, _)| n.starts_with("(f)")) {
        println!(
            "  ratio of throughput this build (e) / baseline build (f): {:.2}x",
            rate("(e)") / rate("(f)")
        );
    }
}
