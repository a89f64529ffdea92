//! The controller: every targeted object carries a `Supported` condition (or, where its CRD
//! cannot hold one, a PolicyReport entry), kept true as policies, objects and dates change.
//!
//! It runs on the leader only. It discovers which targeted kinds exist from their CRDs (kinds
//! that appear later are picked up), runs one kube-runtime `Controller` per kind, re-evaluates
//! everything when a policy changes, and requeues each object for its next date-driven
//! transition instead of polling.
//!
//! From the bottom up (a module imports only modules above it in this list):
//! - `condition`: the `Supported` condition and its transitions;
//! - `summary`: one event on a policy when a change flips objects;
//! - `retry`: the backoff of failed writes, per object uid;
//! - `report`: PolicyReports, written and read back;
//! - `ledger`: what is recorded per kind and per object (`KindKey`, `Sink`, `Seen`);
//! - `cache`: what of each watched object is kept between reconciles;
//! - `plan`: pure; from the last verdict, the evaluation and the sink, the effects;
//! - `metrics`: the fleet and policy gauges, from the recorded verdicts;
//! - `tally`: pure; a policy's objects by verdict, from the recorded verdicts;
//! - `status_plan`: pure; from the tallies and what was last written, each policy's status and
//!   the events it announces;
//! - `events`: events, published without kube's six-minute cache, retried when refused;
//! - `session`: what the per-kind controllers and the status task share for a term as leader;
//! - `exception_status`: the SupportExceptions' status;
//! - `reconcile`: the I/O of one reconcile: gather inputs, evaluate, apply effects;
//! - `kind_watch`: one kind's watch, cache and kube-runtime `Controller`;
//! - `discovery`: which kinds to watch and where their verdicts go (the sink);
//! - `status`: the SupportPolicies' status: tally, plan, write;

pub mod cache;
pub mod condition;
pub mod discovery;
pub mod events;
pub mod exception_status;
pub mod kind_watch;
pub mod ledger;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod retry;
pub mod session;
pub mod status;
pub mod status_plan;
pub mod summary;
pub mod tally;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::base::state::Shared;
use crate::controller::discovery::{CRD_PAGE, Running, reconcile_kinds};
use crate::controller::session::Session;
pub use crate::controller::session::{ControllerConfig, ControllerError};
use crate::controller::status::policy_status_loop;
use tokio::task::JoinHandle;

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
    let session = Arc::new(Session::new(client, shared, cfg));

    // The SupportPolicies are watched and compiled once per process (runtime::policies);
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

#[cfg(test)]
#[path = "layers_tests.rs"]
mod layers_tests;
