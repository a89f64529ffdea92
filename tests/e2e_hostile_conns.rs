//! Hostile connections against the real `supportgate run` process (loopback only): a slow-header
//! flood, an idle-connection flood, slow bodies, HTTP/2 streams past the cap and HTTP/2 rapid
//! resets. While each attack runs, well-formed reviews on fresh connections must keep being
//! answered, and the attacker's connections must be closed within the timeout that applies.
//!
//! The server runs with small limits (flags), so that each attack takes seconds. Counts are
//! bounded; `HOSTILE_FLOOD=<n>` raises the flood size for the figures in docs/reliability.md.
//! Run with `cargo test --test e2e_hostile_conns -- --nocapture --test-threads=1` to see them.

mod support;

#[path = "hostile_conns/h2raw.rs"]
mod h2raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::{Value, json};
use support::ControlPlane;
use support::operator::{CertFiles, Operator, http_get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const CAP: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const BODY_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
const H2_STREAMS: u32 = 8;
/// Allowed lateness of a close: the reaper's tick, a graceful close turning hard (2 s), and a
/// busy machine.
const SLACK: Duration = Duration::from_secs(4);

fn limit_flags() -> Vec<String> {
    vec![
        "--no-controller".into(),
        format!("--max-connections={CAP}"),
        format!(
            "--header-read-timeout-seconds={}",
            HEADER_TIMEOUT.as_secs_f64()
        ),
        format!("--body-read-timeout-seconds={}", BODY_TIMEOUT.as_secs_f64()),
        format!("--idle-timeout-seconds={}", IDLE_TIMEOUT.as_secs_f64()),
        format!("--h2-max-concurrent-streams={H2_STREAMS}"),
        "--h2-max-pending-accept-reset-streams=10".into(),
        "--h2-max-abandoned-streams=50".into(),
    ]
}

/// How many attacker connections a flood opens (well over the cap).
fn flood_size() -> usize {
    std::env::var("HOSTILE_FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CAP * 3)
}

struct Server {
    op: Operator,
    ca: String,
    _certs: CertFiles,
}

async fn start(extra: &[&str]) -> Server {
    let certs = CertFiles::new();
    let mut flags = limit_flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut op = Operator::start(ControlPlane::shared(), &certs, &refs);
    op.wait_ready().await;
    Server {
        ca: certs.generated.ca_pem.clone(),
        op,
        _certs: certs,
    }
}

impl Server {
    fn port(&self) -> u16 {
        self.op.webhook_port
    }

    /// Prints the webhook connection metrics.
    async fn print_metrics(&self) {
        for (k, v) in self.metrics().await {
            println!("    {k} {v}");
        }
    }

    /// The webhook connection metrics as (name{labels}, value) pairs.
    async fn metrics(&self) -> Vec<(String, f64)> {
        let (code, text) = http_get(self.op.health_port, "/metrics")
            .await
            .expect("metrics");
        assert_eq!(code, 200);
        let lines: Vec<(String, f64)> = text
            .lines()
            .filter(|l| l.starts_with("supportgate_webhook_connections"))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        lines
    }

    async fn closed_for(&self, reason: &str) -> f64 {
        let key = format!("supportgate_webhook_connections_closed_total{{reason=\"{reason}\"}}");
        self.metrics()
            .await
            .into_iter()
            .find(|(k, _)| *k == key)
            .map_or(0.0, |(_, v)| v)
    }

    async fn assert_alive(&mut self, what: &str) {
        self.print_metrics().await;
        assert!(
            self.op.child.try_wait().expect("try_wait").is_none(),
            "{what}: the server exited:\n{}",
            self.op.logs()
        );
    }
}

fn tls_client(ca_pem: &str, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("add CA");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(cfg))
}

async fn tls_connect(port: u16, tls: &TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tls.connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
}

/// The address the big flood comes from: another loopback address, as an attacker's pod is
/// another address than kube-apiserver.
const ATTACKER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 2);

/// Like [`tls_connect`], from the attacker's address.
async fn tls_connect_from_attacker(
    port: u16,
    tls: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((ATTACKER, 0).into())?;
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await?;
    tls.connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
}

fn review(uid: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "name": "c1", "namespace": "kommander", "operation": "CREATE",
            "userInfo": {"username": "hostile-conns"},
            "object": {
                "apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
                "metadata": {"name": "c1", "namespace": "kommander"},
                "spec": {"provisioner": {"provider": "aws", "version": "v1.8.5"},
                         "cluster": {"kubernetes": {"version": "1.20.13"}}}
            }
        }
    }))
    .expect("encode")
}

