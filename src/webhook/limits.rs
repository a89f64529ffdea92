//! The limits that keep a hostile client from holding the webhook's connections: timeouts for
//! each phase of a connection, HTTP/2 stream and window caps, and a cap on open connections.
//!
//! The defaults are far above what kube-apiserver needs (it sends a few kilobytes of headers and
//! one AdmissionReview body at once, and answers pings at once) and far below what lets a
//! single client exhaust the process's file descriptors.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

/// How the webhook server limits its clients. See `supportgate run --help` for each field.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// Open connections per replica; at the cap the oldest idle, then the slowest unfinished
    /// connection is closed to make room.
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    /// TLS handshakes one client address may have in progress; its other new connections wait.
    pub handshakes_per_client: usize,
    /// From the first byte of a request head (HTTP/1.1) to its end.
    pub header_read_timeout: Duration,
    /// From the end of the request head to the end of its body.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    pub h2_max_concurrent_streams: u32,
    /// Streams the client reset before the server accepted them (the HTTP/2 rapid-reset attack).
    pub h2_max_pending_accept_reset_streams: usize,
    /// Streams the server had to reset because the client misbehaved.
    pub h2_max_local_error_reset_streams: usize,
    /// Streams a client may abandon (reset or cut off mid-body) within ten seconds before its
    /// connection is closed.
    pub h2_max_abandoned_streams: u32,
    pub h2_keep_alive_interval: Duration,
    pub h2_keep_alive_timeout: Duration,
    pub h2_max_header_list_bytes: u32,
    pub h2_connection_window_bytes: u32,
    pub h2_stream_window_bytes: u32,
    /// HTTP/1.1 read buffer, which bounds a request head.
    pub h1_max_buf_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 2048,
            handshake_timeout: Duration::from_secs(10),
            handshakes_per_client: 16,
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            // Longer than Go's 90 s idle-connection timeout (kube-apiserver's webhook client), so
            // that the client, not the server, closes an idle keep-alive connection: a server
            // close can race a POST the client is writing, which Go does not retry.
            idle_timeout: Duration::from_secs(120),
            h2_max_concurrent_streams: 100,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 64,
            h2_max_abandoned_streams: 200,
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(10),
            h2_max_header_list_bytes: 16 * 1024,
            h2_connection_window_bytes: 1024 * 1024,
            h2_stream_window_bytes: 1024 * 1024,
            h1_max_buf_bytes: 64 * 1024,
        }
    }
}

/// The command-line flags of [`ServerLimits`], flattened into `supportgate run`.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Most open webhook connections per replica (kept well under the file-descriptor limit,
    /// and lowered to 3/4 of it if set higher). At the cap the oldest idle connection, then the
    /// slowest unfinished one, is closed to let a new one in.
    #[arg(long, default_value_t = ServerLimits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a client may take for its TLS handshake.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub tls_handshake_timeout_seconds: Duration,
    /// TLS handshakes one client address may have in progress at once; its other new
    /// connections wait their turn (within the handshake timeout). kube-apiserver keeps its
    /// connections open and needs few; a flood from one address cannot take the CPU that
    /// another client's handshake needs.
    #[arg(long, default_value_t = ServerLimits::default().handshakes_per_client)]
    pub max_handshakes_per_client: usize,
    /// Seconds from the first byte of an HTTP/1.1 request head to its end.
    #[arg(long, default_value = "5", value_parser = seconds)]
    pub header_read_timeout_seconds: Duration,
    /// Seconds from the end of a request head to the end of its body (answered with 408).
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub body_read_timeout_seconds: Duration,
    /// Seconds a connection with no request in flight is kept open (above kube-apiserver's own
    /// 90 s, so that the client closes idle connections first).
    #[arg(long, default_value = "120", value_parser = seconds)]
    pub idle_timeout_seconds: Duration,
    /// Concurrent HTTP/2 streams per connection; more are refused.
    #[arg(long, default_value_t = ServerLimits::default().h2_max_concurrent_streams)]
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before being accepted (rapid reset) before the
    /// connection is closed with ENHANCE_YOUR_CALM.
    #[arg(long, default_value_t = ServerLimits::default().h2_max_pending_accept_reset_streams)]
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server resets for client errors before closing the connection.
    #[arg(long, default_value_t = ServerLimits::default().h2_max_local_error_reset_streams)]
    pub h2_max_local_error_reset_streams: usize,
    /// HTTP/2 streams a client may abandon (reset, or cut off mid-body) within 10 s before the
    /// connection is closed.
    #[arg(long, default_value_t = ServerLimits::default().h2_max_abandoned_streams)]
    pub h2_max_abandoned_streams: u32,
    /// Seconds between HTTP/2 keep-alive pings.
    #[arg(long, default_value = "20", value_parser = seconds)]
    pub h2_keep_alive_interval_seconds: Duration,
    /// Seconds to wait for a ping's answer before closing the connection.
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub h2_keep_alive_timeout_seconds: Duration,
    /// Largest HTTP/2 header list accepted, in bytes.
    #[arg(long, default_value_t = ServerLimits::default().h2_max_header_list_bytes)]
    pub h2_max_header_list_bytes: u32,
    /// HTTP/2 connection flow-control window, in bytes (fixed; no adaptive growth).
    #[arg(long, default_value_t = ServerLimits::default().h2_connection_window_bytes)]
    pub h2_connection_window_bytes: u32,
    /// HTTP/2 per-stream flow-control window, in bytes.
    #[arg(long, default_value_t = ServerLimits::default().h2_stream_window_bytes)]
    pub h2_stream_window_bytes: u32,
}

