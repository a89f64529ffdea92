//! Prometheus metrics, served on the plain health port.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub verdict: &'static str,
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: &'static str,
    pub severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub admission_requests: Family<VerdictLabels, Counter>,
    pub admission_violations: Family<RuleLabels, Counter>,
    pub admission_duration: Histogram,
    pub admission_errors: Family<ErrorLabels, Counter>,
    pub objects: Family<ObjectLabels, Gauge>,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Counter,
    pub status_writes: Counter,
    pub webhook_connections_open: Gauge,
    pub webhook_connections_accepted: Counter,
    pub webhook_connections_closed: Family<CloseLabels, Counter>,
    pub webhook_connections_refused: Counter,
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
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "objects",
            "Targeted objects by their current verdict",
            objects.clone(),
        );
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
        let (open, accepted, closed, refused) = register_connections(&mut registry);
        Metrics {
            registry,
            admission_requests,
            admission_violations,
            admission_duration,
            admission_errors,
            objects,
            reconcile_duration,
            reconcile_errors,
            status_writes,
            webhook_connections_open: open,
            webhook_connections_accepted: accepted,
            webhook_connections_closed: closed,
            webhook_connections_refused: refused,
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
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
