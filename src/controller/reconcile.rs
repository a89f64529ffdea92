//! The I/O side of a reconcile: gather the inputs of the plan (the object, the policies, the
//! last verdict), evaluate, and apply the planned effects. Deciding happens in `plan`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Event as KubeEvent;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::instrument;

use crate::api::object::engine_value;
use crate::base::clock::today_utc;
use crate::base::metrics::{ObjectSupportLabels, WriteLabels};
use crate::controller::cache::Cached;
use crate::controller::condition::CONDITION_TYPE;
use crate::controller::ledger::{Seen, Sink};
use crate::controller::metrics::{fleet_labels, object_support_labels};
use crate::controller::plan::{self, Effects, Note, Previous};
use crate::controller::report::{ReportRef, policies_name, report_body};
use crate::controller::session::{ControllerError, Session};
use crate::engine::policyset::PolicySet;
use crate::engine::targets::FieldMask;
use crate::engine::{Context, Evaluation, Verdict};

/// What every reconcile of one kind shares.
pub(crate) struct KindCtx {
    pub(super) session: Arc<Session>,
    pub(super) ar: ApiResource,
    pub(super) namespaced: bool,
    pub(super) sink: Sink,
}

/// `group/Kind/namespace/name`: how logs and errors name an object.
pub(crate) fn object_key(ar: &ApiResource, obj: &impl Resource) -> String {
    format!(
        "{}/{}/{}/{}",
        ar.group,
        ar.kind,
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// `group/Kind/namespace/name@uid`: how memory, the backoff and the status tallies know an
/// object. With the uid, an object deleted and created again under the same name is not taken
/// for its predecessor (whose remembered verdict would stop its own from being written).
pub(crate) fn memory_key(ar: &ApiResource, obj: &impl Resource) -> String {
    let mut key = object_key(ar, obj);
    key.push('@');
    key.push_str(obj.meta().uid.as_deref().unwrap_or_default());
    key
}

#[instrument(skip_all, fields(
    kind = %ctx.ar.kind,
    namespace = obj.namespace().as_deref(),
    // Not `name`: the JSON log format writes the span's own name under that key.
    object = %obj.name_any(),
    verdict = tracing::field::Empty,
))]
pub(super) async fn reconcile(
    obj: Arc<Cached>,
    ctx: Arc<KindCtx>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let s = &ctx.session;
    let obj = obj.object().map_err(|source| ControllerError::Cache {
        object: object_key(&ctx.ar, &*obj),
        source,
    })?;
    // Read before the policies: a verdict is never recorded as newer than what it was made under.
    let epoch = *s.shared.policy_changes.borrow();
    let policies = s.shared.policies.load_full();
    let per_object = s.cfg.object_metrics;
    let key = memory_key(&ctx.ar, &obj);
    let Some(verdicts) = evaluate(&policies, &obj, &ctx.ar, &s.shared.context(), per_object) else {
        // No policy targets it any more: the policies' counts must not either.
        forget(s, &key);
        return Ok(Action::await_change());
    };
    tracing::Span::current().record("verdict", verdicts.merged.verdict.as_str());
    let previous = previous(&ctx, &obj, &key).await?;
    let effects = plan::plan(&plan::Input {
        evaluation: &verdicts.merged,
        sink: &ctx.sink,
        previous: &previous,
        generation: obj.metadata.generation,
        always_report: policies
            .policies()
            .iter()
            .any(|p| p.always_write_policy_reports),
        policy: &policies_name(&policies),
        now: Time(Timestamp::now()),
    });
    apply(&ctx, &obj, &verdicts.merged, &effects).await?;
    s.retries.lock().succeeded(&key);
    tracing::debug!(
        changed = effects.changed(),
        events = effects.events.len(),
        "reconciled"
    );
    let next_exception_change = s.shared.exceptions.load().next_change(
        policies.policies().iter().map(|p| &**p),
        &verdicts.merged,
        today_utc(),
    );
    // Where the object carries its condition, that is what the next reconcile reads: memory is
    // only needed until the watch brings back the first one written.
    let needs_memory = !(ctx.sink == Sink::Conditions && previous.on_object.is_some());
    remember(&ctx, &obj, key, verdicts, &effects, epoch, needs_memory);
    s.shared
        .metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(requeue(&policies, next_exception_change))
}

