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
pub struct ErrorLabels {
    pub kind: &'static str,
}

/// What a failed write was for: the object's kind (`KonvoyCluster`, `SupportPolicy`,
/// `SupportException`, ...) or `Event`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
}

/// Why an event was given up: `queue_full`, `expired` (unpublished for an hour) or `rejected`
/// (the API server refused it for good: invalid, or its namespace is gone).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub reason: &'static str,
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

// ---------------------------------------------------------------------------------------------
// Observed state (issue 15): the fleet as the controller last recorded it, the serving
// certificate, the policies and leadership. Gauges, never counters, so that every value is right
// again as soon as a restarted controller has reconciled once. Times that move on their own
// (seconds until expiry, days until a change) are computed at scrape time from the absolute
// times stored here, so they never go stale between updates.
// ---------------------------------------------------------------------------------------------

/// `supportgate_objects`: bounded labels, no object names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct FleetLabels {
    pub kind: String,
    pub namespace: String,
    pub verdict: String,
    pub reason: String,
}

/// `supportgate_object_support`: one series per object, opt in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ObjectSupportLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub verdict: String,
    pub rule: String,
    pub konvoy_version: String,
    pub kubernetes_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyInfoLabels {
    pub policy: String,
    pub product: String,
    pub window: String,
    pub latest: String,
    pub supported: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyChangeLabels {
    pub policy: String,
    /// `release`, `end_of_support` or `nearing_end`.
    pub change: String,
}

/// The per-SupportException series: its namespace and name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ExceptionLabels {
    pub namespace: String,
    pub exception: String,
}

/// What one SupportException looks like to the metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct ExceptionView {
    pub labels: ExceptionLabels,
    /// The objects it covers now.
    pub objects: i64,
    /// Its Ready condition: valid and within the policies' maxExceptionDays.
    pub ready: bool,
    /// The first day (UTC) it no longer applies; none when `spec.expires` is not a date.
    pub expires: Option<jiff::civil::Date>,
}

/// What one policy looks like to the metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyView {
    pub info: PolicyInfoLabels,
    pub ready: bool,
    /// The next date-driven change, if any: what changes and on which day (UTC).
    pub next_change: Option<(String, jiff::civil::Date)>,
}

type CertExpirySource = Box<dyn Fn() -> Option<i64> + Send + Sync>;

pub struct Observed {
    pub objects: Family<FleetLabels, Gauge>,
    pub object_support: Family<ObjectSupportLabels, Gauge>,
    pub policy_info: Family<PolicyInfoLabels, Gauge>,
    pub policy_ready: Family<PolicyLabels, Gauge>,
    pub policy_stale: Family<PolicyLabels, Gauge>,
    pub policy_next_change_days: Family<PolicyChangeLabels, Gauge>,
    pub exception_objects: Family<ExceptionLabels, Gauge>,
    pub exception_ready: Family<ExceptionLabels, Gauge>,
    pub exception_expiry: Family<ExceptionLabels, Gauge>,
    pub exception_expires_in_days: Family<ExceptionLabels, Gauge>,
    pub certificate_expiry: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub certificate_expires_in: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub leader: Gauge,
    pub ready: Gauge,
    cert_source: std::sync::OnceLock<CertExpirySource>,
    /// The label sets last published, so that vanished ones are removed rather than left at a
    /// stale value; and the policies' change dates, for the scrape-time countdown.
    published: std::sync::Mutex<Published>,
}

#[derive(Default)]
struct Published {
    objects: std::collections::BTreeSet<FleetLabels>,
    object_support: std::collections::BTreeSet<ObjectSupportLabels>,
    policies: Vec<PolicyView>,
    exceptions: Vec<ExceptionView>,
}

