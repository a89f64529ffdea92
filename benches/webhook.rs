//! The webhook server alone: AdmissionReviews per second over TLS with keep-alive connections,
//! and latency at a fixed rate of half the measured maximum.
//!
//! The real server (`supportgate::webhook::server::serve_webhook`, the TLS configuration from
//! `supportgate::webhook::tls`) runs in-process on its own tokio runtime; the load generator
//! (`benches/loadgen`) runs on another. Baseline, measured in the same run: the same load
//! generator against a trivial endpoint on the same stack (tokio-rustls with the same
//! `ServerConfig`, hyper-util's auto HTTP/1.1+2 builder) that reads the body and returns a fixed
//! answer — the cost of TLS and HTTP alone.
//!
//! Both sides share the machine's cores, so the completion rates are those of server and client
//! together; the CPU time of the server's threads is measured separately (from
//! `/proc/self/task`) and gives the server's own cost per review. An in-process breakdown
//! (decode, evaluate, `admission::review` with and without the tracing subscriber, and on every
//! core at once) says where that cost goes.
//!
//! Environment: `SG_BENCH_CONNECTIONS` (default 8), `SG_BENCH_SECONDS` (measured seconds per
//! phase, default 4).

// The shipped binary's allocator (src/main.rs), so that the in-process figures are the pod's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::*;

#[path = "loadgen/mod.rs"]
mod loadgen;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use loadgen::{Run, Target, closed_loop, connect, exchange, fixed_rate};
use serde_json::{Value, json};
use supportgate::base::metrics::Metrics;
use supportgate::base::state::Shared;
use supportgate::cli::input::parse_objects;
use supportgate::engine::Context;
use supportgate::engine::policyset::PolicySet;
use supportgate::webhook::admission;
use supportgate::webhook::server::serve_webhook;
use supportgate::webhook::tls::{CertPaths, ReloadingResolver, generate, load_pair, server_config};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

const MAX_BODY: usize = 3 * 1024 * 1024 + 64 * 1024;
const SERVER_THREAD: &str = "sg-server";

/// An AdmissionReview as the API server sends it for a CREATE.
fn review(object: &Value, uid: &str) -> Vec<u8> {
    let name = object["metadata"]["name"].as_str().unwrap_or("x");
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "requestKind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "requestResource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl-client-side-apply"}
        }
    }))
    .expect("encode review")
}

/// The trivial endpoint: same acceptor, same HTTP builder, reads the body (with the same limit)
/// and answers a fixed body.
async fn serve_fixed(listener: TcpListener, acceptor: TlsAcceptor, answer: Bytes) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let answer = answer.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    let _ = Limited::new(req.into_body(), MAX_BODY).collect().await;
                    let mut r = Response::new(Full::new(answer));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = builder
                .serve_connection(TokioIo::new(tls), svc)
                .into_owned()
                .await;
        });
    }
}

/// CPU seconds used so far by this process's threads whose name starts with `prefix`.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
    }
    // /proc reports in USER_HZ, which is 100 on Linux.
    ticks as f64 / 100.0
}

fn server_cpu_seconds() -> f64 {
    thread_cpu_seconds(SERVER_THREAD)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Microseconds per call of `f`, single-threaded, over about `secs` seconds.
fn per_call_us(secs: f64, f: &mut dyn FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Where one review's time goes, in-process and single-threaded (no TLS, no HTTP).
fn breakdown(body: &[u8], object: &Value, cores: usize) -> [(&'static str, f64); 7] {
    let set = PolicySet::embedded_default();
    let ctx = Context::new(jiff::civil::date(2026, 11, 24));
    let metrics = Metrics::new();
    let decode = per_call_us(0.5, &mut || {
        let r: AdmissionReview<DynamicObject> =
            serde_json::from_slice(std::hint::black_box(body)).expect("decode");
        std::hint::black_box(r);
    });
    let direct = per_call_us(0.5, &mut || {
        let r: supportgate::webhook::wire::Review =
            serde_json::from_slice(std::hint::black_box(body)).expect("decode");
        std::hint::black_box(r);
    });
    let evaluate = per_call_us(0.5, &mut || {
        std::hint::black_box(set.assess(std::hint::black_box(object), &ctx));
    });
    let mut review = || {
        std::hint::black_box(
            admission::review(std::hint::black_box(body), &set, &ctx, Some(&metrics))
                .expect("review"),
        );
    };
    let plain = per_call_us(0.5, &mut review);
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .finish();
    let traced = tracing::subscriber::with_default(subscriber, || per_call_us(0.5, &mut review));
    // The same on every core at once (shared policy snapshot and metrics, as in the server): the
    // CPU time per call when the cores are all busy.
    let parallel = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                s.spawn(|| {
                    per_call_us(1.0, &mut || {
                        std::hint::black_box(
                            admission::review(
                                std::hint::black_box(body),
                                &set,
                                &ctx,
                                Some(&metrics),
                            )
                            .expect("review"),
                        );
                    })
                })
            })
            .collect();
        let per: Vec<f64> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        per.iter().sum::<f64>() / per.len() as f64
    });
    [
        (
            "decode AdmissionReview<DynamicObject> (kube; before)",
            decode,
        ),
        ("decode the review as review() does (wire::Review)", direct),
        ("evaluate the object (PolicySet::assess)", evaluate),
        ("review() whole, no tracing subscriber", plain),
        ("review() whole, info-level subscriber (as run)", traced),
        ("  of which the subscriber (span + fields)", traced - plain),
        ("review() on every core at once, per call", parallel),
    ]
}

