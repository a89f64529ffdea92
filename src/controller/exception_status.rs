//! Every trusted SupportException's status: how many objects it covers (from what the reconciles
//! recorded, never a second evaluation), `Ready` (valid, within the policies' cap) and `Expired`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::civil::Date;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::Instrument;

use crate::api::{SupportException, SupportExceptionStatus};
use crate::base::clock::today_utc;
use crate::base::state::ExceptionSource;
use crate::controller::condition::status_condition;
use crate::controller::metrics::exception_view;
use crate::controller::retry::{Writes, earliest, uid_key};
use crate::controller::session::Session;
use crate::engine::exceptions::{ExceptionState, Limits};

const MAX_LISTED: usize = 20;

/// The status of one exception, given the objects it covers (`namespace/name (Kind)`).
pub fn exception_status(
    source: &ExceptionSource,
    covered: &[String],
    today: Date,
    limits: Limits,
    previous: Option<&SupportExceptionStatus>,
) -> SupportExceptionStatus {
    let x = &source.object;
    let cond = |type_: &str, ok: bool, reason: &str, message: String| {
        condition(x, previous, type_, ok, reason, message)
    };
    let (ready, expired) = match &source.compiled {
        Err(e) => (cond("Ready", false, "InvalidSpec", e.clone()), None),
        Ok(c) => match c.state(today, limits) {
            ExceptionState::Invalid(why) => {
                (cond("Ready", false, "BeyondMaxExceptionDays", why), None)
            }
            state => {
                let gone = state == ExceptionState::Expired;
                let expired = if gone {
                    cond(
                        "Expired",
                        true,
                        "Expired",
                        format!("expired on {}; it covers nothing", c.expires),
                    )
                } else {
                    cond(
                        "Expired",
                        false,
                        "Active",
                        format!("applies until {} (exclusive)", c.expires),
                    )
                };
                (
                    cond("Ready", true, "Valid", format!("excepts {}", rule_list(c))),
                    Some(expired),
                )
            }
        },
    };
    let mut listed = covered.to_vec();
    listed.sort();
    listed.truncate(MAX_LISTED);
    SupportExceptionStatus {
        observed_generation: x.metadata.generation,
        covered: i32::try_from(covered.len()).unwrap_or(i32::MAX),
        covered_objects: listed,
        conditions: std::iter::once(ready).chain(expired).collect(),
    }
}