impl Observed {
    fn register(registry: &mut Registry) -> Self {
        let o = Observed {
            objects: Family::default(),
            object_support: Family::default(),
            policy_info: Family::default(),
            policy_ready: Family::default(),
            policy_stale: Family::default(),
            policy_next_change_days: Family::default(),
            exception_objects: Family::default(),
            exception_ready: Family::default(),
            exception_expiry: Family::default(),
            exception_expires_in_days: Family::default(),
            certificate_expiry: Gauge::default(),
            certificate_expires_in: Gauge::default(),
            leader: Gauge::default(),
            ready: Gauge::default(),
            cert_source: std::sync::OnceLock::new(),
            published: std::sync::Mutex::new(Published::default()),
        };
        let r = registry;
        r.register(
            "objects",
            "Targeted objects by kind, namespace, verdict and condition reason, as the leader's controller last recorded them (leader only)",
            o.objects.clone(),
        );
        r.register(
            "object_support",
            "One series per targeted object with its verdict, first rule and versions; always 1 (only with --object-metrics)",
            o.object_support.clone(),
        );
        r.register(
            "policy_info",
            "A SupportPolicy's supported window as labels; always 1 (leader only)",
            o.policy_info.clone(),
        );
        r.register(
            "policy_ready",
            "1 when the SupportPolicy is valid (its Ready condition is True), 0 when it is not (leader only)",
            o.policy_ready.clone(),
        );
        r.register(
            "policy_stale",
            "1 when the SupportPolicy as stored is not what is enforced (it does not compile, or its targets do not resolve against API discovery), and an earlier generation, or nothing, is in force instead; 0 when it is",
            o.policy_stale.clone(),
        );
        r.register(
            "policy_next_change_days",
            "Days until the next date-driven change of the SupportPolicy's verdicts (a release, an end of support, the start of its nearing-end warning, the expiry of a SupportException covering objects it denies) (leader only)",
            o.policy_next_change_days.clone(),
        );
        register_exceptions(r, &o);
        r.register(
            "certificate_expiry_timestamp_seconds",
            "When the webhook serving certificate expires (Unix time)",
            o.certificate_expiry.clone(),
        );
        r.register(
            "certificate_expires_in_seconds",
            "Seconds until the webhook serving certificate expires",
            o.certificate_expires_in.clone(),
        );
        r.register(
            "leader",
            "1 while this replica is the leader and runs the controller",
            o.leader.clone(),
        );
        r.register(
            "ready",
            "1 while this replica is ready to answer admission reviews (as /readyz)",
            o.ready.clone(),
        );
        o
    }

    /// Where the serving certificate's expiry (Unix seconds) is read at each scrape.
    pub fn set_certificate_source(&self, source: CertExpirySource) {
        let _ = self.cert_source.set(source);
    }

    /// Replaces the fleet series with `now`; label sets no longer present are removed.
    pub fn set_fleet(
        &self,
        objects: std::collections::BTreeMap<FleetLabels, i64>,
        per_object: Option<std::collections::BTreeSet<ObjectSupportLabels>>,
    ) {
        let Ok(mut p) = self.published.lock() else {
            return;
        };
        for gone in p.objects.iter().filter(|l| !objects.contains_key(*l)) {
            self.objects.remove(gone);
        }
        for (labels, n) in &objects {
            self.objects.get_or_create(labels).set(*n);
        }
        p.objects = objects.into_keys().collect();
        let per_object = per_object.unwrap_or_default();
        for gone in p.object_support.difference(&per_object) {
            self.object_support.remove(gone);
        }
        for labels in &per_object {
            self.object_support.get_or_create(labels).set(1);
        }
        p.object_support = per_object;
    }

    /// Replaces the `policy_stale` series, on every replica (each enforces what it compiled).
    pub fn set_policies_stale(&self, sources: &[crate::base::state::PolicySource]) {
        self.policy_stale.clear();
        for s in sources {
            let policy = PolicyLabels {
                policy: s.object.metadata.name.clone().unwrap_or_default(),
            };
            self.policy_stale
                .get_or_create(&policy)
                .set(i64::from(!s.is_current()));
        }
    }

    /// Replaces the policy series.
    pub fn set_policies(&self, views: Vec<PolicyView>) {
        let Ok(mut p) = self.published.lock() else {
            return;
        };
        // Only the label sets that went are removed: clearing first would let a scrape in
        // between see no policy at all, a stale series that resets the alerts' `for`.
        let info: std::collections::BTreeSet<&PolicyInfoLabels> =
            views.iter().map(|v| &v.info).collect();
        let changes: std::collections::BTreeSet<PolicyChangeLabels> =
            views.iter().filter_map(change_labels).collect();
        for old in &p.policies {
            if !info.contains(&old.info) {
                self.policy_info.remove(&old.info);
            }
            if !views.iter().any(|v| v.info.policy == old.info.policy) {
                self.policy_ready.remove(&PolicyLabels {
                    policy: old.info.policy.clone(),
                });
            }
            if let Some(gone) = change_labels(old).filter(|l| !changes.contains(l)) {
                self.policy_next_change_days.remove(&gone);
            }
        }
        for v in &views {
            self.policy_info.get_or_create(&v.info).set(1);
            let policy = PolicyLabels {
                policy: v.info.policy.clone(),
            };
            self.policy_ready
                .get_or_create(&policy)
                .set(i64::from(v.ready));
        }
        p.policies = views;
        drop(p);
        self.refresh(jiff::Timestamp::now());
    }