/// An object's verdicts: merged over every policy (what it is told), and each policy's own
/// (what each policy's status counts).
struct Verdicts {
    merged: Evaluation,
    per_policy: Vec<(String, Verdict)>,
    /// Per policy and target index, which target fields resolved in the object.
    resolved: Vec<(String, usize, FieldMask)>,
    /// The opt-in per-object series (`--object-metrics`).
    support: Option<ObjectSupportLabels>,
}

/// The one call into the engine; `None` when no policy targets the object.
fn evaluate(
    policies: &PolicySet,
    obj: &DynamicObject,
    ar: &ApiResource,
    ectx: &Context,
    per_object: bool,
) -> Option<Verdicts> {
    let value = engine_value(obj.clone(), Some(ar));
    let assessment = policies.assess(&value, ectx)?;
    let per_policy = assessment
        .per_policy
        .iter()
        .map(|p| (p.policy.clone(), p.verdict))
        .collect();
    let resolved = assessment
        .per_policy
        .iter()
        .map(|p| (p.policy.clone(), p.target, p.resolved))
        .collect();
    let merged = assessment.evaluation;
    let support = per_object.then(|| object_support_labels(policies, ar, obj, &value, &merged));
    Some(Verdicts {
        merged,
        per_policy,
        resolved,
        support,
    })
}

/// Everything known about the last verdict. Reads the PolicyReport only when memory has nothing
/// (after a start or a failover); failing to read it fails the reconcile rather than announce a
/// verdict twice.
async fn previous(
    ctx: &KindCtx,
    obj: &DynamicObject,
    key: &str,
) -> Result<Previous, ControllerError> {
    let s = &ctx.session;
    let remembered = s.last.lock().get(key).cloned();
    let in_report = if Previous::needs_report(&ctx.sink, remembered.as_ref()) {
        ReportRef::for_object(&ctx.ar, obj, ctx.namespaced)
            .read_condition(s.client.clone())
            .await
            .map_err(|source| ControllerError::ReadReport {
                object: key.to_string(),
                source,
            })?
    } else {
        None
    };
    Ok(Previous {
        on_object: current_condition(obj),
        remembered,
        in_report,
    })
}

