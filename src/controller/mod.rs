//! The controller: every targeted object carries a `Supported` condition (or, where its CRD
//! cannot hold one, a PolicyReport entry), kept true as policies, objects and dates change.
//!
//! It runs on the leader only. It discovers which targeted kinds exist from their CRDs (kinds
//! that appear later are picked up), runs one kube-runtime `Controller` per kind, re-evaluates
//! everything when a policy changes, and requeues each object for its next date-driven
//! transition instead of polling.
//!
//! - `discovery`: which kinds to watch and where their verdicts go (the sink);
//! - `cache`: what of each watched object is kept between reconciles;
//! - `reconcile`: the I/O of one reconcile: gather inputs, evaluate, apply effects;
//! - `plan`: pure; from the last verdict, the evaluation and the sink, the effects;
//! - `condition`: the `Supported` condition and its transitions;
//! - `report`: PolicyReports, written and read back;
//! - `status`: the SupportPolicies' status;
//! - `summary`: one event on a policy when a change flips objects;
//! - `metrics`: the fleet and policy gauges, from the recorded verdicts;
//! - `events`: events, published without kube's six-minute cache, retried when refused;
//! - `retry`: the backoff of failed writes, per object uid.

pub mod cache;
pub mod condition;
pub mod discovery;
pub mod events;
pub mod exception_status;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod retry;
pub mod status;
pub mod summary;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use thiserror::Error;
use tokio::sync::{Notify, watch};

use crate::base::state::Shared;
use crate::controller::discovery::{CRD_PAGE, KindKey, Running, reconcile_kinds};
use crate::controller::status::{Seen, policy_status_loop};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub field_manager: String,
    pub concurrency: u16,
    /// How many denied objects a SupportPolicy's status names.
    pub max_denied_listed: usize,
    pub reporter: String,
    pub instance: String,
    /// Publish `supportgate_object_support`, one series per object (fleets of hundreds).
    pub object_metrics: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            field_manager: "supportgate".into(),
            concurrency: 16,
            max_denied_listed: 20,
            reporter: "supportgate".into(),
            instance: "supportgate".into(),
            object_metrics: false,
        }
    }
}

#[derive(Debug, Error)]
pub enum ControllerError {
    #[error("writing status of {object}: {source}")]
    Status { object: String, source: kube::Error },
    #[error("writing the PolicyReport for {object}: {source}")]
    Report { object: String, source: kube::Error },
    #[error("reading the last verdict from the PolicyReport for {object}: {source}")]
    ReadReport { object: String, source: kube::Error },
    #[error("decoding the cached copy of {object}: {source}")]
    Cache {
        object: String,
        source: serde_json::Error,
    },
}

/// Shared between the per-kind controllers and the policy-status task, for one term as leader.
pub(crate) struct Session {
    client: Client,
    shared: Arc<Shared>,
    cfg: ControllerConfig,
    events: events::Publisher,
    stores: Mutex<BTreeMap<KindKey, (ApiResource, Store<cache::Cached>)>>,
    /// These three are keyed by `reconcile::memory_key`, which holds the uid: an object deleted
    /// and created again under its name is a new object, remembered from scratch.
    ///
    /// The last condition per object, where the object does not carry it: the only record of
    /// the verdict for kinds without conditions (until their PolicyReport has been read), and
    /// for a conditions kind until the watch brings back the first condition written.
    last: Mutex<HashMap<String, Condition>>,
    /// Each object's latest verdicts, merged and per policy, for the policies' status counts.
    seen: Mutex<HashMap<String, Seen>>,
    /// The backoff of objects whose reconcile (a status or report write) failed.
    retries: Mutex<retry::Retries>,
    /// Verdicts flipped by a change to the policies or exceptions, not yet summarised.
    flips: Mutex<summary::Pending>,
    /// Targeted kinds the API server refuses to let this account list or watch (403), with its
    /// message: shown in the targeting policies' `KindsWatched` condition.
    forbidden: Mutex<BTreeMap<KindKey, String>>,
    dirty: Notify,
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
        shared.metrics.observed.leader.set(1);
        // Aborted when this task is: a detached session would go on writing after the
        // supervisor stopped the controller.
        let mut session = AbortOnDrop(shared.controller_tasks.spawn(run_session(
            client.clone(),
            shared.clone(),
            cfg.clone(),
        )));
        while *leading.borrow_and_update() {
            tokio::select! {
                // The session never ends by itself: end (or panic) too, so the supervisor sees it.
                ended = &mut session.0 => match ended {
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    _ => {
                        shared.metrics.observed.clear_leader_state();
                        return;
                    }
                },
                changed = leading.changed() => if changed.is_err() {
                    session.0.abort();
                    shared.metrics.observed.clear_leader_state();
                    return;
                },
            }
        }
        tracing::info!("controller stopping (no longer the leader)");
        session.0.abort();
        let _ = (&mut session.0).await;
        // Another replica publishes the fleet now; two sets of numbers would double count.
        shared.metrics.observed.clear_leader_state();
    }
}

