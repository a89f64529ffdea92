//! What one term as leader shares: the configuration, the client, and what the per-kind
//! controllers record for the policy-status task (the ledger of `Seen` verdicts, the last
//! conditions, the backoffs, the flips, the refused kinds).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::ApiResource;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::Store;
use parking_lot::Mutex;
use thiserror::Error;
use tokio::sync::Notify;

use crate::base::metrics::WriteLabels;
use crate::base::state::Shared;
use crate::controller::cache::Cached;
use crate::controller::events::Publisher;
use crate::controller::ledger::{KindKey, Seen};
use crate::controller::retry::{Backoff, Retries};
use crate::controller::summary::Pending;

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
    pub(super) client: Client,
    pub(super) shared: Arc<Shared>,
    pub(super) cfg: ControllerConfig,
    pub(super) events: Publisher,
    pub(super) stores: Mutex<BTreeMap<KindKey, (ApiResource, Store<Cached>)>>,
    /// These three are keyed by `reconcile::memory_key`, which holds the uid: an object deleted
    /// and created again under its name is a new object, remembered from scratch.
    ///
    /// The last condition per object, where the object does not carry it: the only record of
    /// the verdict for kinds without conditions (until their PolicyReport has been read), and
    /// for a conditions kind until the watch brings back the first condition written.
    pub(super) last: Mutex<HashMap<String, Condition>>,
    /// Each object's latest verdicts, merged and per policy, for the policies' status counts.
    pub(super) seen: Mutex<HashMap<String, Seen>>,
    /// The backoff of objects whose reconcile (a status or report write) failed.
    pub(super) retries: Mutex<Retries>,
    /// Verdicts flipped by a change to the policies or exceptions, not yet summarised.
    pub(super) flips: Mutex<Pending>,
    /// Targeted kinds the API server refuses to let this account list or watch (403), with its
    /// message: shown in the targeting policies' `KindsWatched` condition.
    pub(super) forbidden: Mutex<BTreeMap<KindKey, String>>,
    pub(super) dirty: Notify,
}

impl Session {
    pub(super) fn new(client: Client, shared: Arc<Shared>, cfg: ControllerConfig) -> Self {
        let reporter = Reporter {
            controller: cfg.reporter.clone(),
            instance: Some(cfg.instance.clone()),
        };
        Session {
            events: Publisher::new(client.clone(), reporter, shared.metrics.clone()),
            client,
            shared,
            cfg,
            stores: Mutex::new(BTreeMap::new()),
            last: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            retries: Mutex::new(Retries::new(Backoff::WRITES)),
            flips: Mutex::new(Pending::default()),
            forbidden: Mutex::new(BTreeMap::new()),
            dirty: Notify::new(),
        }
    }

    /// Counts a failed write that will be retried.
    pub(super) fn count_retry(&self, kind: &str) {
        let labels = WriteLabels { kind: kind.into() };
        self.shared
            .metrics
            .status_write_retries
            .get_or_create(&labels)
            .inc();
    }
}
