//! A raw HTTP/2 client over TLS that breaks the rules a client library enforces: it opens more
//! streams than the server allows, resets streams at once, and never answers pings.
//!
//! Header blocks are hand-encoded HPACK (literal fields, no Huffman, no dynamic table), which
//! any server must accept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;

/// What the server has sent so far.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub settings: bool,
    pub settings_ack: bool,
    /// RST_STREAM frames: (stream, error code).
    pub resets: Vec<(u32, u32)>,
    /// Streams answered with a response head.
    pub responses: Vec<u32>,
    /// Streams whose response body said the request body timed out (a 408).
    pub body_timeouts: Vec<u32>,
    pub goaway: Option<u32>,
    pub closed_at: Option<Instant>,
}

pub struct H2 {
    w: WriteHalf<TlsStream<TcpStream>>,
    pub seen: Arc<Mutex<Seen>>,
    reader: JoinHandle<()>,
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend((stream & 0x7fff_ffff).to_be_bytes());
    f.extend(payload);
    f
}

/// A POST /validate head that announces a body of `content_length` bytes (never sent).
pub fn post_head(content_length: usize) -> Vec<u8> {
    fn literal(out: &mut Vec<u8>, index_prefix: &[u8], value: &[u8]) {
        out.extend(index_prefix);
        out.push(value.len() as u8);
        out.extend(value);
    }
    // :method POST and :scheme https are static-table entries 3 and 7.
    let mut b = vec![0x83, 0x87];
    literal(&mut b, &[0x04], b"/validate"); // :path
    literal(&mut b, &[0x01], b"127.0.0.1"); // :authority
    literal(&mut b, &[0x0f, 0x10], b"application/json"); // content-type (31)
    literal(&mut b, &[0x0f, 0x0d], content_length.to_string().as_bytes()); // content-length (28)
    b
}

pub fn headers(stream: u32, content_length: usize) -> Vec<u8> {
    frame(HEADERS, END_HEADERS, stream, &post_head(content_length))
}

pub fn reset(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

impl H2 {
    /// Sends the preface and settings, and waits for the settings exchange to finish (the
    /// server applies its stream limit once its settings are acknowledged).
    pub async fn connect(tls: TlsStream<TcpStream>) -> H2 {
        let (r, mut w) = tokio::io::split(tls);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let reader = tokio::spawn(read_frames(r, seen.clone()));
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        w.write_all(&hello).await.expect("write preface");
        let mut h2 = H2 { w, seen, reader };
        h2.wait(Duration::from_secs(10), "the server's settings", |s| {
            s.settings
        })
        .await;
        h2.send(&frame(SETTINGS, ACK, 0, &[])).await.expect("ack");
        h2.wait(Duration::from_secs(10), "the settings ack", |s| {
            s.settings_ack
        })
        .await;
        h2
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.w.write_all(bytes).await?;
        self.w.flush().await
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen").clone()
    }

    /// Polls until `cond` holds; panics after `timeout`.
    pub async fn wait(&self, timeout: Duration, what: &str, cond: impl Fn(&Seen) -> bool) -> Seen {
        let start = Instant::now();
        loop {
            let s = self.seen();
            if cond(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "HTTP/2: no {what} within {timeout:?}; seen {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for H2 {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_frames(mut r: ReadHalf<TlsStream<TcpStream>>, seen: Arc<Mutex<Seen>>) {
    loop {
        let mut head = [0u8; 9];
        if r.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        let mut s = seen.lock().expect("seen");
        match kind {
            SETTINGS if flags & ACK != 0 => s.settings_ack = true,
            SETTINGS => s.settings = true,
            RST_STREAM if payload.len() >= 4 => {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                s.resets.push((stream, code));
            }
            HEADERS => s.responses.push(stream),
            // Header blocks are compressed; the 408's body is not.
            DATA if contains(&payload, b"did not arrive within") => s.body_timeouts.push(stream),
            GOAWAY if payload.len() >= 8 => {
                s.goaway = Some(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]))
            }
            _ => {}
        }
    }
    seen.lock().expect("seen").closed_at = Some(Instant::now());
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