async fn run_session(client: Client, shared: Arc<Shared>, cfg: ControllerConfig) {
    // Until the exceptions are known, every excepted object would look as if it lost its cover.
    let _ = shared.exceptions_synced.subscribe().wait_for(|s| *s).await;
    let reporter = Reporter {
        controller: cfg.reporter.clone(),
        instance: Some(cfg.instance.clone()),
    };
    let session = Arc::new(Session {
        events: events::Publisher::new(client.clone(), reporter, shared.metrics.clone()),
        client: client.clone(),
        shared,
        cfg,
        stores: Mutex::new(BTreeMap::new()),
        last: Mutex::new(HashMap::new()),
        seen: Mutex::new(HashMap::new()),
        retries: Mutex::new(retry::Retries::new(retry::Backoff::WRITES)),
        flips: Mutex::new(summary::Pending::default()),
        forbidden: Mutex::new(BTreeMap::new()),
        dirty: Notify::new(),
    });

    // The SupportPolicies are watched and compiled once per process (base::policies);
    // policy_changes wakes the status writer through follow_crds.
    // Aborting the session drops these guards, which abort the tasks it started: a replica that
    // stops leading must stop writing.
    let status = policy_status_loop(session.clone());
    let _status_task = AbortOnDrop(session.shared.controller_tasks.spawn(status));
    let retries = session.events.clone().retry_loop();
    let _event_retries = AbortOnDrop(session.shared.controller_tasks.spawn(retries));
    let mut kinds = RunningKinds(Running::new());
    follow_crds(&session, &mut kinds.0).await;
}

/// Aborts its task when dropped, including when the owning task is itself aborted.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The per-kind controllers of a session, aborted with it.
struct RunningKinds(Running);

impl Drop for RunningKinds {
    fn drop(&mut self) {
        for (_, (_, h)) in self.0.drain() {
            h.abort();
        }
    }
}

/// Keeps one controller per targeted kind running as CRDs and policies come and go.
async fn follow_crds(session: &Arc<Session>, kinds: &mut Running) {
    let (crd_reader, crd_writer) = reflector::store::<CustomResourceDefinition>();
    let crd_events = reflector::reflector(
        crd_writer,
        // Every CRD of the cluster is listed, and CRDs run to a megabyte each: small pages, and
        // only what the sink decision reads is kept (see `discovery::slim_crd`).
        watcher::watcher(
            Api::<CustomResourceDefinition>::all(session.client.clone()),
            watcher::Config::default().page_size(CRD_PAGE),
        )
        .modify(discovery::slim_crd),
    )
    .default_backoff();
    futures::pin_mut!(crd_events);
    let mut policy_changes = session.shared.policy_changes.subscribe();
    let mut synced = false;
    loop {
        tokio::select! {
            ev = crd_events.next() => match ev {
                Some(Ok(Event::InitDone)) => {
                    synced = true;
                    reconcile_kinds(session, &crd_reader, kinds);
                }
                Some(Ok(Event::Apply(_) | Event::Delete(_))) if synced => {
                    reconcile_kinds(session, &crd_reader, kinds);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watching CustomResourceDefinitions"),
                None => return,
            },
            changed = policy_changes.changed() => {
                if changed.is_err() {
                    return;
                }
                if synced {
                    reconcile_kinds(session, &crd_reader, kinds);
                }
                session.dirty.notify_one();
            }
        }
    }
}
