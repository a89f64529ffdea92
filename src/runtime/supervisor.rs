//! Supervision of the `run` process's long-lived tasks (webhook server, health server, leader
//! election, controller, certificate manager, policy watcher).
//!
//! None of them is meant to end before shutdown. When one returns or panics, the process must
//! not limp on (a dead leader election used to leave the controller stopped while /readyz said
//! ok): the caller marks readiness failed and exits non-zero, and Kubernetes restarts the pod.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::{Id, JoinSet};

/// Names of the supervised tasks, as they appear in logs, in /readyz and in fault injection.
pub mod task {
    pub const WEBHOOK_SERVER: &str = "webhook-server";
    pub const HEALTH_SERVER: &str = "health-server";
    pub const LEADER_ELECTION: &str = "leader-election";
    pub const CONTROLLER: &str = "controller";
    pub const CERTIFICATES: &str = "certificate-manager";
    pub const POLICY_WATCHER: &str = "policy-watcher";
    pub const WEBHOOK_SCOPE: &str = "webhook-scope";
    pub const EXCEPTION_WATCHER: &str = "exception-watcher";
    pub const ALL: [&str; 8] = [
        WEBHOOK_SERVER,
        HEALTH_SERVER,
        LEADER_ELECTION,
        CONTROLLER,
        CERTIFICATES,
        POLICY_WATCHER,
        WEBHOOK_SCOPE,
        EXCEPTION_WATCHER,
    ];
}

/// Test-only fault injection (the hidden `--fault-panic <task>:<file>` flag) makes the named task
/// panic once `<file>` exists. The e2e tests use it to prove that a dead task takes the process
/// down.
#[derive(Debug, thiserror::Error)]
#[error("--fault-panic {0:?}: expected <task>:<file>, the task one of {all:?}", all = task::ALL)]
pub struct BadFaultSpec(String);

/// How a supervised task ended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskExit {
    #[error("the {0} task stopped unexpectedly")]
    Returned(&'static str),
    #[error("the {0} task panicked: {1}")]
    Panicked(&'static str, String),
    #[error("the {0} task was cancelled")]
    Cancelled(&'static str),
}

impl TaskExit {
    pub fn task(&self) -> &'static str {
        match self {
            TaskExit::Returned(t) | TaskExit::Panicked(t, _) | TaskExit::Cancelled(t) => t,
        }
    }
}

#[derive(Debug, Clone)]
struct Fault {
    task: String,
    trigger: PathBuf,
}

impl Fault {
    fn parse(spec: &str) -> Option<Fault> {
        let (task, trigger) = spec.split_once(':')?;
        (!task.is_empty() && !trigger.is_empty()).then(|| Fault {
            task: task.to_string(),
            trigger: PathBuf::from(trigger),
        })
    }
}

#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<()>,
    names: HashMap<Id, &'static str>,
    fault: Option<Fault>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// A supervisor that panics a task on request (`<task>:<file>`, see [`BadFaultSpec`]).
    pub fn with_fault(spec: Option<&str>) -> Result<Self, BadFaultSpec> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        let fault = Fault::parse(spec)
            .filter(|f| task::ALL.contains(&f.task.as_str()))
            .ok_or_else(|| BadFaultSpec(spec.to_string()))?;
        tracing::warn!(task = %fault.task, trigger = %fault.trigger.display(), "fault injection armed (test only)");
        Ok(Supervisor {
            fault: Some(fault),
            ..Self::default()
        })
    }

    pub fn spawn<F>(&mut self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = match self.fault.as_ref().filter(|f| f.task == name) {
            Some(f) => self.tasks.spawn(with_fault(name, f.trigger.clone(), fut)),
            None => self.tasks.spawn(fut),
        };
        self.names.insert(handle.id(), name);
    }

    /// The tasks still running.
    pub fn running(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.names.values().copied().collect();
        v.sort_unstable();
        v
    }

    /// Waits for the first task to end; never resolves while there are none.
    pub async fn first_exit(&mut self) -> TaskExit {
        match self.tasks.join_next_with_id().await {
            None => std::future::pending().await,
            Some(Ok((id, ()))) => TaskExit::Returned(self.forget(id)),
            Some(Err(e)) => {
                let name = self.forget(e.id());
                if e.is_panic() {
                    TaskExit::Panicked(name, panic_message(e.into_panic()))
                } else {
                    TaskExit::Cancelled(name)
                }
            }
        }
    }

    /// After the stop signal: waits up to `limit` for `name` to finish (the webhook server
    /// draining its in-flight reviews); other tasks that end meanwhile are expected.
    pub async fn wait_for(&mut self, name: &'static str, limit: Duration) -> bool {
        let waiting = async {
            while self.names.values().any(|n| *n == name) {
                let exit = self.first_exit().await;
                tracing::debug!(task = exit.task(), "task stopped during shutdown");
            }
        };
        tokio::time::timeout(limit, waiting).await.is_ok()
    }

    /// Aborts every task still running and waits for them to go.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }

    fn forget(&mut self, id: Id) -> &'static str {
        self.names.remove(&id).unwrap_or("unknown")
    }
}

