//! Every SupportPolicy's status: its window, how many objects it allows, warns about and denies,
//! which objects it denies, and whether it is valid. Counts come from what the reconciles
//! recorded, never from a second evaluation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::Instrument;

use crate::api::{ObjectCounts, SupportPolicy, SupportPolicyStatus};
use crate::controller::Session;
use crate::engine::Verdict;
use crate::runtime::clock::today_utc;
use crate::runtime::metrics::ObjectLabels;
use crate::runtime::state::PolicySource;

/// What the status of the policies needs to know about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// `namespace/name (Kind)`
    pub display: String,
    pub merged: Verdict,
    pub per_policy: Vec<(String, Verdict)>,
    /// The SupportExceptions (`namespace/name`) that cover it.
    pub excepted_by: Vec<String>,
}

/// A policy's objects by verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub counts: ObjectCounts,
    /// `namespace/name (Kind)` of every denied object.
    pub denied: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, verdict: Verdict, display: &str) {
        match verdict {
            Verdict::Allowed => self.counts.allowed += 1,
            Verdict::Warned => self.counts.warned += 1,
            Verdict::Denied => {
                self.counts.denied += 1;
                self.denied.push(display.to_string());
            }
        }
    }
}

/// Keeps every SupportPolicy's status (window, counts, denied objects, Ready) current.
pub(crate) async fn policy_status_loop(session: Arc<Session>) {
    let mut written: HashMap<String, SupportPolicyStatus> = HashMap::new();
    let mut exceptions_written = HashMap::new();
    let api: Api<SupportPolicy> = Api::all(session.client.clone());
    loop {
        crate::controller::exception_status::wait(&session).await;
        // At most one pass a second: a policy change re-evaluates every object, and the counts
        // are read from what the reconciles recorded, never recomputed here.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (tallies, merged) = tally(&session);
        publish_counts(&session, &merged);
        crate::controller::exception_status::write_all(&session, &mut exceptions_written).await;
        let today = today_utc();
        for source in session.shared.policy_sources.load().iter() {
            let name = source.object.name_any();
            let empty = Tally::default();
            let t = tallies.get(&name).unwrap_or(&empty);
            let max = session.cfg.max_denied_listed;
            let status = policy_status(source, t, today, max, written.get(&name));
            if written.get(&name) == Some(&status) {
                continue;
            }
            let span = tracing::info_span!("policy_status", policy = %name);
            match write_status(&session, &api, &name, &status)
                .instrument(span)
                .await
            {
                Ok(()) => {
                    written.insert(name, status);
                }
                Err(e) => {
                    tracing::warn!(policy = %name, error = %e, "writing SupportPolicy status failed; retrying");
                    session.dirty.notify_one();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }
}

async fn write_status(
    session: &Session,
    api: &Api<SupportPolicy>,
    name: &str,
    status: &SupportPolicyStatus,
) -> Result<(), kube::Error> {
    let body = json!({"apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportPolicy", "status": status});
    let pp = PatchParams::apply(&session.cfg.field_manager).force();
    api.patch_status(name, &pp, &Patch::Apply(&body)).await?;
    Ok(())
}

fn publish_counts(session: &Session, merged: &Tally) {
    for (verdict, n) in [
        ("allowed", merged.counts.allowed),
        ("warned", merged.counts.warned),
        ("denied", merged.counts.denied),
    ] {
        session
            .shared
            .metrics
            .objects
            .get_or_create(&ObjectLabels { verdict })
            .set(i64::from(n));
    }
}

/// Per-policy tallies and the merged one, over the objects still in the caches. Forgets what it
/// remembered about objects that are gone.
fn tally(session: &Session) -> (HashMap<String, Tally>, Tally) {
    let live: HashSet<String> = match session.stores.lock() {
        Ok(stores) => stores
            .values()
            .flat_map(|(ar, store)| {
                store
                    .state()
                    .into_iter()
                    .map(move |o| crate::controller::reconcile::object_key(ar, &o))
            })
            .collect(),
        Err(_) => return (HashMap::new(), Tally::default()),
    };
    let mut per: HashMap<String, Tally> = HashMap::new();
    let mut merged = Tally::default();
    if let Ok(mut seen) = session.seen.lock() {
        seen.retain(|k, _| live.contains(k));
        if let Ok(mut last) = session.last.lock() {
            last.retain(|k, _| live.contains(k));
        }
        for s in seen.values() {
            merged.add(s.merged, &s.display);
            for (policy, verdict) in &s.per_policy {
                per.entry(policy.clone())
                    .or_default()
                    .add(*verdict, &s.display);
            }
        }
    }
    (per, merged)
}

/// The status of one policy over the objects it targets.
pub fn policy_status(
    source: &PolicySource,
    tally: &Tally,
    today: jiff::civil::Date,
    max_denied: usize,
    previous: Option<&SupportPolicyStatus>,
) -> SupportPolicyStatus {
    let sp = &source.object;
    let ready = |ok: bool, reason: &str, message: String| {
        ready_condition(sp, previous, ok, reason, message)
    };
    let policy = match &source.compiled {
        Ok(p) => p,
        Err(e) => {
            return SupportPolicyStatus {
                observed_generation: sp.metadata.generation,
                conditions: vec![ready(false, "InvalidSpec", e.clone())],
                ..SupportPolicyStatus::default()
            };
        }
    };
    let mut denied = tally.denied.clone();
    denied.sort();
    denied.truncate(max_denied);
    let supported = policy.supported(today);
    SupportPolicyStatus {
        observed_generation: sp.metadata.generation,
        latest: policy.latest(today).map(|r| r.minor.to_string()),
        supported: Some(
            supported
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        objects: Some(tally.counts.clone()),
        denied_objects: denied,
        conditions: vec![ready(
            true,
            "Valid",
            format!("{} ({})", policy.window_text(today), policy.product_name),
        )],
    }
}

/// The policy's `Ready` condition; its transition time moves only when the status flips.
fn ready_condition(
    sp: &SupportPolicy,
    previous: Option<&SupportPolicyStatus>,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: last,
        observed_generation: sp.metadata.generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn policy_status_counts_and_names_denials() {
        let sp: SupportPolicy =
            serde_norway::from_str(crate::engine::policy::DEFAULT_POLICY_YAML).unwrap();
        let mut t = Tally::default();
        t.add(Verdict::Allowed, "ns/a (KonvoyCluster)");
        t.add(Verdict::Warned, "ns/b (KonvoyCluster)");
        t.add(Verdict::Denied, "ns/d (KonvoyCluster)");
        t.add(Verdict::Denied, "ns/c (KonvoyCluster)");
        let today = date(2026, 11, 24);
        let source = PolicySource::compile(Arc::new(sp.clone()));
        let st = policy_status(&source, &t, today, 1, None);
        assert_eq!(st.latest.as_deref(), Some("1.8"));
        assert_eq!(st.supported.as_deref(), Some("1.8, 1.7, 1.6"));
        assert_eq!(
            st.objects,
            Some(ObjectCounts {
                allowed: 1,
                warned: 1,
                denied: 2
            })
        );
        assert_eq!(
            st.denied_objects,
            vec!["ns/c (KonvoyCluster)"],
            "sorted, capped at max_denied"
        );
        assert_eq!(st.conditions[0].status, "True");
        let again = policy_status(&source, &t, today, 1, Some(&st));
        assert_eq!(
            again.conditions[0].last_transition_time,
            st.conditions[0].last_transition_time
        );

        let mut bad = sp.clone();
        bad.spec.product[0].kubernetes.min = "1.99.x".into();
        let st = policy_status(&PolicySource::compile(Arc::new(bad)), &t, today, 20, None);
        assert_eq!(
            (
                st.conditions[0].status.as_str(),
                st.conditions[0].reason.as_str()
            ),
            ("False", "InvalidSpec")
        );
        assert!(
            st.conditions[0].message.contains("min 1.99.x is above max"),
            "{}",
            st.conditions[0].message
        );
        assert_eq!(st.objects, None, "no counts from an invalid policy");
    }
}
