//! The state the `run` process's tasks share: one snapshot of the policies for the request path
//! (no API calls there), readiness flags, and the metrics registry.
//!
//! The SupportPolicies are watched and compiled once per process (see
//! [`crate::base::policies`]); the webhook and the controller both read the result here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::api::{SupportException, SupportPolicy};
use crate::base::metrics::Metrics;
use crate::engine::Context;
use crate::engine::exceptions::{CompiledException, ExceptionSet};
use crate::engine::policy::Policy;
use crate::engine::policyset::PolicySet;
use crate::engine::version::Version;

/// One SupportPolicy as the cluster holds it, with the outcome of compiling it. The policy
/// status writer reads these instead of watching and compiling the policies a second time.
#[derive(Debug, Clone)]
pub struct PolicySource {
    pub object: Arc<SupportPolicy>,
    /// The compiled policy, or why the spec is invalid (shown in its Ready condition).
    pub compiled: Result<Arc<Policy>, String>,
    /// This generation's targets that do not resolve against API discovery and so keep it from
    /// replacing the generation in force (see [`crate::base::resolve::blocking`]).
    pub unresolved: Vec<String>,
    /// What is enforced for this policy: this generation when it compiles and resolves, else the
    /// last one of the same object (uid) that did; none when no generation ever compiled.
    pub in_force: Option<InForce>,
}

/// A compiled generation of a SupportPolicy, enforced.
#[derive(Debug, Clone)]
pub struct InForce {
    pub policy: Arc<Policy>,
    pub generation: Option<i64>,
}

impl PolicySource {
    /// A source whose own generation is in force when it compiles (no discovery involved).
    pub fn new(object: Arc<SupportPolicy>, compiled: Result<Arc<Policy>, String>) -> Self {
        let in_force = compiled.as_ref().ok().map(|p| InForce {
            policy: p.clone(),
            generation: object.metadata.generation,
        });
        PolicySource {
            object,
            compiled,
            unresolved: Vec::new(),
            in_force,
        }
    }

    /// Whether the spec as the cluster holds it is what is enforced.
    pub fn is_current(&self) -> bool {
        self.compiled.is_ok()
            && self.unresolved.is_empty()
            && self
                .in_force
                .as_ref()
                .is_some_and(|f| f.generation == self.object.metadata.generation)
    }

    /// For a Ready=False message: what is enforced instead of this generation.
    pub fn in_force_note(&self) -> String {
        match &self.in_force {
            Some(f) if f.generation != self.object.metadata.generation => match f.generation {
                Some(g) => format!("; generation {g}, the last valid one, stays in force"),
                None => "; the last valid spec stays in force".to_string(),
            },
            Some(_) => "; this generation is enforced, as no earlier one was valid".to_string(),
            None => "; nothing of this policy is enforced".to_string(),
        }
    }
}

/// What the request path reads: one snapshot of the policies, no API calls.
pub struct Shared {
    /// The valid policies (the embedded default when the cluster has none).
    pub policies: ArcSwap<PolicySet>,
    /// Every SupportPolicy in the cluster, valid or not, sorted by name.
    pub policy_sources: ArcSwap<Vec<PolicySource>>,
    pub hosting_kubernetes: Option<Version>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub policies_synced: AtomicBool,
    pub tls_loaded: AtomicBool,
    /// The valid SupportExceptions of the trusted namespaces (see [`crate::base::exceptions`]).
    pub exceptions: ArcSwap<ExceptionSet>,
    /// Every SupportException of the trusted namespaces, valid or not, for their status.
    pub exception_sources: ArcSwap<Vec<ExceptionSource>>,
    /// True once the exceptions have been listed: until then the controller does not start,
    /// so a restart never reports an excepted object as having lost its cover.
    pub exceptions_synced: watch::Sender<bool>,
    /// Bumped whenever `policies` is replaced, so the controller re-evaluates everything.
    pub policy_changes: watch::Sender<u64>,
    /// Set on SIGTERM: /readyz fails so the endpoint is removed while reviews are still served.
    pub draining: AtomicBool,
    /// Why the process is going down: a supervised task ended. /readyz fails from then on.
    pub failed: OnceLock<String>,
    /// The controller's own tasks (session, status writer, one per kind). Shutdown waits for
    /// them to be gone before the runtime stops: a kube controller still polled while the
    /// runtime cancels its reconcilers panics (kube-runtime's `CancelableJoinHandle`).
    pub controller_tasks: TaskTracker,
}

