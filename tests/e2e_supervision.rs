//! Every long-lived task of `supportgate run` is supervised: when one dies, /readyz fails and
//! the process exits non-zero so that Kubernetes restarts it. The real binary, against the real
//! API server, with a test-only flag that panics one chosen task on request.

mod support;

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use support::operator::{CertFiles, Operator, http_get};
use support::{ControlPlane, eventually};

const NS: &str = "supervision-e2e";

/// What the test saw after pulling the trigger.
struct Death {
    status: ExitStatus,
    readyz_failed_with: Option<String>,
    after: Duration,
}

/// Starts an operator with `task` armed to panic, waits until it is ready, pulls the trigger and
/// watches /readyz until the process exits (within 15 s, or the test fails).
async fn kill_task(cp: &ControlPlane, task: &str, extra: &[&str]) -> (Death, String) {
    let certs = CertFiles::new();
    let trigger = certs.dir.path().join(format!("panic-{task}"));
    let fault = format!("--fault-panic={task}:{}", trigger.display());
    let mut args = vec!["--shutdown-drain-seconds=2", fault.as_str()];
    args.extend_from_slice(extra);
    let mut op = Operator::start(cp, &certs, &args);
    op.wait_ready().await;
    if extra.contains(&"--identity=supervised-a") {
        let leases: Api<Lease> = Api::namespaced(cp.client().await, NS);
        eventually(Duration::from_secs(30), "the replica to lead", || async {
            let holder = leases
                .get_opt("supervised")
                .await
                .ok()??
                .spec?
                .holder_identity;
            (holder.as_deref() == Some("supervised-a")).then_some(())
        })
        .await;
    }
    std::fs::write(&trigger, "").expect("pull the trigger");
    let pulled = Instant::now();
    let mut readyz_failed_with = None;
    let status = loop {
        if let Some(status) = op.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            pulled.elapsed() < Duration::from_secs(15),
            "supportgate still running 15 s after {task} panicked:\n{}",
            op.logs()
        );
        if let Ok((code, body)) = http_get(op.health_port, "/readyz").await
            && code != 200
            && readyz_failed_with.is_none()
        {
            readyz_failed_with = Some(body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let death = Death {
        status,
        readyz_failed_with,
        after: pulled.elapsed(),
    };
    (death, op.logs())
}

fn assert_died(task: &str, death: &Death, logs: &str, readyz_observable: bool) {
    assert!(
        !death.status.success() && death.status.code().is_some(),
        "{task}: expected a non-zero exit, got {}:\n{logs}",
        death.status
    );
    assert!(
        logs.contains(&format!("the {task} task panicked")),
        "{task}: the log names the task:\n{logs}"
    );
    if readyz_observable {
        let body = death.readyz_failed_with.as_deref().unwrap_or_default();
        assert!(
            body.contains(task),
            "{task}: /readyz failed naming the task, got {body:?}:\n{logs}"
        );
    }
    println!(
        "{task}: exited with {} after {:?}",
        death.status, death.after
    );
}

#[tokio::test]
async fn a_panic_in_leader_election_takes_the_process_down() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.create_namespace(NS);
    let lease_args = [
        "--leader-election-namespace",
        NS,
        "--leader-election-lease=supervised",
        "--identity=supervised-a",
    ];
    let (death, logs) = kill_task(cp, "leader-election", &lease_args).await;
    assert_died("leader-election", &death, &logs, true);
}

#[tokio::test]
async fn a_panic_in_any_other_task_takes_the_process_down() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    let runs = [
        ("controller", true),
        ("policy-watcher", true),
        ("certificate-manager", true),
        ("webhook-server", true),
        // With the health server gone, /readyz cannot answer at all; the exit is what counts.
        ("health-server", false),
        ("webhook-scope", true),
    ]
    .map(|(task, observable)| async move {
        let mut extra = vec!["--no-leader-election"];
        if task == "webhook-scope" {
            extra.extend([
                "--sync-webhook-rules",
                "--webhook-config-name=supervised-scope",
            ]);
        }
        let (death, logs) = kill_task(cp, task, &extra).await;
        (task, observable, death, logs)
    });
    for (task, observable, death, logs) in futures::future::join_all(runs).await {
        assert_died(task, &death, &logs, observable);
    }
}

#[tokio::test]
async fn sigterm_still_exits_zero() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    let certs = CertFiles::new();
    let mut op = Operator::start(
        cp,
        &certs,
        &["--no-leader-election", "--shutdown-drain-seconds=1"],
    );
    op.wait_ready().await;
    let sent = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(op.child.id().to_string())
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = op.child.try_wait().expect("try_wait") {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{}", op.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}:\n{}", op.logs());
}
