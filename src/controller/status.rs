//! Keeps every SupportPolicy's status current: its window, how many objects it allows, warns
//! about and denies, which objects it denies, and whether it is valid. Each pass tallies what the
//! reconciles recorded (`tally`, never a second evaluation), plans each policy's status
//! (`status_plan`), and writes what changed, announcing what a write newly shows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::events::Event as KubeEvent;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::time::Instant;
use tracing::Instrument;

use crate::api::{SupportExceptionStatus, SupportPolicy, SupportPolicyStatus};
use crate::base::clock::today_utc;
use crate::base::state::PolicySource;
use crate::controller::exception_status;
use crate::controller::metrics::{exception_expiries, policy_view, publish_fleet};
use crate::controller::reconcile::memory_key;
use crate::controller::retry::{Backoff, Writes, earliest, uid_key};
use crate::controller::session::Session;
use crate::controller::status_plan::{Pass, PolicyNote, announcements, flips_note};
use crate::controller::summary;
use crate::controller::tally::{self, Tally};

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
        exception_status::wait(&session, retry_at).await;
        // At most one pass a second: a policy change re-evaluates every object, and the counts
        // are read from what the reconciles recorded, never recomputed here.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tallies = tally(&session);
        let flips = converged_flips(&session);
        exception_status::write_all(&session, &mut exceptions).await;
        let sources = session.shared.policy_sources.load_full();
        policies.keep_only(
            &sources
                .iter()
                .map(|s| uid_key(&s.object.metadata))
                .collect(),
        );
        let statuses = plan_statuses(&session, &sources, &tallies, &policies);
        publish_policy_gauges(&session, &sources, &statuses);
        summarise_flips(&session, &sources, flips).await;
        for (source, status) in sources.iter().zip(statuses) {
            write_one(&session, &api, source, status, &mut policies).await;
        }
    }
}

/// Per-policy tallies over the objects still in the caches, and the fleet gauges from the same
/// records. Forgets what it remembered about objects that are gone.
fn tally(session: &Session) -> HashMap<String, Tally> {
    let live: HashSet<String> = session
        .stores
        .lock()
        .values()
        .flat_map(|(ar, store)| store.state().into_iter().map(move |o| memory_key(ar, &*o)))
        .collect();
    let mut seen = session.seen.lock();
    seen.retain(|k, _| live.contains(k));
    session.last.lock().retain(|k, _| live.contains(k));
    session.retries.lock().retain(|k| live.contains(k));
    let per_object = session.cfg.object_metrics;
    publish_fleet(&session.shared.metrics, seen.values(), per_object);
    tally::per_policy(seen.values())
}

/// The flips to summarise, once every object carries a verdict from the current epoch.
fn converged_flips(session: &Session) -> BTreeMap<String, summary::Flips> {
    let current = *session.shared.policy_changes.borrow();
    let seen = session.seen.lock();
    let mut flips = session.flips.lock();
    flips.take_if_converged(seen.values().map(|s| s.epoch), current)
}

/// Every policy's status, from the tallies and what was last written for it.
fn plan_statuses(
    session: &Session,
    sources: &[PolicySource],
    tallies: &HashMap<String, Tally>,
    written: &Writes<SupportPolicyStatus>,
) -> Vec<SupportPolicyStatus> {
    let forbidden = session.forbidden.lock().clone();
    let pass = Pass {
        tallies,
        forbidden: &forbidden,
        today: today_utc(),
        max_denied: session.cfg.max_denied_listed,
    };
    sources
        .iter()
        .map(|source| pass.status(source, written.previous(&uid_key(&source.object.metadata))))
        .collect()
}

/// The policies' gauges follow the computed status at once, not the writes.
fn publish_policy_gauges(
    session: &Session,
    sources: &[PolicySource],
    statuses: &[SupportPolicyStatus],
) {
    let today = today_utc();
    let expiring = exception_expiries(
        session.seen.lock().values(),
        &session.shared.exceptions.load(),
        today,
    );
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
        publish_on_policy(session, &source.object, flips_note(&f, epoch)).await;
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
            let stored = source.object.status.as_ref();
            for note in announcements(before, stored, &status) {
                publish_on_policy(session, &source.object, note).await;
            }
            written.wrote(&uid, status);
        }
        Err(e) => {
            let delay = written.failed(&uid, Instant::now());
            session.count_retry("SupportPolicy");
            tracing::warn!(policy = %name, error = %e, failures = written.failures(&uid), retry_in_ms = delay.as_millis() as u64, "writing SupportPolicy status failed; retrying after a backoff");
        }
    }
}

/// Publishes an event on a SupportPolicy; one the API server refuses is queued for a retry.
async fn publish_on_policy(session: &Session, sp: &SupportPolicy, note: PolicyNote) {
    let ev = KubeEvent {
        type_: note.type_,
        reason: note.reason,
        note: Some(note.note),
        action: note.action.into(),
        secondary: None,
    };
    if let Err(e) = session.events.publish(&ev, &sp.object_ref(&())).await {
        tracing::warn!(error = %e, reason = ev.reason.as_str(), "publishing an event on a SupportPolicy failed; retrying");
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
