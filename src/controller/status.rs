//! Every SupportPolicy's status: its window, how many objects it allows, warns about and denies,
//! which objects it denies, and whether it is valid. Counts come from what the reconciles
//! recorded, never from a second evaluation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::Instrument;

use crate::api::{ObjectCounts, SupportExceptionStatus, SupportPolicy, SupportPolicyStatus};
use crate::base::clock::today_utc;
use crate::base::metrics::{FleetLabels, ObjectSupportLabels, WriteLabels};
use crate::base::state::PolicySource;
use crate::controller::Session;
use crate::controller::condition::status_condition;
use crate::controller::discovery::KindKey;
use crate::controller::metrics::{exception_expiries, policy_view, publish_fleet};
use crate::controller::retry::{Backoff, Writes, earliest, uid_key};
use crate::controller::summary;
use crate::engine::Verdict;
use crate::engine::coverage::{TargetCoverage, unresolved_fields};
use crate::engine::policy::Policy;
use crate::engine::targets::FieldMask;
use crate::engine::vendor;

/// What the status of the policies needs to know about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// `namespace/name (Kind)`
    pub display: String,
    pub merged: Verdict,
    pub per_policy: Vec<(String, Verdict)>,
    /// Per policy and target index, which target fields resolved in the object.
    pub resolved: Vec<(String, usize, FieldMask)>,
    /// The object's series in `supportgate_objects` (kind, namespace, verdict, reason).
    pub fleet: FleetLabels,
    /// Its `supportgate_object_support` series, when those are enabled.
    pub support: Option<ObjectSupportLabels>,
    /// The SupportExceptions (`namespace/name`) that cover it.
    pub excepted_by: Vec<String>,
    /// The `Shared::policy_changes` epoch of the policies and exceptions it was evaluated under.
    pub epoch: u64,
}

/// A policy's objects by verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub counts: ObjectCounts,
    /// `namespace/name (Kind)` of every denied object.
    pub denied: Vec<String>,
    /// Per target index: in how many objects each target field resolved.
    pub coverage: BTreeMap<usize, TargetCoverage>,
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

/// Keeps every SupportPolicy's status (window, counts, denied objects, Ready) current, and the
/// trusted SupportExceptions' (`exception_status`). What was written is remembered per uid, so
/// that a policy deleted and created again gets its status; a write that fails is retried after
/// its own backoff (`retry`), not at every pass.
pub(crate) async fn policy_status_loop(session: Arc<Session>) {
    let mut policies: Writes<SupportPolicyStatus> = Writes::new(Backoff::WRITES);
    let mut exceptions: Writes<SupportExceptionStatus> = Writes::new(Backoff::WRITES);
    let api: Api<SupportPolicy> = Api::all(session.client.clone());
    loop {
        let retry_at = earliest(policies.next_retry(), exceptions.next_retry());
        crate::controller::exception_status::wait(&session, retry_at).await;
        // At most one pass a second: a policy change re-evaluates every object, and the counts
        // are read from what the reconciles recorded, never recomputed here.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tallies = tally(&session);
        let flips = converged_flips(&session);
        crate::controller::exception_status::write_all(&session, &mut exceptions).await;
        let sources = session.shared.policy_sources.load_full();
        policies.keep_only(
            &sources
                .iter()
                .map(|s| uid_key(&s.object.metadata))
                .collect(),
        );
        let statuses = compute_statuses(&session, &sources, &tallies, &policies);
        publish_policy_gauges(&session, &sources, &statuses);
        summarise_flips(&session, &sources, flips).await;
        for (source, status) in sources.iter().zip(statuses) {
            write_one(&session, &api, source, status, &mut policies).await;
        }
    }
}

/// Every policy's status, from the tallies and what was last written for it.
fn compute_statuses(
    session: &Session,
    sources: &[PolicySource],
    tallies: &HashMap<String, Tally>,
    written: &Writes<SupportPolicyStatus>,
) -> Vec<SupportPolicyStatus> {
    let today = today_utc();
    let forbidden = session
        .forbidden
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    let empty = Tally::default();
    sources
        .iter()
        .map(|source| {
            let t = tallies.get(&source.object.name_any()).unwrap_or(&empty);
            let max = session.cfg.max_denied_listed;
            let previous = written.previous(&uid_key(&source.object.metadata));
            let mut status = policy_status(source, t, today, max, previous);
            if let Ok(policy) = &source.compiled {
                let watched = kinds_watched(&source.object, policy, &forbidden, previous);
                status.conditions.push(watched);
                let fields = fields_resolved(&source.object, policy, &t.coverage, previous);
                status.conditions.push(fields);
            }
            status
        })
        .collect()
}