    /// Replaces the SupportException series; those of deleted exceptions are removed.
    pub fn set_exceptions(&self, views: Vec<ExceptionView>) {
        let Ok(mut p) = self.published.lock() else {
            return;
        };
        let now: std::collections::BTreeSet<&ExceptionLabels> =
            views.iter().map(|v| &v.labels).collect();
        for gone in p.exceptions.iter().filter(|v| !now.contains(&v.labels)) {
            self.exception_objects.remove(&gone.labels);
            self.exception_ready.remove(&gone.labels);
            self.exception_expiry.remove(&gone.labels);
            self.exception_expires_in_days.remove(&gone.labels);
        }
        for v in &views {
            self.exception_objects
                .get_or_create(&v.labels)
                .set(v.objects);
            self.exception_ready
                .get_or_create(&v.labels)
                .set(i64::from(v.ready));
            match v.expires.and_then(start_of) {
                Some(at) => {
                    self.exception_expiry.get_or_create(&v.labels).set(at);
                }
                // A date that does not exist: no expiry to show (Ready says why).
                None => {
                    self.exception_expiry.remove(&v.labels);
                    self.exception_expires_in_days.remove(&v.labels);
                }
            }
        }
        p.exceptions = views;
        drop(p);
        self.refresh(jiff::Timestamp::now());
    }

    /// Forgets everything the leader published (on losing leadership: another replica speaks).
    pub fn clear_leader_state(&self) {
        self.set_fleet(Default::default(), None);
        self.set_policies(Vec::new());
        self.set_exceptions(Vec::new());
        self.leader.set(0);
    }

    /// Updates the countdowns: the certificate's to `now`, the days until policy and exception
    /// dates to today as the policy dates see it (`clock::today_utc`, which a test may shift).
    pub fn refresh(&self, now: jiff::Timestamp) {
        if let Some(not_after) = self.cert_source.get().and_then(|f| f()) {
            self.certificate_expiry.set(not_after as f64);
            self.certificate_expires_in
                .set((not_after - now.as_second()) as f64);
        }
        let Ok(p) = self.published.lock() else {
            return;
        };
        let today = crate::base::clock::today_utc();
        for v in &p.policies {
            if let (Some((_, day)), Some(labels)) = (&v.next_change, change_labels(v)) {
                let days = (*day - today).get_days();
                self.policy_next_change_days
                    .get_or_create(&labels)
                    .set(i64::from(days));
            }
        }
        for v in &p.exceptions {
            if let Some(day) = v.expires.filter(|d| start_of(*d).is_some()) {
                let days = (day - today).get_days();
                self.exception_expires_in_days
                    .get_or_create(&v.labels)
                    .set(i64::from(days));
            }
        }
    }
}

/// The `supportgate_policy_next_change_days` series of a policy, when it has a next change.
fn change_labels(v: &PolicyView) -> Option<PolicyChangeLabels> {
    v.next_change
        .as_ref()
        .map(|(change, _)| PolicyChangeLabels {
            policy: v.info.policy.clone(),
            change: change.clone(),
        })
}