fn answered(uid: &str, code: u16, body: &str) -> bool {
    code == 200
        && serde_json::from_str::<Value>(body)
            .is_ok_and(|a| a["response"]["uid"] == uid && a["response"]["allowed"].is_boolean())
}

// ------------------------------------------------------------------------- the honest traffic

/// Reviews on fresh connections, one after another, while an attack runs.
struct Reviews {
    stop: Arc<AtomicBool>,
    task: JoinHandle<ReviewStats>,
    started: Instant,
}

/// The honest traffic runs at least this long, however short the attack.
const MIN_REVIEWS_RUN: Duration = Duration::from_secs(2);

#[derive(Default)]
struct ReviewStats {
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

impl Reviews {
    fn start(port: u16, ca: String) -> Reviews {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut stats = ReviewStats::default();
            let mut n = 0;
            while !flag.load(Ordering::Acquire) && n < 2_000 {
                n += 1;
                let uid = format!("honest-{n}");
                let t = Instant::now();
                let sent = post(port, &ca, "/validate", review(&uid));
                match tokio::time::timeout(Duration::from_secs(5), sent).await {
                    Ok(Ok((code, body, _))) if answered(&uid, code, &body) => {
                        stats.latencies.push(t.elapsed())
                    }
                    Ok(Ok((code, body, _))) => stats.failures.push(format!("{code}: {body}")),
                    Ok(Err(e)) => stats.failures.push(e.to_string()),
                    Err(_) => stats.failures.push("no answer within 5 s".into()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stats
        });
        Reviews {
            stop,
            task,
            started: Instant::now(),
        }
    }

    /// Stops, prints the figures, and asserts every review was answered.
    async fn finish(self, attack: &str) -> ReviewStats {
        tokio::time::sleep(MIN_REVIEWS_RUN.saturating_sub(self.started.elapsed())).await;
        self.stop.store(true, Ordering::Release);
        let mut s = self.task.await.expect("review loop");
        s.latencies.sort();
        let p = |q: f64| {
            let i = ((s.latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
            s.latencies.get(i).copied().unwrap_or_default()
        };
        println!(
            "  {attack}: {} reviews answered on fresh connections, {} failed; p50 {:.1} ms, p99 {:.1} ms",
            s.latencies.len(),
            s.failures.len(),
            p(0.5).as_secs_f64() * 1e3,
            p(0.99).as_secs_f64() * 1e3
        );
        assert!(
            s.failures.is_empty(),
            "{attack}: reviews failed during the attack: {:?}",
            &s.failures[..s.failures.len().min(5)]
        );
        assert!(
            s.latencies.len() >= 10,
            "{attack}: only {} reviews answered",
            s.latencies.len()
        );
        s
    }
}

/// Polls the open-connections gauge every 100 ms while an attack runs; returns the highest.
fn sample_open(health_port: u16, stop: Arc<AtomicBool>) -> JoinHandle<f64> {
    tokio::spawn(async move {
        let mut max = 0f64;
        while !stop.load(Ordering::Acquire) {
            if let Ok((200, text)) = http_get(health_port, "/metrics").await {
                let open = text
                    .lines()
                    .find_map(|l| l.strip_prefix("supportgate_webhook_connections_open "))
                    .and_then(|v| v.trim().parse().ok());
                max = max.max(open.unwrap_or(0.0));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    })
}

/// The most descriptors connections may hold: the cap, plus closes in progress.
fn assert_under_cap(attack: &str, max_open: f64) {
    let ceiling = (CAP + CAP / 8 + 32) as f64;
    println!("  {attack}: at most {max_open} connections open at once (cap {CAP})");
    assert!(
        max_open <= ceiling,
        "{attack}: {max_open} connections open, over {ceiling}"
    );
    assert!(max_open >= 1.0, "{attack}: the sampler saw no connection");
}

// ------------------------------------------------------------------------------ the attackers

/// An attacker connection: how long after its last byte the server closed it.
struct Held {
    closed_after: Option<Duration>,
}

/// Opens `n` TLS connections (16 handshakes at a time), sends `first` on each, then waits (up
/// to `wait`) for the server to close each one. Returns the connections' fates and the rate the
/// flood reached (connections per second).
async fn flood(
    port: u16,
    tls: TlsConnector,
    n: usize,
    first: &'static [u8],
    wait: Duration,
) -> (Vec<Held>, f64) {
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let tls = tls.clone();
        tasks.push(tokio::spawn(async move {
            match tls_connect(port, &tls).await {
                Ok(stream) => hold_conn(stream, first, wait, permit).await,
                // Closed during the handshake (evicted at once): closed, 0 s after its last byte.
                Err(_) => Held {
                    closed_after: Some(Duration::ZERO),
                },
            }
        }));
    }
    let _all_connected = gate.acquire_many(16).await.expect("semaphore");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let mut held = Vec::with_capacity(n);
    for t in tasks {
        held.push(t.await.expect("attacker"));
    }
    (held, rate)
}

async fn hold_conn(
    mut s: TlsStream<TcpStream>,
    first: &[u8],
    wait: Duration,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Held {
    if !first.is_empty() {
        let _ = s.write_all(first).await;
        let _ = s.flush().await;
    }
    let last_write = Instant::now();
    drop(permit);
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    Held {
        closed_after: closed.ok().map(|_| last_write.elapsed()),
    }
}

/// Asserts every attacker connection was closed within `limit` of its last write.
fn assert_all_closed(attack: &str, held: &[Held], limit: Duration) {
    let open = held.iter().filter(|h| h.closed_after.is_none()).count();
    let slowest = held
        .iter()
        .filter_map(|h| h.closed_after)
        .max()
        .unwrap_or_default();
    println!(
        "  {attack}: {} attacker connections, {} still open, the last closed {:.2} s after its last byte",
        held.len(),
        open,
        slowest.as_secs_f64()
    );
    assert_eq!(open, 0, "{attack}: connections the server never closed");
    assert!(
        slowest <= limit,
        "{attack}: a connection was closed only after {slowest:?} (limit {limit:?})"
    );
}

// ---------------------------------------------------------------------------------- the tests

#[tokio::test]
async fn a_slow_header_flood_is_cut_off_and_reviews_keep_flowing() {
    let mut server = start(&[]).await;
    let reviews = Reviews::start(server.port(), server.ca.clone());
    let sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample_open(server.op.health_port, sampling.clone());
    let n = flood_size();
    let head = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
    let tls = tls_client(&server.ca, &[b"http/1.1"]);
    let (held, rate) = flood(server.port(), tls, n, head, HEADER_TIMEOUT + SLACK * 2).await;
    println!("  slow-header flood: {n} connections at {rate:.0} conn/s");
    let _ = reviews.finish("slow-header flood").await;
    sampling.store(true, Ordering::Release);
    assert_under_cap("slow-header flood", sampler.await.expect("sampler"));
    assert_all_closed("slow-header flood", &held, HEADER_TIMEOUT + SLACK);
    server.assert_alive("slow-header flood").await;
    let by_timeout = server.closed_for("header_timeout").await;
    let by_cap = server.closed_for("evicted_slow").await;
    assert!(
        by_timeout >= 1.0,
        "no connection closed for its header timeout"
    );
    assert!(
        by_timeout + by_cap >= n as f64,
        "{n} slow heads, {by_timeout} closed by timeout and {by_cap} at the cap"
    );
}

#[tokio::test]
async fn an_idle_flood_does_not_push_out_a_working_keep_alive_connection() {
    let mut server = start(&[]).await;
    let port = server.port();
    // A keep-alive client answering requests all along, as kube-apiserver's connection would.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = tokio::spawn(keep_alive_client(port, server.ca.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reviews = Reviews::start(port, server.ca.clone());
    let sampling = Arc::new(AtomicBool::new(false));
    let sampler = sample_open(server.op.health_port, sampling.clone());
    let n = flood_size();
    // HTTP/2 clients that say hello and go silent: idle, no stream ever opened.
    let tls = tls_client(&server.ca, &[b"h2"]);
    let (held, rate) = flood(port, tls, n, H2_HELLO, IDLE_TIMEOUT + SLACK * 2).await;
    println!("  idle flood: {n} connections at {rate:.0} conn/s");
    let _ = reviews.finish("idle flood").await;
    sampling.store(true, Ordering::Release);
    assert_under_cap("idle flood", sampler.await.expect("sampler"));
    assert_all_closed("idle flood", &held, IDLE_TIMEOUT + SLACK);
    stop.store(true, Ordering::Release);
    let answered_on_one = worker.await.expect("worker");
    println!("  idle flood: the keep-alive client got {answered_on_one} answers on one connection");
    assert!(
        answered_on_one >= 10,
        "the keep-alive client got {answered_on_one} answers"
    );
    server.assert_alive("idle flood").await;
    assert!(
        server.closed_for("evicted_idle").await >= 1.0,
        "nothing evicted at the cap"
    );
    assert!(
        server.closed_for("idle_timeout").await >= 1.0,
        "nothing closed for idleness"
    );
}

/// The HTTP/2 preface and an empty SETTINGS frame.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Sends a review every 100 ms on one HTTP/1.1 connection until `stop` (at most 2 minutes);
/// panics if the connection is lost. Returns the answers received.
async fn keep_alive_client(port: u16, ca: String, stop: Arc<AtomicBool>) -> usize {
    let tls = tls_connect(port, &tls_client(&ca, &[b"http/1.1"]))
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let start = Instant::now();
    let mut n = 0;
    while !stop.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(120) {
        let uid = format!("keepalive-{n}");
        let req = http::Request::post("/validate")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(review(&uid))))
            .expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
            .await
            .unwrap_or_else(|_| panic!("keep-alive request {n}: no answer in 5 s"))
            .unwrap_or_else(|e| panic!("keep-alive request {n}: the connection was lost: {e}"));
        let code = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert!(
            answered(&uid, code, &String::from_utf8_lossy(&body)),
            "keep-alive answer {n}"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.abort();
    n
}

#[tokio::test]
async fn slow_bodies_get_408_and_are_closed() {
    let mut server = start(&[]).await;
    let reviews = Reviews::start(server.port(), server.ca.clone());
    let head = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{\"apiVersion\":";
    let n = 20;
    let tls = tls_client(&server.ca, &[b"http/1.1"]);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut s = tls_connect(server.port(), &tls).await.expect("connect");
        tasks.push(tokio::spawn(async move {
            s.write_all(head).await.expect("write");
            s.flush().await.expect("flush");
            let sent = Instant::now();
            let mut answer = Vec::new();
            let r =
                tokio::time::timeout(BODY_TIMEOUT + SLACK * 2, s.read_to_end(&mut answer)).await;
            (
                r.is_ok(),
                sent.elapsed(),
                String::from_utf8_lossy(&answer).into_owned(),
            )
        }));
    }
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (closed, after, answer) = t.await.expect("slow body");
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "slow body answered {answer:?}"
        );
        assert!(closed, "a slow-body connection was never closed");
        slowest = slowest.max(after);
    }
    println!(
        "  slow bodies: {n} answered 408 and closed, the last {:.2} s after its last byte",
        slowest.as_secs_f64()
    );
    assert!(
        slowest <= BODY_TIMEOUT + SLACK,
        "closed only after {slowest:?}"
    );
    let _ = reviews.finish("slow bodies").await;
    server.assert_alive("slow bodies").await;
    assert!(server.closed_for("body_timeout").await >= n as f64);
}

#[tokio::test]
async fn http2_streams_past_the_cap_are_refused_and_stalled_ones_closed() {
    let mut server = start(&[]).await;
    let reviews = Reviews::start(server.port(), server.ca.clone());
    let tls = tls_connect(server.port(), &tls_client(&server.ca, &[b"h2"]))
        .await
        .expect("connect");
    let mut h2 = h2raw::H2::connect(tls).await;
    let total = H2_STREAMS * 2;
    let mut burst = Vec::new();
    for i in 0..total {
        burst.extend(h2raw::headers(1 + 2 * i, 1000));
    }
    h2.send(&burst).await.expect("send streams");
    let sent = Instant::now();
    let seen = h2
        .wait(BODY_TIMEOUT + SLACK, "close of the connection", |s| {
            s.closed_at.is_some()
        })
        .await;
    let closed_after = seen.closed_at.expect("closed") - sent;
    let refused = seen
        .resets
        .iter()
        .filter(|(_, c)| *c == h2raw::REFUSED_STREAM)
        .count();
    println!(
        "  HTTP/2 streams past the cap: {total} opened, {refused} refused, {} answered 408, GOAWAY {:?}, closed after {:.2} s",
        seen.body_timeouts.len(),
        seen.goaway,
        closed_after.as_secs_f64()
    );
    assert_eq!(
        refused,
        (total - H2_STREAMS) as usize,
        "streams past the cap refused: {seen:?}"
    );
    assert_eq!(
        seen.body_timeouts.len(),
        H2_STREAMS as usize,
        "stalled streams answered 408: {seen:?}"
    );
    assert!(seen.goaway.is_some(), "no GOAWAY: {seen:?}");
    let _ = reviews.finish("HTTP/2 streams past the cap").await;
    server.assert_alive("HTTP/2 streams past the cap").await;
    assert!(server.closed_for("body_timeout").await >= 1.0);
}

#[tokio::test]
async fn http2_rapid_resets_get_the_connection_closed() {
    let mut server = start(&[]).await;
    let reviews = Reviews::start(server.port(), server.ca.clone());
    let tls = tls_client(&server.ca, &[b"h2"]);
    for attacker in 0..5 {
        let stream = tls_connect(server.port(), &tls).await.expect("connect");
        let (streams, seen, took) = rapid_reset(h2raw::H2::connect(stream).await).await;
        println!(
            "  HTTP/2 rapid reset #{attacker}: {streams} streams opened and reset, GOAWAY {:?}, closed after {:.2} s",
            seen.goaway,
            took.as_secs_f64()
        );
        assert!(
            streams < 5_000,
            "the server let 5,000 reset streams through"
        );
        // Either the HTTP/2 library's pending-reset limit (GOAWAY ENHANCE_YOUR_CALM) or the
        // server's abandoned-stream count closes it.
        let by_server = server.closed_for("abandoned_streams").await;
        assert!(
            seen.goaway == Some(0xb) || by_server >= 1.0,
            "closed, but by neither limit: {seen:?}"
        );
    }
    let _ = reviews.finish("HTTP/2 rapid reset").await;
    server.assert_alive("HTTP/2 rapid reset").await;
}

/// Opens and resets streams in bursts (at most 5,000 streams or 10 s) until the server closes
/// the connection: (streams sent, what the server sent, time to close).
async fn rapid_reset(mut h2: h2raw::H2) -> (u32, h2raw::Seen, Duration) {
    let start = Instant::now();
    let mut streams = 0u32;
    while streams < 5_000 && start.elapsed() < Duration::from_secs(10) {
        if h2.seen().closed_at.is_some() {
            break;
        }
        let mut burst = Vec::new();
        for _ in 0..50 {
            let id = 1 + 2 * streams;
            burst.extend(h2raw::headers(id, 1000));
            burst.extend(h2raw::reset(id, h2raw::CANCEL));
            streams += 1;
        }
        if h2.send(&burst).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = h2
        .wait(SLACK, "close of the connection", |s| s.closed_at.is_some())
        .await;
    let took = seen.closed_at.expect("closed") - start;
    (streams, seen, took)
}

// ------------------------------------------------------------- the big one-client flood

/// Reviews the honest client sends during the big flood, spread evenly over it.
const BIG_FLOOD_REVIEWS: usize = 15;
/// Each of them must be answered within this.
const BIG_FLOOD_DEADLINE: Duration = Duration::from_secs(2);

/// How many connections the big flood opens (`HOSTILE_BIG_FLOOD`, at least 20,000).
fn big_flood_size() -> usize {
    std::env::var("HOSTILE_BIG_FLOOD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
        .max(20_000)
}

/// Handshakes the big flood keeps in flight at once (`HOSTILE_BIG_FLOOD_CONCURRENCY`).
fn big_flood_concurrency() -> usize {
    std::env::var("HOSTILE_BIG_FLOOD_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

/// One honest review: how long it took, or why it failed.
type Outcome = Result<Duration, String>;

/// Sends `BIG_FLOOD_REVIEWS` reviews, each on a fresh connection, one each time the attacker
/// has opened another `n / (BIG_FLOOD_REVIEWS + 1)` connections. It runs on a thread and a
/// runtime of its own, so that its latencies are the server's, not the attacker's scheduler.
fn honest_reviews_during(
    port: u16,
    ca: String,
    opened: Arc<std::sync::atomic::AtomicUsize>,
    n: usize,
) -> std::thread::JoinHandle<Vec<Outcome>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let step = n / (BIG_FLOOD_REVIEWS + 1);
            let give_up = Instant::now() + Duration::from_secs(600);
            let mut outcomes = Vec::new();
            for k in 1..=BIG_FLOOD_REVIEWS {
                while opened.load(Ordering::Acquire) < k * step && Instant::now() < give_up {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let uid = format!("honest-big-{k}");
                let t = Instant::now();
                let sent = post(port, &ca, "/validate", review(&uid));
                outcomes.push(match tokio::time::timeout(BIG_FLOOD_DEADLINE, sent).await {
                    Ok(Ok((code, body, _))) if answered(&uid, code, &body) => Ok(t.elapsed()),
                    Ok(Ok((code, body, _))) => Err(format!("{code}: {body}")),
                    Ok(Err(e)) => Err(format!("after {:?}: {e}", t.elapsed())),
                    Err(_) => Err(format!("no answer within {BIG_FLOOD_DEADLINE:?}")),
                });
            }
            outcomes
        })
    })
}

/// Opens `n` TLS connections from one client ([`ATTACKER`]), `concurrency` handshakes at a time; each sends
/// a partial request head and holds the connection until the server closes it (at most
/// `hold`). Counts the connections opened in `opened`; returns (still open at the end, the
/// rate reached).
async fn slow_head_flood(
    port: u16,
    tls: TlsConnector,
    n: usize,
    concurrency: usize,
    hold: Duration,
    opened: Arc<std::sync::atomic::AtomicUsize>,
) -> (usize, f64) {
    const HEAD: &[u8] = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.expect("semaphore");
        let (tls, opened) = (tls.clone(), opened.clone());
        tasks.spawn(async move {
            let connected = tls_connect_from_attacker(port, &tls).await;
            opened.fetch_add(1, Ordering::AcqRel);
            match connected {
                Ok(stream) => hold_conn(stream, HEAD, hold, permit)
                    .await
                    .closed_after
                    .is_none(),
                Err(_) => false,
            }
        });
        // Finished attackers are reaped as the flood goes, so that its memory stays bounded.
        while let Some(r) = tasks.try_join_next() {
            let _ = r.expect("attacker");
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let mut still_open = 0;
    while let Some(r) = tasks.join_next().await {
        still_open += usize::from(r.expect("attacker"));
    }
    (still_open, rate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20000_connection_flood_from_one_client_leaves_every_review_answered_within_2s() {
    // The default limits (a cap of 2,048 and a 5 s header timeout), as a user runs it.
    let certs = CertFiles::new();
    let mut op = Operator::start(ControlPlane::shared(), &certs, &["--no-controller"]);
    op.wait_ready().await;
    let ca = certs.generated.ca_pem.clone();
    let (port, n) = (op.webhook_port, big_flood_size());
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let honest = honest_reviews_during(port, ca.clone(), opened.clone(), n);
    let tls = tls_client(&ca, &[b"http/1.1"]);
    let concurrency = big_flood_concurrency();
    let hold = Duration::from_secs(5) + SLACK * 2;
    let (still_open, rate) = slow_head_flood(port, tls, n, concurrency, hold, opened).await;
    let outcomes = honest.join().expect("honest client");
    let ok: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    let slowest = ok.iter().max().copied().unwrap_or_default();
    println!(
        "  big slow-header flood: {n} connections from one client at {rate:.0} conn/s ({concurrency} handshakes in flight); {} of {BIG_FLOOD_REVIEWS} reviews answered within {BIG_FLOOD_DEADLINE:?}, the slowest in {:.0} ms; {still_open} attacker connections never closed",
        ok.len(),
        slowest.as_secs_f64() * 1e3
    );
    assert!(
        op.child.try_wait().expect("try_wait").is_none(),
        "the server exited:\n{}",
        op.logs()
    );
    let (code, text) = http_get(op.health_port, "/metrics").await.expect("metrics");
    assert_eq!(code, 200);
    for l in text
        .lines()
        .filter(|l| l.starts_with("supportgate_webhook_connection"))
    {
        println!("    {l}");
    }
    // The flood went past the cap, so the eviction's choice is what this measured.
    assert!(
        text.lines().any(|l| l
            .strip_prefix("supportgate_webhook_connections_closed_total{reason=\"evicted_slow\"} ")
            .is_some_and(|v| v.parse::<f64>().is_ok_and(|v| v >= 1.0))),
        "the flood never reached the cap:\n{text}"
    );
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "reviews not answered in time: {failed:?}"
    );
    assert_eq!(ok.len(), BIG_FLOOD_REVIEWS);
    assert_eq!(
        still_open, 0,
        "attacker connections the server never closed"
    );
}
