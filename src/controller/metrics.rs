//! The controller's gauges: the fleet, the policies and the SupportExceptions as the controller
//! last recorded them.
//! Everything here is derived from the recorded verdicts (`Seen`) and the policies' computed
//! status, never counted up, so a restarted controller publishes the same numbers once it has
//! reconciled each object again.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;

use crate::api::{SupportExceptionStatus, SupportPolicyStatus};
use crate::base::metrics::{
    ExceptionLabels, ExceptionView, FleetLabels, Metrics, ObjectSupportLabels, PolicyInfoLabels,
    PolicyView,
};
use crate::base::state::ExceptionSource;
use crate::base::state::PolicySource;
use crate::controller::ledger::Seen;
use crate::engine::exceptions::ExceptionSet;
use crate::engine::policy::Policy;
use crate::engine::policyset::PolicySet;
use crate::engine::targets::{FieldKind, select};
use crate::engine::{Evaluation, Verdict};

/// The bounded labels of one object's verdict (no name).
pub fn fleet_labels(
    ar: &ApiResource,
    obj: &DynamicObject,
    verdict: Verdict,
    reason: &str,
) -> FleetLabels {
    FleetLabels {
        kind: ar.kind.clone(),
        namespace: obj.namespace().unwrap_or_default(),
        verdict: verdict.as_str().to_string(),
        reason: reason.to_string(),
    }
}

/// The opt-in per-object series: the first rule that decided, and the versions the first policy
/// targeting the kind reads from the object (empty when it has none).
pub fn object_support_labels(
    policies: &PolicySet,
    ar: &ApiResource,
    obj: &DynamicObject,
    value: &Value,
    evaluation: &Evaluation,
) -> ObjectSupportLabels {
    let target = policies
        .policies()
        .iter()
        .find_map(|p| p.target_for(&ar.api_version, &ar.kind));
    let read = |path: Option<&crate::engine::targets::Query>| -> String {
        path.and_then(|p| {
            select(p, value)
                .into_iter()
                .find(|l| !l.value.is_null())
                .map(|l| {
                    l.value
                        .as_str()
                        .map_or_else(|| l.value.to_string(), str::to_string)
                })
        })
        .unwrap_or_default()
    };
    let rule = match evaluation.verdict {
        Verdict::Denied => evaluation.first_denial().map(|v| v.rule.id()),
        _ => evaluation.violations.first().map(|v| v.rule.id()),
    };
    ObjectSupportLabels {
        kind: ar.kind.clone(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        verdict: evaluation.verdict.as_str().to_string(),
        rule: rule.unwrap_or("").to_string(),
        konvoy_version: read(target.and_then(|t| t.path(FieldKind::ProductVersion))),
        kubernetes_version: read(target.and_then(|t| t.path(FieldKind::KubernetesVersion))),
    }
}

/// Publishes the fleet from the recorded verdicts of the objects still in the caches.
pub fn publish_fleet<'a>(
    metrics: &Metrics,
    seen: impl Iterator<Item = &'a Seen>,
    per_object: bool,
) {
    let mut counts: BTreeMap<FleetLabels, i64> = BTreeMap::new();
    let mut objects = BTreeSet::new();
    for s in seen {
        *counts.entry(s.fleet.clone()).or_default() += 1;
        if let Some(o) = s.support.as_ref().filter(|_| per_object) {
            objects.insert(o.clone());
        }
    }
    metrics
        .observed
        .set_fleet(counts, per_object.then_some(objects));
}

/// One policy's gauges, from the status the controller computed for it. `exception_expiry` is
/// the next expiry of a SupportException covering objects the policy denies (see
/// [`exception_expiries`]): their verdicts change on that day too.
pub fn policy_view(
    source: &PolicySource,
    status: &SupportPolicyStatus,
    today: jiff::civil::Date,
    exception_expiry: Option<jiff::civil::Date>,
) -> PolicyView {
    let sp = &source.object;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let compiled = source.compiled.as_ref().ok();
    PolicyView {
        info: PolicyInfoLabels {
            policy: sp.name_any(),
            product: compiled
                .as_ref()
                .map(|p| p.product_name.clone())
                .unwrap_or_default(),
            window: compiled
                .as_ref()
                .map(|p| p.window_text(today))
                .unwrap_or_default(),
            latest: status.latest.clone().unwrap_or_default(),
            supported: status.supported.clone().unwrap_or_default(),
        },
        ready,
        next_change: earliest(
            compiled.as_ref().and_then(|p| next_change(p, today)),
            exception_expiry.map(|d| ("exception_expiry".to_string(), d)),
        ),
    }
}

