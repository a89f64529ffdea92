//! The controller: every targeted object carries a `Supported` condition (or, where its CRD
//! cannot hold one, a PolicyReport entry), kept true as policies, objects and dates change.
//!
//! It runs on the leader only. It discovers which targeted kinds exist from their CRDs (kinds
//! that appear later are picked up), runs one kube-runtime `Controller` per kind, re-evaluates
//! everything when a policy changes, and requeues each object for its next date-driven
//! transition instead of polling.

pub mod condition;
pub mod leader;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Config as ControllerRuntimeConfig, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::api::object::engine_value;
use crate::api::{ObjectCounts, SupportPolicy, SupportPolicyStatus};
use crate::controller::condition::{
    CONDITION_TYPE, Transition, differs, supported_condition, transition,
};
use crate::engine::policy::Policy;
use crate::engine::rules::Severity;
use crate::engine::vendor;
use crate::engine::{Context, Evaluation, Verdict, evaluate_target};
use crate::runtime::metrics::ObjectLabels;
use crate::runtime::state::Shared;

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub field_manager: String,
    pub concurrency: u16,
    /// How many denied objects a SupportPolicy's status names.
    pub max_denied_listed: usize,
    pub reporter: String,
    pub instance: String,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            field_manager: "supportgate".into(),
            concurrency: 16,
            max_denied_listed: 20,
            reporter: "supportgate".into(),
            instance: "supportgate".into(),
        }
    }
}

#[derive(Debug, Error)]
pub enum ControllerError {
    #[error("writing status of {object}: {source}")]
    Status { object: String, source: kube::Error },
    #[error("writing the PolicyReport for {object}: {source}")]
    Report { object: String, source: kube::Error },
}

/// Where a kind's verdicts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// `status.conditions` is a list-map keyed by `type` on a status subresource: server-side
    /// apply of our one entry leaves other owners' conditions alone.
    Conditions,
    /// The schema would prune or clobber a condition; why, for the event.
    PolicyReport(String),
}

/// Decides from a CRD version's schema whether a `Supported` condition can be written safely.
pub fn sink_for(crd: &CustomResourceDefinition, version: &str) -> Sink {
    let Some(v) = crd.spec.versions.iter().find(|v| v.name == version) else {
        return Sink::PolicyReport(format!("version {version} is not served"));
    };
    if v.subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_none()
    {
        return Sink::PolicyReport("the CRD has no status subresource".into());
    }
    let schema = v
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    let status = schema.and_then(|s| prop(s, "status"));
    let conditions = status.and_then(|s| prop(s, "conditions"));
    match conditions {
        None => Sink::PolicyReport("the CRD's status schema has no `conditions`, so a condition would be pruned".into()),
        Some(c) if c.x_kubernetes_list_type.as_deref() == Some("map")
            && c.x_kubernetes_list_map_keys.as_deref() == Some(&["type".to_string()][..]) =>
        {
            Sink::Conditions
        }
        Some(_) => Sink::PolicyReport(
            "status.conditions is not a list-map keyed by `type`, so writing one condition would replace the others".into(),
        ),
    }
}

fn prop<'a>(s: &'a JSONSchemaProps, name: &str) -> Option<&'a JSONSchemaProps> {
    s.properties.as_ref().and_then(|p| p.get(name))
}

type KindKey = (String, String, String);

/// What the status of the policies needs to know about one object.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    display: String,
    merged: Verdict,
    per_policy: Vec<(String, Verdict)>,
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

/// Shared between the per-kind controllers and the policy-status task.
struct Session {
    client: Client,
    shared: Arc<Shared>,
    cfg: ControllerConfig,
    recorder: Recorder,
    stores: Mutex<BTreeMap<KindKey, (ApiResource, Store<DynamicObject>)>>,
    /// The last condition per object, for kinds without conditions and to spot transitions.
    last: Mutex<HashMap<String, Condition>>,
    /// Each object's latest verdicts, merged and per policy, for the policies' status counts.
    seen: Mutex<HashMap<String, Seen>>,
    dirty: Notify,
}

struct KindCtx {
    session: Arc<Session>,
    ar: ApiResource,
    namespaced: bool,
    sink: Sink,
}