async fn with_fault<F>(name: &'static str, trigger: PathBuf, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let triggered = async {
        while !trigger.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = fut => {}
        () = triggered => panic!("fault injection: the {name} task panics on request"),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_reported_with_the_task_name() {
        let mut s = Supervisor::new();
        s.spawn("forever", std::future::pending());
        s.spawn("boom", async { panic!("kaboom") });
        let exit = s.first_exit().await;
        assert_eq!(exit, TaskExit::Panicked("boom", "kaboom".into()));
        assert_eq!(s.running(), ["forever"]);
        s.shutdown().await;
    }

    #[tokio::test]
    async fn a_task_that_returns_is_reported() {
        let mut s = Supervisor::new();
        s.spawn("forever", std::future::pending());
        s.spawn("quits", async {});
        assert_eq!(s.first_exit().await, TaskExit::Returned("quits"));
    }

    #[tokio::test]
    async fn fault_injection_panics_the_chosen_task_once_triggered() {
        let dir = tempfile::tempdir().unwrap();
        let trigger = dir.path().join("go");
        let mut s = Supervisor {
            fault: Fault::parse(&format!("victim:{}", trigger.display())),
            ..Supervisor::new()
        };
        s.spawn("victim", std::future::pending());
        s.spawn("bystander", std::future::pending());
        let early = tokio::time::timeout(Duration::from_millis(200), s.first_exit()).await;
        assert!(early.is_err(), "nothing ends before the trigger: {early:?}");
        std::fs::write(&trigger, "").unwrap();
        let exit = s.first_exit().await;
        assert_eq!(exit.task(), "victim");
        assert!(matches!(exit, TaskExit::Panicked(_, m) if m.contains("fault injection")));
    }

    #[test]
    fn fault_specs() {
        assert!(Supervisor::with_fault(Some("controller")).is_err());
        assert!(
            Supervisor::with_fault(Some("contoller:/tmp/x")).is_err(),
            "a typo"
        );
        assert!(Supervisor::with_fault(Some("controller:/tmp/x")).is_ok());
        assert!(Fault::parse("controller").is_none());
        assert!(Fault::parse(":/tmp/x").is_none());
        let f = Fault::parse("leader-election:/tmp/a:b").unwrap();
        assert_eq!(
            (f.task.as_str(), f.trigger),
            ("leader-election", "/tmp/a:b".into())
        );
    }

    #[tokio::test]
    async fn wait_for_returns_when_the_task_is_gone() {
        let mut s = Supervisor::new();
        s.spawn("quick", tokio::time::sleep(Duration::from_millis(20)));
        s.spawn("forever", std::future::pending());
        assert!(s.wait_for("quick", Duration::from_secs(5)).await);
        assert!(!s.wait_for("forever", Duration::from_millis(50)).await);
        s.shutdown().await;
    }
}