/// The policies' gauges follow the computed status at once, not the writes.
fn publish_policy_gauges(
    session: &Session,
    sources: &[PolicySource],
    statuses: &[SupportPolicyStatus],
) {
    let today = today_utc();
    let expiring = session
        .seen
        .lock()
        .map(|seen| exception_expiries(seen.values(), &session.shared.exceptions.load(), today))
        .unwrap_or_default();
    let views = sources
        .iter()
        .zip(statuses)
        .map(|(source, st)| {
            let expiry = expiring.get(&source.object.name_any()).copied();
            policy_view(source, st, today, expiry)
        })
        .collect();
    session.shared.metrics.observed.set_policies(views);
}

/// One `VerdictsChanged` event per policy whose objects flipped (queued for a retry when the
/// API server refuses it, like every event).
async fn summarise_flips(
    session: &Session,
    sources: &[PolicySource],
    flips: BTreeMap<String, summary::Flips>,
) {
    let epoch = *session.shared.policy_changes.borrow();
    for (policy, f) in flips {
        let Some(source) = sources.iter().find(|s| s.object.name_any() == policy) else {
            continue;
        };
        let type_ = if f.denied > 0 {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let note = f.note(epoch);
        publish_on_policy(
            session,
            &source.object,
            type_,
            summary::REASON,
            "Evaluate",
            note,
        )
        .await;
    }
}

/// Writes one policy's status unless this very object (uid) already shows it or its backoff
/// is running; announces what the write newly shows.
async fn write_one(
    session: &Session,
    api: &Api<SupportPolicy>,
    source: &PolicySource,
    status: SupportPolicyStatus,
    written: &mut Writes<SupportPolicyStatus>,
) {
    let uid = uid_key(&source.object.metadata);
    if !written.wants(&uid, &status, Instant::now()) {
        return;
    }
    let name = source.object.name_any();
    let span = tracing::info_span!("policy_status", policy = %name);
    match write_status(session, api, &name, &status)
        .instrument(span)
        .await
    {
        Ok(()) => {
            let before = written.previous(&uid).or(source.object.status.as_ref());
            if let Some(note) = newly_unresolved(before, &status) {
                policy_event(session, &source.object, UNRESOLVED, note).await;
            }
            if let Some((reason, note)) = newly_not_ready(before, &status) {
                let (warning, action) = (EventType::Warning, "Compile");
                publish_on_policy(session, &source.object, warning, &reason, action, note).await;
            }
            let stored = source.object.status.as_ref();
            if let Some(note) = vendor::event_note(stored, &status) {
                policy_event(session, &source.object, vendor::REASON_NEWER, note).await;
            }
            written.wrote(&uid, status);
        }
        Err(e) => {
            let delay = written.failed(&uid, Instant::now());
            count_retry(session, "SupportPolicy");
            tracing::warn!(policy = %name, error = %e, failures = written.failures(&uid), retry_in_ms = delay.as_millis() as u64, "writing SupportPolicy status failed; retrying after a backoff");
        }
    }
}

/// Counts a failed write that will be retried.
pub(crate) fn count_retry(session: &Session, kind: &str) {
    let labels = WriteLabels { kind: kind.into() };
    session
        .shared
        .metrics
        .status_write_retries
        .get_or_create(&labels)
        .inc();
}

/// An event on a SupportPolicy (cluster-scoped: recorded in the `default` namespace).
async fn policy_event(session: &Session, sp: &SupportPolicy, reason: &str, note: String) {
    let action = "CompareWithEmbeddedDefault";
    publish_on_policy(session, sp, EventType::Normal, reason, action, note).await;
}

async fn publish_on_policy(
    session: &Session,
    sp: &SupportPolicy,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = session.events.publish(&ev, &sp.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "publishing an event on a SupportPolicy failed; retrying");
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

/// The flips to summarise, once every object carries a verdict from the current epoch.
fn converged_flips(session: &Session) -> BTreeMap<String, summary::Flips> {
    let current = *session.shared.policy_changes.borrow();
    let (Ok(seen), Ok(mut flips)) = (session.seen.lock(), session.flips.lock()) else {
        return Default::default();
    };
    flips.take_if_converged(seen.values().map(|s| s.epoch), current)
}

/// Per-policy tallies over the objects still in the caches, and the fleet gauges from the same
/// records. Forgets what it remembered about objects that are gone.
fn tally(session: &Session) -> HashMap<String, Tally> {
    let live: HashSet<String> = match session.stores.lock() {
        Ok(stores) => stores
            .values()
            .flat_map(|(ar, store)| {
                store
                    .state()
                    .into_iter()
                    .map(move |o| crate::controller::reconcile::memory_key(ar, &*o))
            })
            .collect(),
        Err(_) => return HashMap::new(),
    };
    let mut per: HashMap<String, Tally> = HashMap::new();
    if let Ok(mut seen) = session.seen.lock() {
        seen.retain(|k, _| live.contains(k));
        if let Ok(mut last) = session.last.lock() {
            last.retain(|k, _| live.contains(k));
        }
        if let Ok(mut retries) = session.retries.lock() {
            retries.retain(|k| live.contains(k));
        }
        let per_object = session.cfg.object_metrics;
        publish_fleet(&session.shared.metrics, seen.values(), per_object);
        for s in seen.values() {
            for (policy, verdict) in &s.per_policy {
                per.entry(policy.clone())
                    .or_default()
                    .add(*verdict, &s.display);
            }
            for (policy, target, mask) in &s.resolved {
                per.entry(policy.clone())
                    .or_default()
                    .coverage
                    .entry(*target)
                    .or_default()
                    .record(*mask);
            }
        }
    }
    per
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
                conditions: vec![ready(
                    false,
                    "InvalidSpec",
                    format!("{e}{}", source.in_force_note()),
                )],
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
        conditions: vec![if source.unresolved.is_empty() {
            ready(
                true,
                "Valid",
                format!("{} ({})", policy.window_text(today), policy.product_name),
            )
        } else {
            ready(
                false,
                "TargetsUnresolved",
                format!("{}{}", source.unresolved.join("; "), source.in_force_note()),
            )
        }]
        .into_iter()
        .chain(vendor::condition_for(sp, previous, Time(Timestamp::now())))
        .collect(),
    }
}

/// The `KindsWatched` condition: False, naming the kinds, while the API server refuses this
/// account the list or watch of a kind the policy targets (403).
pub fn kinds_watched(
    sp: &SupportPolicy,
    policy: &Policy,
    forbidden: &BTreeMap<KindKey, String>,
    previous: Option<&SupportPolicyStatus>,
) -> Condition {
    let refused: Vec<String> = forbidden
        .iter()
        .filter(|((group, _, kind), _)| {
            policy
                .targets()
                .iter()
                .any(|t| &t.spec.api_group == group && &t.spec.kind == kind)
        })
        .map(|((group, version, kind), why)| format!("{kind}.{group}/{version}: {why}"))
        .collect();
    let (ok, reason, message) = if refused.is_empty() {
        (
            true,
            "Watching",
            "every targeted kind that is installed is watched".to_string(),
        )
    } else {
        let message = format!(
            "not allowed to watch {} (403); grant get, list, watch (and get, patch on their status) with a ClusterRole labelled supportgate.dev/aggregate-to-supportgate: \"true\"",
            refused.join("; ")
        );
        (false, "Forbidden", message)
    };
    condition(sp, previous, "KindsWatched", ok, reason, message)
}

/// The condition type raised when a target field selects nothing in any watched object.
pub const UNRESOLVED: &str = "TargetFieldUnresolved";

/// `TargetFieldUnresolved`: True, naming the fields, when a target field resolved in none of at
/// least one watched object of its kind (a path with a typo checks nothing, silently). A field
/// that resolved in only some objects raises nothing.
pub fn fields_resolved(
    sp: &SupportPolicy,
    policy: &Policy,
    coverage: &BTreeMap<usize, TargetCoverage>,
    previous: Option<&SupportPolicyStatus>,
) -> Condition {
    let unresolved = unresolved_fields(policy, coverage);
    let (raised, reason, message) = if unresolved.is_empty() {
        (
            false,
            "AllFieldsResolved",
            "every target field resolves in at least one watched object".to_string(),
        )
    } else {
        let list: Vec<String> = unresolved
            .iter()
            .map(|u| format!("{}: {}", u.target, u.message))
            .collect();
        (true, "FieldMatchesNothing", list.join("; "))
    };
    condition(sp, previous, UNRESOLVED, raised, reason, message)
}

/// The event (reason, note) when `Ready` turns False, or its reason changes while False: a
/// policy that stops compiling or resolving is announced once, not on every pass.
fn newly_not_ready(
    before: Option<&SupportPolicyStatus>,
    now: &SupportPolicyStatus,
) -> Option<(String, String)> {
    let ready = |st: &SupportPolicyStatus| {
        st.conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let (status, reason, message) = ready(now)?;
    if status != "False" {
        return None;
    }
    let was = before.and_then(ready);
    if was
        .as_ref()
        .is_some_and(|(s, r, _)| s == "False" && r == &reason)
    {
        return None;
    }
    Some((reason, message))
}

/// The event note when `TargetFieldUnresolved` turns True (or its message changes while True).
fn newly_unresolved(
    before: Option<&SupportPolicyStatus>,
    now: &SupportPolicyStatus,
) -> Option<String> {
    let find = |s: &SupportPolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == UNRESOLVED && c.status == "True")
            .map(|c| c.message.clone())
    };
    let now = find(now)?;
    (before.and_then(find).as_deref() != Some(now.as_str())).then_some(now)
}