/// Runs the controller while `leading` is true; stops everything it started when it turns false.
pub async fn run(
    client: Client,
    shared: Arc<Shared>,
    mut leading: watch::Receiver<bool>,
    cfg: ControllerConfig,
) {
    loop {
        while !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                return;
            }
        }
        tracing::info!("controller starting (leader)");
        let session = tokio::spawn(run_session(client.clone(), shared.clone(), cfg.clone()));
        while *leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                session.abort();
                return;
            }
        }
        tracing::info!("controller stopping (no longer the leader)");
        session.abort();
        let _ = session.await;
    }
}

async fn run_session(client: Client, shared: Arc<Shared>, cfg: ControllerConfig) {
    let reporter = Reporter {
        controller: cfg.reporter.clone(),
        instance: Some(cfg.instance.clone()),
    };
    let session = Arc::new(Session {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        shared: shared.clone(),
        cfg,
        stores: Mutex::new(BTreeMap::new()),
        last: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashMap::new()),
        dirty: Notify::new(),
    });

    let (sp_reader, sp_writer) = reflector::store::<SupportPolicy>();
    let sp_stream = reflector::reflector(
        sp_writer,
        watcher::watcher(
            Api::<SupportPolicy>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|_| {
        session.dirty.notify_one();
        futures::future::ready(())
    });
    let status_task = tokio::spawn(policy_status_loop(session.clone(), sp_reader));

    let mut kinds: HashMap<KindKey, (Sink, JoinHandle<()>)> = HashMap::new();
    let (crd_reader, crd_writer) = reflector::store::<CustomResourceDefinition>();
    let crd_events = reflector::reflector(
        crd_writer,
        watcher::watcher(
            Api::<CustomResourceDefinition>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff();
    futures::pin_mut!(crd_events);
    let mut policy_changes = shared.policy_changes.subscribe();
    tokio::pin!(sp_stream);
    let mut synced = false;
    loop {
        tokio::select! {
            ev = crd_events.next() => match ev {
                Some(Ok(Event::InitDone)) => { synced = true; reconcile_kinds(&session, &crd_reader, &mut kinds); }
                Some(Ok(Event::Apply(_) | Event::Delete(_))) if synced => reconcile_kinds(&session, &crd_reader, &mut kinds),
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watching CustomResourceDefinitions"),
                None => break,
            },
            changed = policy_changes.changed() => {
                if changed.is_err() { break; }
                if synced { reconcile_kinds(&session, &crd_reader, &mut kinds); }
                session.dirty.notify_one();
            }
            _ = &mut sp_stream => break,
        }
    }
    for (_, (_, h)) in kinds {
        h.abort();
    }
    status_task.abort();
}

/// Starts a controller for every targeted kind whose CRD exists, stops those that went away.
fn reconcile_kinds(
    session: &Arc<Session>,
    crds: &Store<CustomResourceDefinition>,
    running: &mut HashMap<KindKey, (Sink, JoinHandle<()>)>,
) {
    let policies = session.shared.policies.load_full();
    let mut wanted: HashMap<KindKey, (ApiResource, bool, Sink)> = HashMap::new();
    for t in policies.targets() {
        let Some(crd) = crds
            .state()
            .into_iter()
            .find(|c| c.spec.group == t.spec.api_group && c.spec.names.kind == t.spec.kind)
        else {
            continue;
        };
        let served: Vec<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.as_str())
            .collect();
        let version = if t.spec.versions.is_empty() {
            crd.spec
                .versions
                .iter()
                .find(|v| v.storage)
                .map(|v| v.name.clone())
        } else {
            t.spec
                .versions
                .iter()
                .find(|v| served.contains(&v.as_str()))
                .cloned()
        };
        let Some(version) = version else { continue };
        let gvk = GroupVersionKind::gvk(&t.spec.api_group, &version, &t.spec.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
        let namespaced = crd.spec.scope == "Namespaced";
        let sink = sink_for(&crd, &version);
        wanted.insert(
            (t.spec.api_group.clone(), version, t.spec.kind.clone()),
            (ar, namespaced, sink),
        );
    }
    running.retain(|key, (sink, handle)| {
        let keep = wanted.get(key).is_some_and(|(_, _, s)| s == sink);
        if !keep {
            tracing::info!(kind = %key.2, group = %key.0, "stopping the controller for a kind that is gone or changed");
            handle.abort();
            if let Ok(mut stores) = session.stores.lock() {
                stores.remove(key);
            }
        }
        keep
    });
    for (key, (ar, namespaced, sink)) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        tracing::info!(kind = %key.2, group = %key.0, version = %key.1, sink = ?sink, "watching a targeted kind");
        let handle = tokio::spawn(run_kind(
            session.clone(),
            key.clone(),
            ar,
            namespaced,
            sink.clone(),
        ));
        running.insert(key, (sink, handle));
    }
}

async fn run_kind(
    session: Arc<Session>,
    key: KindKey,
    ar: ApiResource,
    namespaced: bool,
    sink: Sink,
) {
    let api = Api::<DynamicObject>::all_with(session.client.clone(), &ar);
    // managedFields are most of an object that server-side apply has touched, and the engine
    // never reads them: drop them before they reach the cache.
    let writer = reflector::store::Writer::new(ar.clone());
    let reader = writer.as_reader();
    let objects = watcher::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|o: &mut DynamicObject| o.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    let controller = Controller::for_stream_with(objects, reader, ar.clone())
        .with_config(ControllerRuntimeConfig::default().concurrency(session.cfg.concurrency));
    if let Ok(mut stores) = session.stores.lock() {
        stores.insert(key, (ar.clone(), controller.store()));
    }
    let changes = futures::stream::unfold(
        session.shared.policy_changes.subscribe(),
        |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        },
    );
    let ctx = Arc::new(KindCtx {
        session: session.clone(),
        ar,
        namespaced,
        sink,
    });
    controller
        .reconcile_all_on(changes)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

use crate::runtime::clock::today_utc as today;

fn current_condition(obj: &DynamicObject) -> Option<Condition> {
    obj.data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

fn object_key(ar: &ApiResource, obj: &DynamicObject) -> String {
    format!(
        "{}/{}/{}/{}",
        ar.group,
        ar.kind,
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<KindCtx>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let s = &ctx.session;
    let key = object_key(&ctx.ar, &obj);
    let span = tracing::info_span!("reconcile", object = %key, verdict = tracing::field::Empty);
    let _enter = span.enter();
    let policies = s.shared.policies.load_full();
    let ectx = Context::new(today()).with_hosting_kubernetes(s.shared.hosting_kubernetes.clone());
    let value = engine_value((*obj).clone(), Some(&ctx.ar));
    let Some(evaluation) = policies.evaluate(&value, &ectx) else {
        return Ok(Action::await_change());
    };
    span.record("verdict", evaluation.verdict.as_str());

    let remembered = s.last.lock().ok().and_then(|l| l.get(&key).cloned());
    let previous = match ctx.sink {
        Sink::Conditions => current_condition(&obj).or(remembered),
        Sink::PolicyReport(_) => remembered,
    };
    let condition = supported_condition(
        &evaluation,
        obj.metadata.generation,
        previous.as_ref(),
        Time(Timestamp::now()),
    );
    let changed = differs(previous.as_ref(), &condition);
    let always_reports = policies
        .policies()
        .iter()
        .any(|p| p.always_write_policy_reports);

    if changed {
        match &ctx.sink {
            Sink::Conditions => write_condition(&ctx, &obj, &condition).await?,
            Sink::PolicyReport(_) => {}
        }
    }
    if changed && (always_reports || matches!(ctx.sink, Sink::PolicyReport(_))) {
        write_report(&ctx, &obj, &evaluation, &policies_names(&policies)).await?;
        if let Sink::PolicyReport(why) = &ctx.sink
            && previous.is_none()
        {
            publish(
                s,
                &ctx,
                &obj,
                EventType::Normal,
                "VerdictInPolicyReport",
                format!(
                    "supportgate records this object's support verdict in a PolicyReport: {why}"
                ),
            )
            .await;
        }
    }
    if let Some(t) = transition(previous.as_ref(), &condition) {
        let note = match t {
            Transition::SupportLost => format!("no longer supported: {}", condition.message),
            Transition::SupportRestored => {
                "supported again by the version support policy".to_string()
            }
            Transition::SupportEndingSoon => condition.message.clone(),
        };
        publish(
            s,
            &ctx,
            &obj,
            if t.is_warning() {
                EventType::Warning
            } else {
                EventType::Normal
            },
            t.reason(),
            note,
        )
        .await;
    }
    let per_policy = match policies.policies() {
        [only] => vec![(only.name.clone(), evaluation.verdict)],
        many => many
            .iter()
            .filter_map(|p| {
                let t = p.target_for(&ctx.ar.api_version, &ctx.ar.kind)?;
                Some((p.name.clone(), evaluate_target(p, t, &value, &ectx).verdict))
            })
            .collect(),
    };
    let display = match obj.namespace().filter(|_| ctx.namespaced) {
        Some(ns) => format!("{ns}/{} ({})", obj.name_any(), ctx.ar.kind),
        None => format!("{} ({})", obj.name_any(), ctx.ar.kind),
    };
    let seen = Seen {
        display,
        merged: evaluation.verdict,
        per_policy,
    };
    let seen_changed = s
        .seen
        .lock()
        .map(|mut m| m.insert(key.clone(), seen.clone()) != Some(seen))
        .unwrap_or(false);
    if let Ok(mut last) = s.last.lock() {
        last.insert(key, condition);
    }
    if changed || seen_changed {
        s.dirty.notify_one();
    }
    s.shared
        .metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());

    // Requeue for the next date on which any policy's support changes; otherwise only changes
    // to the object or the policies wake it.
    let next = policies
        .policies()
        .iter()
        .filter_map(|p| p.next_transition(today()))
        .min();
    Ok(match next.and_then(until) {
        Some(wait) => Action::requeue(wait),
        None => Action::await_change(),
    })
}

/// Time until the start of `day` (UTC), plus a second of margin.
fn until(day: jiff::civil::Date) -> Option<Duration> {
    let at = day.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let secs = at.as_second() - Timestamp::now().as_second() + 1;
    (secs > 0).then(|| Duration::from_secs(secs as u64))
}

fn policies_names(set: &crate::engine::policyset::PolicySet) -> String {
    if set.is_embedded_default() {
        "supportgate-default".into()
    } else {
        set.policies()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn error_policy(obj: Arc<DynamicObject>, err: &ControllerError, ctx: Arc<KindCtx>) -> Action {
    ctx.session.shared.metrics.reconcile_errors.inc();
    tracing::warn!(object = %object_key(&ctx.ar, &obj), error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
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

fn policy_report_resource(cluster_scoped: bool) -> ApiResource {
    let (kind, plural) = if cluster_scoped {
        ("ClusterPolicyReport", "clusterpolicyreports")
    } else {
        ("PolicyReport", "policyreports")
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", kind),
        plural,
    )
}

/// The wgpolicyk8s.io/v1alpha2 report for one object: one result per violation, or one pass.
pub fn report_body(
    scope: &Value,
    cluster_scoped: bool,
    name: &str,
    evaluation: &Evaluation,
    policy: &str,
    now: Timestamp,
) -> Value {
    let mut results = Vec::new();
    let (mut pass, mut fail, mut warn) = (0, 0, 0);
    for v in &evaluation.violations {
        let (result, severity) = match v.severity {
            Severity::Deny => ("fail", "high"),
            Severity::Warn => ("warn", "medium"),
            Severity::Info => ("pass", "info"),
        };
        match result {
            "fail" => fail += 1,
            "warn" => warn += 1,
            _ => pass += 1,
        }
        let mut r = json!({
            "policy": policy, "rule": v.rule.id(), "result": result, "severity": severity,
            "message": v.message, "source": "supportgate", "category": "Version support",
            "timestamp": {"seconds": now.as_second(), "nanos": 0},
        });
        if let Some(f) = &v.field {
            r["properties"] = json!({"field": f});
        }
        results.push(r);
    }
    if evaluation
        .violations
        .iter()
        .all(|v| v.severity == Severity::Info)
    {
        pass += 1;
        results.push(json!({
            "policy": policy, "rule": "supported", "result": "pass", "severity": "info",
            "message": "supported by the version support policy", "source": "supportgate", "category": "Version support",
            "timestamp": {"seconds": now.as_second(), "nanos": 0},
        }));
    }
    let ar = policy_report_resource(cluster_scoped);
    let mut metadata =
        json!({"name": name, "labels": {"app.kubernetes.io/managed-by": "supportgate"}});
    if let Some(ns) = scope.get("namespace").and_then(Value::as_str) {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": ar.api_version, "kind": ar.kind, "metadata": metadata, "scope": scope,
        "summary": {"pass": pass, "fail": fail, "warn": warn, "error": 0, "skip": 0},
        "results": results,
    })
}

async fn write_report(
    ctx: &KindCtx,
    obj: &DynamicObject,
    evaluation: &Evaluation,
    policy: &str,
) -> Result<(), ControllerError> {
    let s = &ctx.session;
    let uid = obj.uid().unwrap_or_default();
    let name = format!("supportgate-{uid}");
    let mut scope = json!({"apiVersion": ctx.ar.api_version, "kind": ctx.ar.kind, "name": obj.name_any(), "uid": uid});
    let ns = obj.namespace().filter(|_| ctx.namespaced);
    if let Some(ns) = &ns {
        scope["namespace"] = json!(ns);
    }
    let body = report_body(
        &scope,
        ns.is_none(),
        &name,
        evaluation,
        policy,
        Timestamp::now(),
    );
    let ar = policy_report_resource(ns.is_none());
    let api: Api<DynamicObject> = match &ns {
        Some(ns) => Api::namespaced_with(s.client.clone(), ns, &ar),
        None => Api::all_with(s.client.clone(), &ar),
    };
    api.patch(
        &name,
        &PatchParams::apply(&s.cfg.field_manager).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| ControllerError::Report {
        object: object_key(&ctx.ar, obj),
        source,
    })?;
    Ok(())
}

async fn publish(
    s: &Session,
    ctx: &KindCtx,
    obj: &DynamicObject,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let reference = obj.object_ref(&ctx.ar);
    let mut note = note;
    if note.len() > 1000 {
        let mut cut = 997;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let ev = KubeEvent {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Evaluate".into(),
        secondary: None,
    };
    if let Err(e) = s.recorder.publish(&ev, &reference).await {
        tracing::warn!(error = %e, reason, "publishing an event failed");
    }
}

/// Keeps every SupportPolicy's status (window, counts, denied objects, Ready) current.
async fn policy_status_loop(session: Arc<Session>, policies: Store<SupportPolicy>) {
    let mut written: HashMap<String, SupportPolicyStatus> = HashMap::new();
    let api: Api<SupportPolicy> = Api::all(session.client.clone());
    loop {
        session.dirty.notified().await;
        // At most one pass a second: a policy change re-evaluates every object, and the counts
        // are read from what the reconciles recorded, never recomputed here.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (tallies, merged) = tally(&session);
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
        let today = today();
        for sp in policies.state() {
            let name = sp.name_any();
            let empty = Tally::default();
            let t = tallies.get(&name).unwrap_or(&empty);
            let status = policy_status(
                &sp,
                t,
                today,
                session.cfg.max_denied_listed,
                written.get(&name),
            );
            if written.get(&name) == Some(&status) {
                continue;
            }
            let body = json!({"apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportPolicy", "status": status});
            match api
                .patch_status(
                    &name,
                    &PatchParams::apply(&session.cfg.field_manager).force(),
                    &Patch::Apply(&body),
                )
                .await
            {
                Ok(_) => {
                    if let Some(note) = vendor::event_note(sp.status.as_ref(), &status) {
                        policy_event(&session, &sp, vendor::REASON_NEWER, note).await;
                    }
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

/// An event on a SupportPolicy (cluster-scoped: recorded in the `default` namespace).
async fn policy_event(session: &Session, sp: &SupportPolicy, reason: &str, note: String) {
    let ev = KubeEvent {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(note),
        action: "CompareWithEmbeddedDefault".into(),
        secondary: None,
    };
    if let Err(e) = session.recorder.publish(&ev, &sp.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "publishing an event on a SupportPolicy failed");
    }
}

/// Per-policy tallies and the merged one, over the objects still in the caches.
fn tally(session: &Session) -> (HashMap<String, Tally>, Tally) {
    let live: std::collections::HashSet<String> = match session.stores.lock() {
        Ok(stores) => stores
            .values()
            .flat_map(|(ar, store)| store.state().into_iter().map(move |o| object_key(ar, &o)))
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
    sp: &SupportPolicy,
    tally: &Tally,
    today: jiff::civil::Date,
    max_denied: usize,
    previous: Option<&SupportPolicyStatus>,
) -> SupportPolicyStatus {
    let now = Time(Timestamp::now());
    let ready = |ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let last = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"))
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: last,
            observed_generation: sp.metadata.generation,
        }
    };
    let policy = match Policy::compile(sp) {
        Ok(p) => p,
        Err(e) => {
            return SupportPolicyStatus {
                observed_generation: sp.metadata.generation,
                conditions: vec![ready(false, "InvalidSpec", e.to_string())],
                ..SupportPolicyStatus::default()
            };
        }
    };
    let counts = tally.counts.clone();
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
        objects: Some(counts),
        denied_objects: denied,
        conditions: vec![ready(
            true,
            "Valid",
            format!("{} ({})", policy.window_text(today), policy.product_name),
        )]
        .into_iter()
        .chain(vendor::condition_for(sp, previous, now.clone()))
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn crd(status: Value, subresource: bool) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "xs.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "X", "plural": "xs"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": if subresource { json!({"status": {}}) } else { json!({}) },
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"status": status}}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn sinks_follow_the_schema() {
        let map = json!({"type": "object", "properties": {"conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}}});
        assert_eq!(sink_for(&crd(map.clone(), true), "v1"), Sink::Conditions);
        assert!(
            matches!(sink_for(&crd(map, false), "v1"), Sink::PolicyReport(r) if r.contains("subresource"))
        );
        let atomic = json!({"type": "object", "properties": {"conditions": {"type": "array", "items": {"type": "object"}}}});
        assert!(
            matches!(sink_for(&crd(atomic, true), "v1"), Sink::PolicyReport(r) if r.contains("list-map"))
        );
        let none = json!({"type": "object", "properties": {"phase": {"type": "string"}}});
        assert!(
            matches!(sink_for(&crd(none, true), "v1"), Sink::PolicyReport(r) if r.contains("pruned"))
        );
        assert!(matches!(
            sink_for(&crd(json!({}), true), "v2"),
            Sink::PolicyReport(_)
        ));
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
        let st = policy_status(&sp, &t, today, 1, None);
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
        let again = policy_status(&sp, &t, today, 1, Some(&st));
        assert_eq!(
            again.conditions[0].last_transition_time,
            st.conditions[0].last_transition_time
        );

        let mut bad = sp.clone();
        bad.spec.product[0].kubernetes.min = "1.99.x".into();
        let st = policy_status(&bad, &t, today, 20, None);
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
    fn reports_have_one_result_per_violation_or_a_pass() {
        let scope = json!({"apiVersion": "kubeaddons.mesosphere.io/v1beta2", "kind": "Addon", "name": "istio", "namespace": "kubeaddons", "uid": "u"});
        let e = Evaluation {
            verdict: Verdict::Denied,
            violations: vec![
                crate::engine::Violation {
                    rule: crate::engine::rules::Rule::ExperimentalComponent,
                    severity: Severity::Deny,
                    message: "m".into(),
                    field: Some("f".into()),
                },
                crate::engine::Violation {
                    rule: crate::engine::rules::Rule::SecondarySupport,
                    severity: Severity::Info,
                    message: "n".into(),
                    field: None,
                },
            ],
        };
        let r = report_body(
            &scope,
            false,
            "supportgate-u",
            &e,
            "default",
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(r["kind"], "PolicyReport");
        assert_eq!(r["metadata"]["namespace"], "kubeaddons");
        assert_eq!(
            r["summary"],
            json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0})
        );
        assert_eq!(r["results"][0]["rule"], "experimental-component");
        assert_eq!(r["results"][0]["properties"]["field"], "f");
        let ok = Evaluation {
            verdict: Verdict::Allowed,
            violations: vec![],
        };
        let r = report_body(&scope, true, "n", &ok, "default", Timestamp::UNIX_EPOCH);
        assert_eq!(r["kind"], "ClusterPolicyReport");
        assert_eq!(r["results"][0]["result"], "pass");
    }
}