/// The first second of `day` (UTC) as Unix time: when an exception expiring on `day` stops.
fn start_of(day: jiff::civil::Date) -> Option<i64> {
    day.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

/// The per-SupportException gauges (leader only, like the policy gauges).
fn register_exceptions(r: &mut Registry, o: &Observed) {
    r.register(
        "exception_objects",
        "Objects a SupportException covers now (their denials turned into warnings) (leader only)",
        o.exception_objects.clone(),
    );
    r.register(
        "exception_ready",
        "1 when the SupportException is valid and within the policies' maxExceptionDays (its Ready condition is True), 0 when it is not (leader only)",
        o.exception_ready.clone(),
    );
    r.register(
        "exception_expiry_timestamp_seconds",
        "When the SupportException stops applying: 00:00 UTC of its spec.expires day (Unix time) (leader only)",
        o.exception_expiry.clone(),
    );
    r.register(
        "exception_expires_in_days",
        "Days until the SupportException's spec.expires day (UTC); 0 or less once it has expired (leader only)",
        o.exception_expires_in_days.clone(),
    );
}

#[cfg(test)]
mod observed_tests {
    use super::*;

    fn fleet(verdict: &str, namespace: &str) -> FleetLabels {
        FleetLabels {
            kind: "KonvoyCluster".into(),
            namespace: namespace.into(),
            verdict: verdict.into(),
            reason: "KonvoyUnsupported".into(),
        }
    }

    #[test]
    fn fleet_series_vanish_when_no_object_has_them() {
        let m = Metrics::new();
        m.observed.set_fleet(
            [(fleet("denied", "a"), 2), (fleet("denied", "b"), 1)].into(),
            None,
        );
        let text = m.encode();
        assert!(text.contains(r#"supportgate_objects{kind="KonvoyCluster",namespace="a",verdict="denied",reason="KonvoyUnsupported"} 2"#), "{text}");
        m.observed
            .set_fleet([(fleet("denied", "b"), 1)].into(), None);
        let text = m.encode();
        assert!(!text.contains(r#"namespace="a""#), "{text}");
        assert!(text.contains(r#"namespace="b""#), "{text}");
        assert!(
            !text.contains("supportgate_object_support{"),
            "opt in: {text}"
        );
    }

    #[test]
    fn countdowns_are_computed_at_scrape_time() {
        let m = Metrics::new();
        let now = jiff::Timestamp::now().as_second();
        m.observed
            .set_certificate_source(Box::new(move || Some(now + 3 * 86_400)));
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let info = PolicyInfoLabels {
            policy: "p".into(),
            product: "Konvoy".into(),
            window: "N-2 of latest 1.8".into(),
            latest: "1.8".into(),
            supported: "1.8, 1.7, 1.6".into(),
        };
        m.observed.set_policies(vec![PolicyView {
            info,
            ready: false,
            next_change: Some(("end_of_support".into(), today + jiff::Span::new().days(10))),
        }]);
        let text = m.encode();
        let expires_in: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("supportgate_certificate_expires_in_seconds "))
            .and_then(|v| v.parse().ok())
            .expect(&text);
        assert!(
            (3.0 * 86_400.0 - 5.0..=3.0 * 86_400.0).contains(&expires_in),
            "{expires_in}"
        );
        assert!(
            text.contains(
                r#"supportgate_policy_next_change_days{policy="p",change="end_of_support"} 10"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"supportgate_policy_ready{policy="p"} 0"#),
            "{text}"
        );
        assert!(text.contains("# HELP supportgate_policy_info "), "{text}");
        // The next change moves to an exception's expiry: the old series goes, not left stale.
        let mut view = m.observed.published.lock().unwrap().policies[0].clone();
        view.next_change = Some(("exception_expiry".into(), today + jiff::Span::new().days(4)));
        m.observed.set_policies(vec![view]);
        let text = m.encode();
        assert!(!text.contains(r#"change="end_of_support""#), "{text}");
        assert!(
            text.contains(
                r#"supportgate_policy_next_change_days{policy="p",change="exception_expiry"} 4"#
            ) && text.contains(r#"supportgate_policy_ready{policy="p"} 0"#),
            "{text}"
        );
        m.observed.clear_leader_state();
        assert!(!m.encode().contains(r#"policy="p""#));
    }

    fn exception(name: &str, objects: i64, expires: Option<jiff::civil::Date>) -> ExceptionView {
        ExceptionView {
            labels: ExceptionLabels {
                namespace: "supportgate".into(),
                exception: name.into(),
            },
            objects,
            ready: expires.is_some(),
            expires,
        }
    }

    #[test]
    fn exception_series_follow_the_exceptions_and_count_down_at_scrape_time() {
        let m = Metrics::new();
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let expires = today + jiff::Span::new().days(9);
        m.observed.set_exceptions(vec![
            exception("legacy", 2, Some(expires)),
            exception("typo", 0, None),
        ]);
        let text = m.encode();
        let at = expires
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second();
        for want in [
            r#"supportgate_exception_objects{namespace="supportgate",exception="legacy"} 2"#.to_string(),
            r#"supportgate_exception_ready{namespace="supportgate",exception="legacy"} 1"#.to_string(),
            format!(r#"supportgate_exception_expiry_timestamp_seconds{{namespace="supportgate",exception="legacy"}} {at}"#),
            r#"supportgate_exception_expires_in_days{namespace="supportgate",exception="legacy"} 9"#.to_string(),
            r#"supportgate_exception_ready{namespace="supportgate",exception="typo"} 0"#.to_string(),
            r#"supportgate_exception_objects{namespace="supportgate",exception="typo"} 0"#.to_string(),
        ] {
            assert!(text.contains(&want), "{want} missing from:\n{text}");
        }
        assert!(
            !text.contains(r#"_seconds{namespace="supportgate",exception="typo"}"#)
                && !text.contains(r#"_days{namespace="supportgate",exception="typo"}"#),
            "no expiry without a date: {text}"
        );
        // Deleted: its series go; the other's stay.
        m.observed.set_exceptions(vec![exception("typo", 0, None)]);
        let text = m.encode();
        assert!(!text.contains(r#"exception="legacy""#), "{text}");
        assert!(text.contains(r#"exception="typo""#), "{text}");
        m.observed.clear_leader_state();
        assert!(!m.encode().contains("exception=\""));
    }
}