fn current_condition(obj: &DynamicObject) -> Option<Condition> {
    obj.data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

/// Writes the report, then the condition, then the events. The report goes first: if the
/// condition write then fails, the retry still sees the old condition and writes both again.
async fn apply(
    ctx: &KindCtx,
    obj: &DynamicObject,
    evaluation: &Evaluation,
    effects: &Effects,
) -> Result<(), ControllerError> {
    let s = &ctx.session;
    if let Some(entry) = &effects.report {
        let at = ReportRef::for_object(&ctx.ar, obj, ctx.namespaced);
        let body = report_body(
            &at,
            evaluation,
            &entry.policy,
            &entry.condition,
            Timestamp::now(),
        );
        at.write(s.client.clone(), &s.cfg.field_manager, &body)
            .await
            .map_err(|source| ControllerError::Report {
                object: object_key(&ctx.ar, obj),
                source,
            })?;
    }
    if let Some(condition) = &effects.patch {
        write_condition(ctx, obj, condition).await?;
    }
    for note in &effects.events {
        publish(ctx, obj, note).await;
    }
    Ok(())
}

async fn write_condition(
    ctx: &KindCtx,
    obj: &DynamicObject,
    condition: &Condition,
) -> Result<(), ControllerError> {
    let s = &ctx.session;
    let api: Api<DynamicObject> = match (ctx.namespaced, obj.namespace()) {
        (true, Some(ns)) => Api::namespaced_with(s.client.clone(), &ns, &ctx.ar),
        _ => Api::all_with(s.client.clone(), &ctx.ar),
    };
    let body = json!({
        "apiVersion": ctx.ar.api_version,
        "kind": ctx.ar.kind,
        "status": {"conditions": [condition]},
    });
    // Force: the Supported entry is ours even if an older manager once wrote it; server-side
    // apply keeps every other condition type with its own manager.
    let pp = PatchParams::apply(&s.cfg.field_manager).force();
    api.patch_status(&obj.name_any(), &pp, &Patch::Apply(&body))
        .await
        .map_err(|source| ControllerError::Status {
            object: object_key(&ctx.ar, obj),
            source,
        })?;
    s.shared.metrics.status_writes.inc();
    Ok(())
}

/// An event that cannot be published is logged and queued for a retry (`events`): it is the
/// only announcement of the transition, and the next reconcile sees the condition written.
async fn publish(ctx: &KindCtx, obj: &DynamicObject, note: &Note) {
    let ev = KubeEvent {
        type_: note.type_,
        reason: note.reason.to_string(),
        note: Some(note.note.clone()),
        action: "Evaluate".into(),
        secondary: None,
    };
    let reference = obj.object_ref(&ctx.ar);
    if let Err(e) = ctx.session.events.publish(&ev, &reference).await {
        tracing::warn!(error = %e, reason = note.reason, "publishing an event failed; retrying");
    }
}

/// Records the verdict for the next reconcile and for the policies' status.
fn remember(
    ctx: &KindCtx,
    obj: &DynamicObject,
    key: String,
    verdicts: Verdicts,
    effects: &Effects,
    epoch: u64,
    needs_memory: bool,
) {
    let s = &ctx.session;
    let display = match obj.namespace().filter(|_| ctx.namespaced) {
        Some(ns) => format!("{ns}/{} ({})", obj.name_any(), ctx.ar.kind),
        None => format!("{} ({})", obj.name_any(), ctx.ar.kind),
    };
    let verdict = verdicts.merged.verdict;
    let excepted_by: std::collections::BTreeSet<String> = verdicts
        .merged
        .violations
        .iter()
        .filter_map(|v| v.exception.clone())
        .collect();
    let seen = Seen {
        excepted_by: excepted_by.into_iter().collect(),
        display,
        merged: verdict,
        per_policy: verdicts.per_policy,
        resolved: verdicts.resolved,
        fleet: fleet_labels(&ctx.ar, obj, verdict, &effects.condition.reason),
        support: verdicts.support,
        epoch,
    };
    let seen_changed = {
        let mut m = s.seen.lock();
        let old = m.insert(key.clone(), seen.clone());
        if let Some(old) = &old {
            s.flips
                .lock()
                .record(old.epoch, &old.per_policy, epoch, &seen.per_policy);
        }
        old != Some(seen)
    };
    let mut last = s.last.lock();
    if needs_memory {
        last.insert(key, effects.condition.clone());
    } else {
        last.remove(&key);
    }
    drop(last);
    if effects.changed() || seen_changed {
        s.dirty.notify_one();
    }
}

/// Drops what was recorded about an object no policy targets any more.
fn forget(s: &Session, key: &str) {
    let removed = s.seen.lock().remove(key).is_some();
    s.last.lock().remove(key);
    s.retries.lock().succeeded(key);
    if removed {
        s.dirty.notify_one();
    }
}

/// Requeue for the next date on which any policy's support changes; otherwise only changes to
/// the object or the policies wake it.
fn requeue(policies: &PolicySet, next_exception_change: Option<jiff::civil::Date>) -> Action {
    let next = policies
        .policies()
        .iter()
        .filter_map(|p| p.next_transition(today_utc()))
        .chain(next_exception_change)
        .min();
    match next.and_then(until) {
        Some(wait) => Action::requeue(wait),
        None => Action::await_change(),
    }
}

/// Time until the start of `day` (UTC), plus a second of margin.
fn until(day: jiff::civil::Date) -> Option<Duration> {
    let at = day.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let secs = at.as_second() - crate::base::clock::now().as_second() + 1;
    (secs > 0).then(|| Duration::from_secs(secs as u64))
}

/// A failed reconcile (most often a status or report write the API server refused) is retried
/// after the object's own backoff: 5 s doubling to 5 min with jitter, reset by its next
/// success. A change to the object or the policies still reconciles it at once.
pub(super) fn error_policy(obj: Arc<Cached>, err: &ControllerError, ctx: Arc<KindCtx>) -> Action {
    let metrics = &ctx.session.shared.metrics;
    metrics.reconcile_errors.inc();
    let key = memory_key(&ctx.ar, &*obj);
    let (delay, failures) = {
        let mut r = ctx.session.retries.lock();
        let delay = r.failed(&key, tokio::time::Instant::now());
        (delay, r.failures(&key))
    };
    let kind = WriteLabels {
        kind: ctx.ar.kind.clone(),
    };
    metrics.status_write_retries.get_or_create(&kind).inc();
    tracing::warn!(
        object = %object_key(&ctx.ar, &*obj),
        error = %err,
        failures,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed; retrying after a backoff"
    );
    Action::requeue(delay)
}