struct Max {
    run: Run,
    server_cpu_us: f64,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[expect(
    clippy::too_many_lines,
    reason = "the bench's script: each phase prints its figures beside the baseline measured just before it, top to bottom"
)]
fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let connections = env_or("SG_BENCH_CONNECTIONS", 8) as usize;
    let measure = Duration::from_secs(env_or("SG_BENCH_SECONDS", 4));
    let warmup = Duration::from_secs(1);

    let (objs, _) = parse_objects(
        "konvoyclusters.yaml",
        include_str!("../examples/clusters/konvoyclusters.yaml"),
    );
    let allowed_review = review(&objs[0].object, "4b1b5e0c-bench-allowed");
    let denied_review = review(&objs[2].object, "4b1b5e0c-bench-denied");
    // Measured before the global subscriber below is installed.
    let parts = breakdown(&allowed_review, &objs[0].object, cores);

    // As in production: an info-level subscriber (the admission span and denial log lines are
    // built), writing to a sink instead of stderr.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        .try_init();

    let certs = generate(&["127.0.0.1", "localhost"], "bench-ca").expect("certificates");
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = CertPaths {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&paths.cert, &certs.cert_pem).expect("write cert");
    std::fs::write(&paths.key, &certs.key_pem).expect("write key");
    let (ck, _) = load_pair(&paths).expect("load the pair");
    let acceptor =
        TlsAcceptor::from(server_config(ReloadingResolver::new(ck)).expect("TLS config"));

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("sg-loadgen")
        .enable_all()
        .build()
        .expect("client runtime");

    let (stop_tx, stop_rx) = watch::channel(false);
    let (webhook_addr, fixed_addr) = {
        let acceptor = acceptor.clone();
        let allowed_review = allowed_review.clone();
        let ca = certs.ca_pem.clone();
        server_rt.block_on(async move {
            let shared = Shared::new(None, Arc::new(Metrics::new()), MAX_BODY);
            // The embedded default is the policy here: nothing to sync, so reviews are judged.
            shared.mark_synced_for_tests();
            let webhook = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let webhook_addr = webhook.local_addr().expect("addr");
            tokio::spawn(serve_webhook(
                webhook,
                acceptor.clone(),
                shared,
                stop_rx,
                Duration::from_secs(5),
            ));
            // The trivial endpoint answers exactly what the webhook answers for the allowed
            // review, so both move the same bytes.
            let t = Target::new(webhook_addr, &ca, "/validate", allowed_review);
            let answer = tokio::spawn(async move {
                let mut s = connect(&t).await;
                exchange(&mut s, &t).await
            })
            .await
            .expect("probe task")
            .expect("the webhook answers the allowed review with 200");
            let fixed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let fixed_addr = fixed.local_addr().expect("addr");
            tokio::spawn(serve_fixed(fixed, acceptor, answer));
            (webhook_addr, fixed_addr)
        })
    };

    let baseline = Target::new(
        fixed_addr,
        &certs.ca_pem,
        "/validate",
        allowed_review.clone(),
    );
    let allowed = Target::new(
        webhook_addr,
        &certs.ca_pem,
        "/validate",
        allowed_review.clone(),
    );
    let denied = Target::new(webhook_addr, &certs.ca_pem, "/validate", denied_review);

    // The verdicts are what they should be before anything is timed.
    client_rt.block_on(async {
        let mut s = connect(&allowed).await;
        let a: Value = serde_json::from_slice(&exchange(&mut s, &allowed).await.expect("allowed"))
            .expect("JSON answer");
        assert_eq!(a["response"]["allowed"], true, "{a}");
        let d: Value = serde_json::from_slice(&exchange(&mut s, &denied).await.expect("denied"))
            .expect("JSON answer");
        assert_eq!(d["response"]["allowed"], false, "{d}");
        let mut b = connect(&baseline).await;
        let f = exchange(&mut b, &baseline).await.expect("baseline");
        assert_eq!(
            serde_json::from_slice::<Value>(&f).expect("JSON"),
            a,
            "the baseline returns the same bytes"
        );
    });