impl LimitArgs {
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            max_connections: self.max_connections.max(1),
            handshake_timeout: self.tls_handshake_timeout_seconds,
            handshakes_per_client: self.max_handshakes_per_client.max(1),
            header_read_timeout: self.header_read_timeout_seconds,
            body_read_timeout: self.body_read_timeout_seconds,
            idle_timeout: self.idle_timeout_seconds,
            h2_max_concurrent_streams: self.h2_max_concurrent_streams.max(1),
            h2_max_pending_accept_reset_streams: self.h2_max_pending_accept_reset_streams,
            h2_max_local_error_reset_streams: self.h2_max_local_error_reset_streams,
            h2_max_abandoned_streams: self.h2_max_abandoned_streams.max(1),
            h2_keep_alive_interval: self.h2_keep_alive_interval_seconds,
            h2_keep_alive_timeout: self.h2_keep_alive_timeout_seconds,
            h2_max_header_list_bytes: self.h2_max_header_list_bytes,
            h2_connection_window_bytes: self.h2_connection_window_bytes,
            h2_stream_window_bytes: self.h2_stream_window_bytes,
            ..ServerLimits::default()
        }
    }
}

/// A positive number of seconds, fractions allowed (tests use short timeouts).
fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    // NaN fails this too.
    if v.is_nan() || v <= 0.0 {
        return Err(format!("{s:?}: must be more than 0"));
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s:?}: {e}"))
}

impl ServerLimits {
    /// Lowers the connection cap to 3/4 of the soft open-file limit, so that the process always
    /// has descriptors left for the API server, the health port and accepting (and refusing).
    pub fn fit_to_fd_limit(mut self, fd_limit: Option<u64>) -> Self {
        if let Some(limit) = fd_limit {
            let room = usize::try_from(limit / 4 * 3).unwrap_or(usize::MAX).max(1);
            if self.max_connections > room {
                tracing::warn!(
                    max_connections = self.max_connections,
                    fd_limit = limit,
                    lowered_to = room,
                    "the connection cap is above 3/4 of the open-file limit; lowering it"
                );
                self.max_connections = room;
            }
        }
        self
    }

    /// The hyper builders for a connection whose ALPN chose HTTP/2, HTTP/1.1, or nothing
    /// (then the protocol is read from the first bytes).
    pub fn builders(&self) -> Builders {
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            // The server's own reaper enforces the header and idle timeouts with reasons for
            // the metrics; hyper's timer (idle + head in one) is the backstop behind it.
            .header_read_timeout(self.header_read_timeout + self.idle_timeout + SLACK)
            .max_buf_size(self.h1_max_buf_bytes.max(8192))
            .keep_alive(true);
        auto.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams)
            .max_pending_accept_reset_streams(self.h2_max_pending_accept_reset_streams)
            .max_local_error_reset_streams(self.h2_max_local_error_reset_streams)
            .keep_alive_interval(self.h2_keep_alive_interval)
            .keep_alive_timeout(self.h2_keep_alive_timeout)
            .max_header_list_size(self.h2_max_header_list_bytes)
            .adaptive_window(false)
            .initial_connection_window_size(self.h2_connection_window_bytes)
            .initial_stream_window_size(self.h2_stream_window_bytes)
            // Answers are small; a client that does not read them cannot make us buffer more.
            .max_send_buf_size(64 * 1024);
        Builders {
            h1: auto.clone().http1_only(),
            h2: auto.clone().http2_only(),
            auto,
        }
    }

    /// How often the reaper looks for connections past a timeout.
    pub fn reap_every(&self) -> Duration {
        let shortest = self
            .header_read_timeout
            .min(self.idle_timeout)
            .min(self.body_read_timeout);
        (shortest / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// Extra time before a backstop timeout fires behind the reaper's.
const SLACK: Duration = Duration::from_secs(1);

pub struct Builders {
    pub h1: auto::Builder<TokioExecutor>,
    pub h2: auto::Builder<TokioExecutor>,
    pub auto: auto::Builder<TokioExecutor>,
}

/// The soft open-file limit, from /proc (Linux); `None` elsewhere or when unknown.
pub fn fd_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_fd_limit(&text)
}

fn parse_fd_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_read_and_caps_connections() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63429                63429                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_fd_limit(text), Some(1024));
        assert_eq!(
            parse_fd_limit("Max open files unlimited unlimited files"),
            None
        );
        let l = ServerLimits::default().fit_to_fd_limit(Some(1024));
        assert_eq!(l.max_connections, 768);
        let l = ServerLimits::default().fit_to_fd_limit(Some(1 << 20));
        assert_eq!(l.max_connections, ServerLimits::default().max_connections);
        assert_eq!(
            ServerLimits::default()
                .fit_to_fd_limit(None)
                .max_connections,
            2048
        );
    }

    #[test]
    fn durations_must_be_positive_seconds() {
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("3"), Ok(Duration::from_secs(3)));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("NaN").is_err());
        assert!(seconds("soon").is_err());
    }

    #[test]
    fn the_reaper_runs_often_enough_for_the_shortest_timeout() {
        let l = ServerLimits {
            header_read_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        };
        assert_eq!(l.reap_every(), Duration::from_millis(250));
        assert_eq!(ServerLimits::default().reap_every(), Duration::from_secs(1));
    }
}
