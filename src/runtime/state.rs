//! The state the `run` process's tasks share: one snapshot of the policies for the request path
//! (no API calls there), readiness flags, and the metrics registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::engine::Context;
use crate::engine::policyset::PolicySet;
use crate::engine::version::Version;
use crate::runtime::metrics::Metrics;

/// What the request path reads: one snapshot of the policies, no API calls.
pub struct Shared {
    pub policies: ArcSwap<PolicySet>,
    pub hosting_kubernetes: Option<Version>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub policies_synced: AtomicBool,
    pub tls_loaded: AtomicBool,
    /// Bumped whenever `policies` is replaced, so the controller re-evaluates everything.
    pub policy_changes: watch::Sender<u64>,
    /// Set on SIGTERM: /readyz fails so the endpoint is removed while reviews are still served.
    pub draining: AtomicBool,
}

impl Shared {
    pub fn new(
        hosting_kubernetes: Option<Version>,
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
    ) -> Arc<Self> {
        Arc::new(Shared {
            policies: ArcSwap::from_pointee(PolicySet::embedded_default()),
            hosting_kubernetes,
            metrics,
            max_body_bytes,
            policies_synced: AtomicBool::new(false),
            tls_loaded: AtomicBool::new(false),
            policy_changes: watch::Sender::new(0),
            draining: AtomicBool::new(false),
        })
    }

    pub fn set_policies(&self, set: PolicySet) {
        self.policies.store(Arc::new(set));
        self.policy_changes.send_modify(|n| *n += 1);
    }

    pub fn is_ready(&self) -> bool {
        self.policies_synced.load(Ordering::Acquire)
            && self.tls_loaded.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
    }

    pub fn context(&self) -> Context {
        let today = crate::runtime::clock::today_utc();
        Context::new(today).with_hosting_kubernetes(self.hosting_kubernetes.clone())
    }
}
