//! Prometheus metrics, served on the plain health port: the registry and its families.
//!
//! - `labels`: the label sets of the families;
//! - `observed`: the gauges of the fleet, the certificate, the policies and leadership.

mod labels;
mod observed;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use labels::*;
pub use observed::{ExceptionView, Observed, PolicyView};

pub struct Metrics {
    registry: Registry,
    pub admission_requests: Family<VerdictLabels, Counter>,
    pub admission_violations: Family<RuleLabels, Counter>,
    pub admission_duration: Histogram,
    pub admission_errors: Family<ErrorLabels, Counter>,
    /// Fleet, certificate, policy and leadership gauges (see `Observed` below).
    pub observed: Observed,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Counter,
    pub status_writes: Counter,
    /// Failed writes scheduled for a retry (after their backoff), by kind.
    pub status_write_retries: Family<WriteLabels, Counter>,
    /// Events waiting to be published again.
    pub events_pending: Gauge,
    pub events_dropped: Family<DropLabels, Counter>,
    pub webhook_connections_open: Gauge,
    pub webhook_connections_accepted: Counter,
    pub webhook_connections_closed: Family<CloseLabels, Counter>,
    pub webhook_connections_refused: Counter,
    pub webhook_connection_sources: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("supportgate");
        let admission_requests = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReviews answered, by verdict and operation",
            admission_requests.clone(),
        );
        let admission_violations = Family::<RuleLabels, Counter>::default();
        registry.register(
            "admission_violations",
            "Violations reported in admission answers, by rule and severity",
            admission_violations.clone(),
        );
        // 10 µs .. ~80 ms: the interesting range is tens of microseconds.
        let admission_duration = Histogram::new(exponential_buckets(0.000_01, 2.0, 14));
        registry.register(
            "admission_duration_seconds",
            "Time from request body received to answer encoded",
            admission_duration.clone(),
        );
        let admission_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "admission_errors",
            "Requests refused before evaluation (too large, malformed)",
            admission_errors.clone(),
        );
        let observed = Observed::register(&mut registry);
        let reconcile_duration = Histogram::new(exponential_buckets(0.000_1, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time to evaluate an object and write its status",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Counter::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed and were retried",
            reconcile_errors.clone(),
        );
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "Status patches written by the controller",
            status_writes.clone(),
        );
        let (status_write_retries, events_pending, events_dropped) =
            register_retries(&mut registry);
        let (open, accepted, closed, refused) = register_connections(&mut registry);
        let webhook_connection_sources = Gauge::default();
        registry.register(
            "webhook_connection_sources",
            "Client addresses holding webhook connections now (at the cap, the one holding most \
             gives up a connection)",
            webhook_connection_sources.clone(),
        );
        Metrics {
            registry,
            admission_requests,
            admission_violations,
            admission_duration,
            admission_errors,
            observed,
            reconcile_duration,
            reconcile_errors,
            status_writes,
            status_write_retries,
            events_pending,
            events_dropped,
            webhook_connections_open: open,
            webhook_connections_accepted: accepted,
            webhook_connections_closed: closed,
            webhook_connections_refused: refused,
            webhook_connection_sources,
        }
    }

    pub fn encode(&self) -> String {
        self.observed.refresh(jiff::Timestamp::now());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The controller's retries of failed writes (issue 28): status, report and event writes the
/// API server refused, retried with a per-object backoff; events given up.
fn register_retries(
    registry: &mut Registry,
) -> (
    Family<WriteLabels, Counter>,
    Gauge,
    Family<DropLabels, Counter>,
) {
    let retries = Family::<WriteLabels, Counter>::default();
    registry.register(
        "status_write_retries",
        "Failed controller writes (status, PolicyReport, event) scheduled for a retry after a \
         backoff of 5 s doubling to 5 min, by kind written",
        retries.clone(),
    );
    let pending = Gauge::default();
    registry.register(
        "events_pending",
        "Events that failed to publish and wait for a retry (at most 1000)",
        pending.clone(),
    );
    let dropped = Family::<DropLabels, Counter>::default();
    registry.register(
        "events_dropped",
        "Events given up, by reason: queue_full, expired (unpublished for an hour), rejected",
        dropped.clone(),
    );
    (retries, pending, dropped)
}

/// The webhook's connection metrics: open, accepted, closed by the server (by reason) and
/// refused at the cap.
fn register_connections(
    registry: &mut Registry,
) -> (Gauge, Counter, Family<CloseLabels, Counter>, Counter) {
    let open = Gauge::default();
    registry.register(
        "webhook_connections_open",
        "Webhook connections open now (TLS handshakes included)",
        open.clone(),
    );
    let accepted = Counter::default();
    registry.register(
        "webhook_connections_accepted",
        "Webhook connections accepted",
        accepted.clone(),
    );
    let closed = Family::<CloseLabels, Counter>::default();
    registry.register(
        "webhook_connections_closed",
        "Webhook connections the server closed, by reason: a timeout (handshake, header, body, \
         idle), abandoned HTTP/2 streams, eviction at the connection cap (evicted_idle, \
         evicted_slow) or shutdown",
        closed.clone(),
    );
    let refused = Counter::default();
    registry.register(
        "webhook_connections_refused",
        "New webhook connections closed at once: the cap was reached and no open connection \
         could be evicted",
        refused.clone(),
    );
    (open, accepted, closed, refused)
}