/// The policy's `Ready` condition; its transition time moves only when the status flips.
fn ready_condition(
    sp: &SupportPolicy,
    previous: Option<&SupportPolicyStatus>,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    condition(sp, previous, "Ready", ok, reason, message)
}

fn condition(
    sp: &SupportPolicy,
    previous: Option<&SupportPolicyStatus>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    let previous = previous.map_or(&[][..], |p| &p.conditions[..]);
    status_condition(previous, sp.metadata.generation, type_, ok, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    /// Issue #18, reproduction 2: a path with a typo resolves in no watched object; the policy
    /// says so in `TargetFieldUnresolved` (and an event), and clears it once the path resolves.
    #[test]
    fn a_target_field_that_resolves_nowhere_raises_target_field_unresolved() {
        use crate::engine::targets::FieldKind;
        let yaml = format!(
            "{}  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields:\n      productVersion: $.spec.provisioner.verison\n      kubernetesVersion: $.spec.cluster.kubernetes.version\n",
            crate::engine::policy::DEFAULT_POLICY_YAML
        );
        let sp: SupportPolicy = serde_norway::from_str(&yaml).unwrap();
        let policy = Policy::compile(&sp).unwrap();
        let mut coverage = BTreeMap::new();
        let mut only_kubernetes = FieldMask::default();
        only_kubernetes.insert(FieldKind::KubernetesVersion);
        coverage
            .entry(0)
            .or_insert_with(TargetCoverage::default)
            .record(only_kubernetes);
        let c = fields_resolved(&sp, &policy, &coverage, None);
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (UNRESOLVED, "True", "FieldMatchesNothing")
        );
        assert!(
            c.message
                .contains("productVersion `$.spec.provisioner.verison`"),
            "{}",
            c.message
        );
        let raised = SupportPolicyStatus {
            conditions: vec![c],
            ..SupportPolicyStatus::default()
        };
        assert!(newly_unresolved(None, &raised).is_some(), "announced once");
        assert_eq!(newly_unresolved(Some(&raised), &raised), None, "not twice");

        // Once the field resolves in one object, the condition clears.
        let mut both = only_kubernetes;
        both.insert(FieldKind::ProductVersion);
        coverage.get_mut(&0).unwrap().record(both);
        let c = fields_resolved(&sp, &policy, &coverage, Some(&raised));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "AllFieldsResolved")
        );
    }

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

    #[test]
    fn a_forbidden_kind_shows_in_the_policies_that_target_it() {
        let sp: SupportPolicy =
            serde_norway::from_str(crate::engine::policy::DEFAULT_POLICY_YAML).unwrap();
        let policy = Policy::compile(&sp).unwrap();
        let mut forbidden = BTreeMap::new();
        let ok = kinds_watched(&sp, &policy, &forbidden, None);
        assert_eq!(
            (ok.status.as_str(), ok.reason.as_str()),
            ("True", "Watching")
        );
        forbidden.insert(
            ("example.dev".into(), "v1".into(), "Widget".into()),
            "widgets is forbidden".into(),
        );
        let other = kinds_watched(&sp, &policy, &forbidden, None);
        assert_eq!(other.status, "True", "a kind this policy does not target");
        forbidden.insert(
            (
                "kommander.mesosphere.io".into(),
                "v1beta1".into(),
                "KonvoyCluster".into(),
            ),
            "konvoyclusters is forbidden".into(),
        );
        let refused = kinds_watched(&sp, &policy, &forbidden, None);
        assert_eq!(
            (refused.status.as_str(), refused.reason.as_str()),
            ("False", "Forbidden")
        );
        assert!(
            refused.message.contains(
                "KonvoyCluster.kommander.mesosphere.io/v1beta1: konvoyclusters is forbidden"
            ) && !refused.message.contains("Widget")
                && refused
                    .message
                    .contains("supportgate.dev/aggregate-to-supportgate"),
            "{}",
            refused.message
        );
    }
}