fn rule_list(c: &crate::engine::exceptions::CompiledException) -> String {
    c.rules
        .iter()
        .map(|r| r.id())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A condition whose transition time moves only when its status flips.
fn condition(
    x: &SupportException,
    previous: Option<&SupportExceptionStatus>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    let previous = previous
        .or(x.status.as_ref())
        .map_or(&[][..], |p| &p.conditions[..]);
    status_condition(previous, x.metadata.generation, type_, ok, reason, message)
}

/// Publishes every trusted exception's gauges and writes the status of those whose status
/// changed. `written` is keyed by uid: an exception deleted and created again is written anew.
pub(crate) async fn write_all(session: &Session, written: &mut Writes<SupportExceptionStatus>) {
    let covered = covered_by(session);
    let today = today_utc();
    let limits = Limits::of(
        session
            .shared
            .policies
            .load()
            .policies()
            .iter()
            .map(|p| &**p),
    );
    let sources = session.shared.exception_sources.load_full();
    written.keep_only(
        &sources
            .iter()
            .map(|s| uid_key(&s.object.metadata))
            .collect(),
    );
    let computed: Vec<_> = sources
        .iter()
        .map(|source| {
            let key = format!(
                "{}/{}",
                source.object.namespace().unwrap_or_default(),
                source.object.name_any()
            );
            let uid = uid_key(&source.object.metadata);
            let objects = covered.get(&key).map(Vec::as_slice).unwrap_or_default();
            let status = exception_status(source, objects, today, limits, written.previous(&uid));
            (source, key, uid, status)
        })
        .collect();
    // The gauges follow the computed status at once, not the writes; deleted exceptions are
    // no longer in `sources`, so their series go.
    let views = computed
        .iter()
        .map(|(source, _, _, st)| exception_view(source, st));
    session
        .shared
        .metrics
        .observed
        .set_exceptions(views.collect());
    for (source, key, uid, status) in computed {
        if !written.wants(&uid, &status, Instant::now()) {
            continue;
        }
        let span = tracing::info_span!("exception_status", exception = %key);
        match write_one(session, source, &status).instrument(span).await {
            Ok(()) => written.wrote(&uid, status),
            Err(e) => {
                let delay = written.failed(&uid, Instant::now());
                session.count_retry("SupportException");
                tracing::warn!(exception = %key, error = %e, failures = written.failures(&uid), retry_in_ms = delay.as_millis() as u64, "writing SupportException status failed; retrying after a backoff");
            }
        }
    }
}

async fn write_one(
    session: &Session,
    source: &ExceptionSource,
    status: &SupportExceptionStatus,
) -> Result<(), kube::Error> {
    let ns = source.object.namespace().unwrap_or_default();
    let api: Api<SupportException> = Api::namespaced(session.client.clone(), &ns);
    let body = json!({"apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportException", "status": status});
    let pp = PatchParams::apply(&session.cfg.field_manager).force();
    api.patch_status(&source.object.name_any(), &pp, &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// Exception key to the objects it covers, from the reconciles' records.
fn covered_by(session: &Session) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in session.seen.lock().values() {
        for x in &s.excepted_by {
            out.entry(x.clone()).or_default().push(s.display.clone());
        }
    }
    out
}

/// Waits for the reconciles to record something, for the next exception expiry (whose
/// `Expired` condition flips even when it covers nothing), or for `retry_at`, when a failed
/// status write's backoff ends.
pub(crate) async fn wait(session: &Session, retry_at: Option<Instant>) {
    let today = today_utc();
    let expiry = session
        .shared
        .exceptions
        .load()
        .next_expiry(today)
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_second() - crate::base::clock::now().as_second() + 1)
        .filter(|secs| *secs > 0)
        .map(|secs| Instant::now() + Duration::from_secs(secs as u64));
    match earliest(expiry, retry_at) {
        Some(at) => {
            tokio::select! {
                () = session.dirty.notified() => {}
                () = tokio::time::sleep_until(at) => {}
            }
        }
        None => session.dirty.notified().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::Policy;
    use jiff::civil::date;

    fn source(expires: &str) -> ExceptionSource {
        let x: SupportException = serde_json::from_value(json!({
            "apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportException",
            "metadata": {"name": "legacy-west", "namespace": "supportgate", "generation": 2,
                         "creationTimestamp": "2026-11-20T10:00:00Z"},
            "spec": {"reason": "DR", "expires": expires, "rules": ["konvoy-unsupported"],
                     "match": {"namespaces": ["kommander"], "names": ["old-west"]}}
        }))
        .unwrap();
        ExceptionSource::compile(std::sync::Arc::new(x))
    }

    fn find<'s>(s: &'s SupportExceptionStatus, t: &str) -> Option<&'s Condition> {
        s.conditions.iter().find(|c| c.type_ == t)
    }

    #[test]
    fn status_counts_cover_and_flips_expired_on_the_day() {
        let limits = Limits::of([&Policy::embedded_default()]);
        let covered = ["kommander/old-west (KonvoyCluster)".to_string()];
        let s = exception_status(
            &source("2027-01-31"),
            &covered,
            date(2027, 1, 30),
            limits,
            None,
        );
        assert_eq!((s.covered, s.observed_generation), (1, Some(2)));
        assert_eq!(s.covered_objects, covered);
        assert_eq!(find(&s, "Ready").unwrap().status, "True");
        assert_eq!(find(&s, "Expired").unwrap().status, "False");
        let s = exception_status(
            &source("2027-01-31"),
            &[],
            date(2027, 1, 31),
            limits,
            Some(&s),
        );
        let e = find(&s, "Expired").unwrap();
        assert_eq!((e.status.as_str(), e.reason.as_str()), ("True", "Expired"));
        assert_eq!(s.covered, 0);
    }

    #[test]
    fn invalid_exceptions_say_why() {
        let limits = Limits::of([&Policy::embedded_default()]);
        let s = exception_status(&source("2027-05-20"), &[], date(2026, 11, 24), limits, None);
        let r = find(&s, "Ready").unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "BeyondMaxExceptionDays")
        );
        assert!(r.message.contains("181 days"), "{}", r.message);
        assert!(find(&s, "Expired").is_none());
        let s = exception_status(&source("2027-02-30"), &[], date(2026, 11, 24), limits, None);
        let r = find(&s, "Ready").unwrap();
        assert_eq!(
            (r.status.as_str(), r.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(r.message.contains("spec.expires"), "{}", r.message);
    }
}
