//! The observed state (issue 15): the fleet as the controller last recorded it, the serving
//! certificate, the policies and leadership.
//!
//! Gauges, never counters, so that every value is right again as soon as a restarted controller
//! has reconciled once. Times that move on their own (seconds until expiry, days until a change)
//! are computed at scrape time from the absolute times stored here, so they never go stale
//! between updates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::base::clock::today_utc;
use crate::base::metrics::labels::{
    ExceptionLabels, FleetLabels, ObjectSupportLabels, PolicyChangeLabels, PolicyInfoLabels,
    PolicyLabels,
};
use crate::base::state::PolicySource;

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
    pub certificate_expiry: Gauge<f64, AtomicU64>,
    pub certificate_expires_in: Gauge<f64, AtomicU64>,
    pub leader: Gauge,
    pub ready: Gauge,
    cert_source: OnceLock<CertExpirySource>,
    /// The label sets last published, so that vanished ones are removed rather than left at a
    /// stale value; and the policies' change dates, for the scrape-time countdown.
    published: Mutex<Published>,
}

#[derive(Default)]
struct Published {
    objects: BTreeSet<FleetLabels>,
    object_support: BTreeSet<ObjectSupportLabels>,
    policies: Vec<PolicyView>,
    exceptions: Vec<ExceptionView>,
}

impl Observed {
    pub(super) fn register(registry: &mut Registry) -> Self {
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
            cert_source: OnceLock::new(),
            published: Mutex::new(Published::default()),
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
        objects: BTreeMap<FleetLabels, i64>,
        per_object: Option<BTreeSet<ObjectSupportLabels>>,
    ) {
        let mut p = self.published.lock();
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
    pub fn set_policies_stale(&self, sources: &[PolicySource]) {
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
        let mut p = self.published.lock();
        // Only the label sets that went are removed: clearing first would let a scrape in
        // between see no policy at all, a stale series that resets the alerts' `for`.
        let info: BTreeSet<&PolicyInfoLabels> = views.iter().map(|v| &v.info).collect();
        let changes: BTreeSet<PolicyChangeLabels> =
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
        let mut p = self.published.lock();
        let now: BTreeSet<&ExceptionLabels> = views.iter().map(|v| &v.labels).collect();
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
        let p = self.published.lock();
        let today = today_utc();
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
#[path = "observed_tests.rs"]
mod tests;