impl Shared {
    pub fn new(
        hosting_kubernetes: Option<Version>,
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
    ) -> Arc<Self> {
        Arc::new(Shared {
            policies: ArcSwap::from_pointee(PolicySet::embedded_default()),
            policy_sources: ArcSwap::from_pointee(Vec::new()),
            hosting_kubernetes,
            metrics,
            max_body_bytes,
            policies_synced: AtomicBool::new(false),
            tls_loaded: AtomicBool::new(false),
            exceptions: ArcSwap::from_pointee(ExceptionSet::default()),
            exception_sources: ArcSwap::from_pointee(Vec::new()),
            exceptions_synced: watch::Sender::new(false),
            policy_changes: watch::Sender::new(0),
            draining: AtomicBool::new(false),
            failed: OnceLock::new(),
            controller_tasks: TaskTracker::new(),
        })
    }

    pub fn set_policies(&self, set: PolicySet) {
        self.policies.store(Arc::new(set));
        self.policy_changes.send_modify(|n| *n += 1);
    }

    /// Publishes the compiled SupportPolicies: what is in force of each becomes the evaluated
    /// set, and all of them (with their errors) stay readable for the status writer.
    pub fn publish_policies(&self, mut sources: Vec<PolicySource>) {
        sources.sort_by(|a, b| a.object.metadata.name.cmp(&b.object.metadata.name));
        let valid = sources
            .iter()
            .filter_map(|s| s.in_force.as_ref().map(|f| f.policy.clone()))
            .collect();
        self.policy_sources.store(Arc::new(sources));
        self.set_policies(PolicySet::from_policies(valid));
    }

    /// Publishes the trusted namespaces' SupportExceptions; every object is re-evaluated, as
    /// for a policy change.
    pub fn publish_exceptions(&self, sources: Vec<ExceptionSource>) {
        let valid = sources
            .iter()
            .filter_map(|s| s.compiled.as_ref().ok().cloned())
            .collect();
        self.exception_sources.store(Arc::new(sources));
        self.exceptions.store(Arc::new(ExceptionSet::new(valid)));
        self.policy_changes.send_modify(|n| *n += 1);
    }

    /// Records the first fatal failure; readiness fails from now on.
    pub fn fail(&self, why: String) {
        let _ = self.failed.set(why);
    }

    pub fn is_ready(&self) -> bool {
        self.policies_synced.load(Ordering::Acquire)
            && *self.exceptions_synced.borrow()
            && self.tls_loaded.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
            && self.failed.get().is_none()
    }

    /// Whether reviews are judged with the cluster's policies and exceptions: both have been
    /// listed at least once.
    pub fn judging_synced(&self) -> bool {
        self.policies_synced.load(Ordering::Acquire) && *self.exceptions_synced.borrow()
    }

    /// Marks the policies and exceptions as listed, for a server run without watches (the
    /// benchmarks, which judge with the embedded default on purpose).
    pub fn mark_synced_for_tests(&self) {
        self.policies_synced.store(true, Ordering::Release);
        self.exceptions_synced.send_replace(true);
    }

    pub fn context(&self) -> Context {
        let today = crate::base::clock::today_utc();
        Context::new(today)
            .with_hosting_kubernetes(self.hosting_kubernetes.clone())
            .with_exceptions(self.exceptions.load_full())
    }
}

/// One SupportException as the cluster holds it, with the outcome of compiling it.
#[derive(Debug, Clone)]
pub struct ExceptionSource {
    pub object: Arc<SupportException>,
    /// The compiled exception, or why it is invalid (shown in its Ready condition).
    pub compiled: Result<Arc<CompiledException>, String>,
}

impl ExceptionSource {
    pub fn compile(object: Arc<SupportException>) -> ExceptionSource {
        let compiled = match CompiledException::compile(&object) {
            Ok(x) => Ok(Arc::new(x)),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an invalid SupportException");
                Err(e.problems)
            }
        };
        ExceptionSource { object, compiled }
    }
}