/// The earlier of two changes; the policy's own on the same day.
fn earliest(
    own: Option<(String, jiff::civil::Date)>,
    exception: Option<(String, jiff::civil::Date)>,
) -> Option<(String, jiff::civil::Date)> {
    match (own, exception) {
        (Some(a), Some(b)) => Some(if b.1 < a.1 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Per policy, the first day after `today` on which a SupportException stops covering an object
/// that the policy does not allow: from the reconciles' records. A policy whose every denial is
/// excepted counts the object as warned, and denies it again on that day.
pub fn exception_expiries<'a>(
    seen: impl Iterator<Item = &'a Seen>,
    exceptions: &ExceptionSet,
    today: jiff::civil::Date,
) -> BTreeMap<String, jiff::civil::Date> {
    let expires: BTreeMap<&str, jiff::civil::Date> = exceptions
        .exceptions()
        .iter()
        .filter(|x| x.expires > today)
        .map(|x| (x.key.as_str(), x.expires))
        .collect();
    let mut out: BTreeMap<String, jiff::civil::Date> = BTreeMap::new();
    for s in seen {
        let Some(day) = s
            .excepted_by
            .iter()
            .filter_map(|x| expires.get(x.as_str()).copied())
            .min()
        else {
            continue;
        };
        for (policy, _) in s.per_policy.iter().filter(|(_, v)| *v != Verdict::Allowed) {
            let e = out.entry(policy.clone()).or_insert(day);
            *e = (*e).min(day);
        }
    }
    out
}

/// One SupportException's gauges, from the status the controller computed for it.
pub fn exception_view(source: &ExceptionSource, status: &SupportExceptionStatus) -> ExceptionView {
    let x = &source.object;
    ExceptionView {
        labels: ExceptionLabels {
            namespace: x.namespace().unwrap_or_default(),
            exception: x.name_any(),
        },
        objects: i64::from(status.covered),
        ready: status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        expires: source.compiled.as_ref().ok().map(|c| c.expires),
    }
}

/// The policy's next date-driven change and what it is. Agrees with `Policy::next_transition`
/// on the day; names which kind of date it is for the alert and the dashboard.
pub fn next_change(
    policy: &Policy,
    today: jiff::civil::Date,
) -> Option<(String, jiff::civil::Date)> {
    use jiff::ToSpan;
    let day = policy.next_transition(today)?;
    let what = policy.releases().iter().find_map(|r| {
        let warn = r
            .end_of_support
            .and_then(|e| e.checked_sub((policy.nearing_end_days as i64).days()).ok());
        if r.end_of_support == Some(day) {
            Some("end_of_support")
        } else if r.release_date == Some(day) {
            Some("release")
        } else if warn == Some(day) {
            Some("nearing_end")
        } else {
            None
        }
    });
    Some((what.unwrap_or("release").to_string(), day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn next_change_names_the_kind_of_date() {
        let yaml = crate::engine::policy::DEFAULT_POLICY_YAML.replace(
            "releaseDate: \"2021-05-05\"",
            "releaseDate: \"2021-05-05\"\n    endOfSupport: \"2027-06-30\"",
        );
        let p = Policy::from_yaml(&yaml).expect("valid");
        // Before 1.7's release date: a release is next.
        let next = next_change(&p, date(2021, 1, 1));
        assert_eq!(next, Some(("release".to_string(), date(2021, 2, 10))));
        // nearingEndDays (90) before 1.8's end of support: the warning starts.
        let next = next_change(&p, date(2026, 11, 24));
        assert_eq!(next, Some(("nearing_end".to_string(), date(2027, 4, 1))));
        let next = next_change(&p, date(2027, 4, 1));
        assert_eq!(
            next,
            Some(("end_of_support".to_string(), date(2027, 6, 30)))
        );
        assert_eq!(next_change(&p, date(2027, 6, 30)), None);
        assert_eq!(
            next_change(&Policy::embedded_default(), date(2026, 11, 24)),
            None
        );
    }

    #[test]
    fn a_policy_view_follows_its_status() {
        use crate::controller::status_plan::policy_status;
        use crate::controller::tally::Tally;
        let today = date(2026, 11, 24);
        let sp: crate::api::SupportPolicy =
            serde_norway::from_str(crate::engine::policy::DEFAULT_POLICY_YAML).unwrap();
        let source = PolicySource::compile(std::sync::Arc::new(sp.clone()));
        let st = policy_status(&source, &Tally::default(), today, 20, None);
        let v = policy_view(&source, &st, today, None);
        assert!(v.ready);
        assert_eq!(
            (
                v.info.policy.as_str(),
                v.info.product.as_str(),
                v.info.window.as_str(),
                v.info.latest.as_str(),
                v.info.supported.as_str()
            ),
            (
                "default",
                "Konvoy",
                "N-2 of latest 1.8",
                "1.8",
                "1.8, 1.7, 1.6"
            )
        );
        assert_eq!(
            v.next_change, None,
            "the default policy has no future dates"
        );

        let mut bad = sp.clone();
        bad.spec.product[0].kubernetes.min = "1.99.x".into();
        let source = PolicySource::compile(std::sync::Arc::new(bad.clone()));
        let st = policy_status(&source, &Tally::default(), today, 20, None);
        let v = policy_view(&source, &st, today, None);
        assert!(!v.ready, "an invalid policy is not Ready");
        assert_eq!(v.info.policy, "default");
    }

    fn exception(name: &str, expires: &str) -> ExceptionSource {
        let x: crate::api::SupportException = serde_json::from_value(serde_json::json!({
            "apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportException",
            "metadata": {"name": name, "namespace": "supportgate",
                         "creationTimestamp": "2026-11-20T10:00:00Z"},
            "spec": {"reason": "DR", "expires": expires, "rules": ["konvoy-unsupported"],
                     "match": {"namespaces": ["kommander"], "names": ["old-west"]}}
        }))
        .unwrap();
        ExceptionSource::compile(std::sync::Arc::new(x))
    }

    fn seen(excepted_by: &[&str], per_policy: &[(&str, Verdict)]) -> Seen {
        Seen {
            epoch: 0,
            display: "ns/o (KonvoyCluster)".into(),
            merged: Verdict::Warned,
            per_policy: per_policy
                .iter()
                .map(|(p, v)| (p.to_string(), *v))
                .collect(),
            resolved: Vec::new(),
            fleet: FleetLabels {
                kind: "KonvoyCluster".into(),
                namespace: "ns".into(),
                verdict: "warned".into(),
                reason: "Excepted".into(),
            },
            support: None,
            excepted_by: excepted_by.iter().map(|x| x.to_string()).collect(),
        }
    }

    #[test]
    fn an_exception_expiry_is_a_change_of_the_policies_that_deny_what_it_covers() {
        let today = date(2026, 12, 1);
        let set = ExceptionSet::new(
            [
                exception("late", "2027-01-31"),
                exception("soon", "2027-01-10"),
                exception("gone", "2026-12-01"),
            ]
            .iter()
            .filter_map(|s| s.compiled.clone().ok())
            .collect(),
        );
        use Verdict::{Allowed, Denied, Warned};
        let seen = [
            seen(&["supportgate/late"], &[("p", Denied), ("q", Allowed)]),
            seen(&["supportgate/soon"], &[("p", Denied)]),
            // Expired today: it changes nothing any more.
            seen(&["supportgate/gone"], &[("r", Denied)]),
            seen(&["supportgate/late"], &[("s", Denied)]),
            // Every denial excepted: the policy counts it as warned until the exception ends.
            seen(&["supportgate/late"], &[("w", Warned)]),
            // Not excepted at all.
            seen(&[], &[("t", Denied)]),
        ];
        let got = exception_expiries(seen.iter(), &set, today);
        let want: BTreeMap<String, jiff::civil::Date> = [
            ("p".to_string(), date(2027, 1, 10)),
            ("s".to_string(), date(2027, 1, 31)),
            ("w".to_string(), date(2027, 1, 31)),
        ]
        .into();
        assert_eq!(got, want);

        // The earlier of the policy's own change and the exception's, named by kind.
        use crate::controller::status_plan::policy_status;
        use crate::controller::tally::Tally;
        let yaml = crate::engine::policy::DEFAULT_POLICY_YAML.replace(
            "releaseDate: \"2021-05-05\"",
            "releaseDate: \"2021-05-05\"\n    endOfSupport: \"2027-06-30\"",
        );
        let sp: crate::api::SupportPolicy = serde_norway::from_str(&yaml).unwrap();
        let source = PolicySource::compile(std::sync::Arc::new(sp));
        let st = policy_status(&source, &Tally::default(), today, 20, None);
        let v = policy_view(&source, &st, today, got.get("p").copied());
        assert_eq!(
            v.next_change,
            Some(("exception_expiry".to_string(), date(2027, 1, 10)))
        );
        let v = policy_view(&source, &st, today, Some(date(2027, 5, 1)));
        assert_eq!(
            v.next_change,
            Some(("nearing_end".to_string(), date(2027, 4, 1)))
        );
    }

    #[test]
    fn an_exception_view_follows_its_status() {
        use crate::controller::exception_status::exception_status;
        use crate::engine::exceptions::Limits;
        let limits = Limits::of([&Policy::embedded_default()]);
        let today = date(2026, 12, 1);
        let source = exception("legacy", "2027-01-31");
        let covered = [
            "ns/a (KonvoyCluster)".to_string(),
            "ns/b (KonvoyCluster)".to_string(),
        ];
        let st = exception_status(&source, &covered, today, limits, None);
        let v = exception_view(&source, &st);
        assert_eq!(
            (v.labels.namespace.as_str(), v.labels.exception.as_str()),
            ("supportgate", "legacy")
        );
        assert_eq!(
            (v.objects, v.ready, v.expires),
            (2, true, Some(date(2027, 1, 31)))
        );
        // Beyond maxExceptionDays (180 from its creation): not Ready, covers nothing.
        let source = exception("long", "2027-07-01");
        let st = exception_status(&source, &[], today, limits, None);
        let v = exception_view(&source, &st);
        assert_eq!(
            (v.objects, v.ready, v.expires),
            (0, false, Some(date(2027, 7, 1)))
        );
        // Not a date: no expiry.
        let source = exception("typo", "2027-02-30");
        let st = exception_status(&source, &[], today, limits, None);
        assert_eq!(exception_view(&source, &st).expires, None);
    }
}
