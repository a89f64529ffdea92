//! A small HTTPS load generator for the webhook benchmark: several keep-alive HTTP/1.1
//! connections over TLS (rustls), each with one request in flight at a time, the way a
//! connection-pooling client such as the API server's reuses its connections.
//!
//! Two modes:
//! - [`closed_loop`]: every connection sends its next request as soon as the previous answer is
//!   read; the completion rate is the maximum throughput.
//! - [`fixed_rate`]: a dispatcher thread issues requests at a fixed rate (open loop) and the
//!   connections take them from a shared queue. Latency is measured from the moment a request was
//!   due, so time spent queued behind a slow answer counts (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::TlsConnector;

/// What to send, and where.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub connector: TlsConnector,
    pub path: &'static str,
    pub body: Bytes,
}

impl Target {
    pub fn new(addr: SocketAddr, ca_pem: &str, path: &'static str, body: Vec<u8>) -> Target {
        Target {
            addr,
            connector: connector(ca_pem),
            path,
            body: Bytes::from(body),
        }
    }
}

/// A TLS 1.2/1.3 client that trusts only `ca_pem` and speaks HTTP/1.1.
pub fn connector(ca_pem: &str) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.expect("CA PEM")).expect("add CA");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

/// Opens one keep-alive connection (TCP, TLS handshake, HTTP/1.1).
pub async fn connect(t: &Target) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(t.addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let tls = t
        .connector
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    sender
}

/// Sends one request on `sender` and reads the whole answer; `Err` unless it is a 200.
pub async fn exchange(sender: &mut SendRequest<Full<Bytes>>, t: &Target) -> Result<Bytes, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let req = http::Request::post(t.path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(t.body.clone()))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != http::StatusCode::OK {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    Ok(body)
}

/// The result of one measured phase.
pub struct Run {
    pub completed: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Latency of every request completed in the measured window, sorted.
    pub latencies: Vec<Duration>,
    /// How much the probe's reading grew over the measured window (closed loop only).
    pub probe_delta: f64,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// Saturates the server with `connections` back-to-back keep-alive connections: requests that
/// complete inside `[warmup, warmup + measure)` are counted, and `probe` (e.g. the server's CPU
/// time) is read at both ends of that window.
pub async fn closed_loop(
    t: &Target,
    connections: usize,
    warmup: Duration,
    measure: Duration,
    probe: fn() -> f64,
) -> Run {
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(t).await);
    }
    let start = Instant::now();
    let from = start + warmup;
    let until = from + measure;
    let prober = std::thread::spawn(move || {
        std::thread::sleep(from.saturating_duration_since(Instant::now()));
        let before = probe();
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        probe() - before
    });
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut sender in senders {
        let t = t.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let ok = exchange(&mut sender, &t).await.is_ok();
                let done = Instant::now();
                if done >= from && done < until {
                    if ok {
                        lat.push(done - sent);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !ok {
                    sender = connect(&t).await;
                }
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    latencies.sort_unstable();
    Run {
        completed: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed: measure,
        latencies,
        probe_delta: prober.join().expect("probe thread"),
    }
}

/// Issues `rate` requests per second for `warmup + measure`, spread over `connections`
/// keep-alive connections, and records the latency of those issued inside the measured window,
/// from the moment each was issued to its complete answer.
pub async fn fixed_rate(
    t: &Target,
    connections: usize,
    rate: f64,
    warmup: Duration,
    measure: Duration,
) -> Run {
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(t).await);
    }
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now();
    let from = start + warmup;
    let until = from + measure;
    // The dispatcher is a plain thread: std::thread::sleep wakes within tens of microseconds,
    // the tokio timer only to the millisecond, which would add up to 1 ms to every latency.
    let stop = Arc::new(AtomicBool::new(false));
    let dispatcher = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("sg-dispatch".into())
            .spawn(move || {
                let mut issued: u64 = 0;
                loop {
                    let now = Instant::now();
                    if now >= until || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let due = ((now - start).as_secs_f64() * rate) as u64;
                    while issued < due {
                        if tx.send(now).is_err() {
                            return issued;
                        }
                        issued += 1;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                issued
            })
            .expect("dispatcher thread")
    };
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut sender in senders {
        let t = t.clone();
        let rx = rx.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let issued = { rx.lock().await.recv().await };
                let Some(issued) = issued else { break };
                let ok = exchange(&mut sender, &t).await.is_ok();
                let done = Instant::now();
                if issued >= from {
                    if ok {
                        lat.push(done - issued);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !ok {
                    sender = connect(&t).await;
                }
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    stop.store(true, Ordering::Relaxed);
    dispatcher.join().expect("dispatcher");
    latencies.sort_unstable();
    Run {
        completed: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed: measure,
        latencies,
        probe_delta: 0.0,
    }
}