    let saturate = |t: &Target| -> Max {
        let run = client_rt.block_on(closed_loop(
            t,
            connections,
            warmup,
            measure,
            server_cpu_seconds,
        ));
        Max {
            server_cpu_us: run.probe_delta / run.completed as f64 * 1e6,
            run,
        }
    };

    println!("\n== supportgate webhook server benchmark ==");
    println!(
        "machine: {cores} cores, {}; load average before: {}",
        cpu_model(),
        load_average()
    );
    println!(
        "{connections} keep-alive HTTP/1.1 connections over TLS 1.3, {}-byte AdmissionReview (KonvoyCluster), {} s measured per phase after 1 s warm-up; server and load generator share the cores",
        allowed_review.len(),
        measure.as_secs()
    );

    let base_max = saturate(&baseline);
    let allowed_max = saturate(&allowed);
    let denied_max = saturate(&denied);
    for (name, m) in [
        ("baseline (fixed answer)", &base_max),
        ("webhook, allowed review", &allowed_max),
        ("webhook, denied review", &denied_max),
    ] {
        assert_eq!(m.run.errors, 0, "{name}: errors at saturation");
    }

    let base_rate = 0.5 * base_max.run.rate();
    let allowed_rate = 0.5 * allowed_max.run.rate();
    let base_fixed = client_rt.block_on(fixed_rate(
        &baseline,
        connections,
        base_rate,
        warmup,
        measure,
    ));
    let allowed_fixed = client_rt.block_on(fixed_rate(
        &allowed,
        connections,
        allowed_rate,
        warmup,
        measure,
    ));
    let _ = stop_tx.send(true);

    println!("\nmaximum throughput (closed loop):");
    println!(
        "  {:<26} {:>10} {:>14} {:>10} {:>10}",
        "", "reviews/s", "server CPU/req", "p50", "p99"
    );
    for (name, m) in [
        ("baseline (TLS+HTTP only)", &base_max),
        ("webhook, allowed review", &allowed_max),
        ("webhook, denied review", &denied_max),
    ] {
        println!(
            "  {:<26} {:>10.0} {:>11.1} us {:>7.0} us {:>7.0} us",
            name,
            m.run.rate(),
            m.server_cpu_us,
            us(m.run.percentile(50.0)),
            us(m.run.percentile(99.0)),
        );
    }
    println!("\nlatency at a fixed rate of 50% of each maximum (open loop, from the time due):");
    println!(
        "  {:<26} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "target/s", "achieved/s", "p50", "p99", "max"
    );
    for (name, target, r) in [
        ("baseline (TLS+HTTP only)", base_rate, &base_fixed),
        ("webhook, allowed review", allowed_rate, &allowed_fixed),
    ] {
        assert_eq!(r.errors, 0, "{name}: errors at a fixed rate");
        println!(
            "  {:<26} {:>10.0} {:>10.0} {:>7.0} us {:>7.0} us {:>7.0} us",
            name,
            target,
            r.rate(),
            us(r.percentile(50.0)),
            us(r.percentile(99.0)),
            us(r.max()),
        );
    }
    let added = allowed_max.server_cpu_us - base_max.server_cpu_us;
    println!("\nratios to the baseline:");
    println!(
        "  throughput: webhook (allowed) {:.2}x of baseline, (denied) {:.2}x",
        allowed_max.run.rate() / base_max.run.rate(),
        denied_max.run.rate() / base_max.run.rate()
    );
    println!(
        "  server CPU per review: allowed {:.2}x of baseline (+{:.1} us for decode, policy, encode, metrics), denied {:.2}x",
        allowed_max.server_cpu_us / base_max.server_cpu_us,
        added,
        denied_max.server_cpu_us / base_max.server_cpu_us
    );
    println!(
        "  server-alone capacity on {cores} cores (cores / server CPU per review): webhook allowed {:.0}/s, denied {:.0}/s, baseline {:.0}/s",
        cores as f64 * 1e6 / allowed_max.server_cpu_us,
        cores as f64 * 1e6 / denied_max.server_cpu_us,
        cores as f64 * 1e6 / base_max.server_cpu_us
    );
    println!(
        "  p50 at 50% load: webhook {:.2}x of baseline; p99 {:.2}x",
        us(allowed_fixed.percentile(50.0)) / us(base_fixed.percentile(50.0)),
        us(allowed_fixed.percentile(99.0)) / us(base_fixed.percentile(99.0))
    );
    println!("\nwhere a review's time goes (in-process, one thread, allowed review):");
    for (name, t) in parts {
        println!("  {name:<48} {t:>7.1} us");
    }
    println!("load average after: {}", load_average());
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(2));
}
