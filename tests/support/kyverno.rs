//! Kyverno's admission controller (built by hack/kyverno/build.sh) against the test control plane,
//! run the way Kyverno's development guide runs it outside a cluster (`--kubeconfig`,
//! `--serverIP`, the CA and TLS Secret names), with its CRDs installed. A test and benchmark
//! peer only (tests/e2e_kyverno.rs, benches/apiserver.rs).
//!
//! Loopback only: the webhook server and the metrics endpoint bind 127.0.0.1, `--serverIP`
//! makes Kyverno register its webhooks by URL at `https://127.0.0.1:PORT/...` (and put that IP
//! in its own serving certificate), tracing, TUF, registry credential helpers, admission reports
//! and the controller-runtime metrics server stay off, and a proxy on the discard port catches
//! any HTTP client that would reach past loopback. `webhook_urls` lets callers assert it.
//!
//! The process is recorded in the control plane's `pids` file, so `hack/controlplane/down` (run
//! by the watchdog however the test binary ends) stops it with the apiserver.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ControlPlane, cache_root, free_port, repo, run_script, stderr, stdout, tail};

pub const NAMESPACE: &str = "kyverno";
/// The label Kyverno puts on the webhook configurations it manages.
const MANAGED: &str = "webhook.kyverno.io/managed-by=kyverno";

/// The built binary and Kyverno's CRDs, building them when missing (a no-op when cached).
pub fn artifacts() -> (PathBuf, PathBuf) {
    let script = repo().join("hack/kyverno/build.sh");
    run_script(
        Command::new(&script).env("SUPPORTGATE_CACHE", cache_root()),
        "building Kyverno (hack/kyverno/build.sh)",
    );
    let out = run_script(
        Command::new(&script)
            .arg("--print")
            .env("SUPPORTGATE_CACHE", cache_root()),
        "hack/kyverno/build.sh --print",
    );
    let dir = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim());
    (dir.join("bin/kyverno"), dir.join("crds"))
}

/// A running Kyverno admission controller; stopped on drop, its webhook configurations removed.
pub struct Kyverno {
    pub child: Child,
    pub webhook_port: u16,
    pub metrics_port: u16,
    pub log: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
}

impl Kyverno {
    /// Installs the CRDs, namespace and ConfigMaps, then starts the admission controller with
    /// its webhooks on every namespace but kube-system and its own. Panics (so the test fails,
    /// never skips) when any of it cannot be done.
    pub fn start(cp: &ControlPlane) -> Kyverno {
        let selector = format!(
            r#"{{"matchExpressions":[{{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","{NAMESPACE}"]}}]}}"#
        );
        Self::start_with_selector(cp, &selector)
    }

    /// As [`Kyverno::start`], with the webhooks' namespaceSelector (JSON) given.
    pub fn start_with_selector(cp: &ControlPlane, namespace_selector: &str) -> Kyverno {
        let (bin, crds) = artifacts();
        let crds = crds.to_str().expect("utf-8 path").to_string();
        cp.install_crd_files(&crds);
        cp.create_namespace(NAMESPACE);
        cp.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&config_maps(namespace_selector)),
        );
        let webhook_port = free_port();
        let metrics_port = free_port();
        let log = cp.dir.join(format!("kyverno-{webhook_port}.log"));
        let child = Command::new(&bin)
            .args(args(&cp.kubeconfig, webhook_port, metrics_port))
            .envs(env())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("kyverno log"))
            .stderr(std::fs::File::create(log.with_extension("err")).expect("kyverno log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        record_pid(&cp.dir, child.id());
        Kyverno {
            child,
            webhook_port,
            metrics_port,
            log,
            kubeconfig: cp.kubeconfig.clone(),
            kubectl: cp.tool("kubectl"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        format!(
            "--- kyverno stdout (last 60 lines)\n{}\n--- kyverno stderr (last 60 lines)\n{}",
            tail(&self.log, 60),
            tail(&self.log.with_extension("err"), 60)
        )
    }

    /// Panics with the logs if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("kyverno exited ({status}):\n{}", self.logs());
        }
    }

    /// Applies policies and waits until the API server routes `probe` (a document the policies
    /// deny, applied with a server-side dry run in `namespace`) to Kyverno and Kyverno denies it.
    pub fn apply_and_wait(
        &mut self,
        cp: &ControlPlane,
        policies: &Path,
        namespace: &str,
        probe: &str,
    ) {
        let path = policies.to_str().expect("utf-8 path");
        cp.kubectl_ok(&["apply", "-f", path], None);
        let start = Instant::now();
        let mut last = String::new();
        // Leader election, certificate generation and webhook registration take a while on two
        // busy cores; the first start after a cold build takes longest.
        while start.elapsed() < Duration::from_secs(240) {
            self.assert_running();
            let o = cp.kubectl_in(
                &["-n", namespace, "apply", "--dry-run=server", "-f", "-"],
                Some(probe),
            );
            last = stderr(&o);
            if !o.status.success()
                && last.contains("denied the request")
                && last.contains("kyverno")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "Kyverno's policies not in effect after 240 s; last kubectl answer: {last}\n{}",
            self.logs()
        );
    }

    /// Every URL and Service in the webhook configurations Kyverno manages.
    pub fn webhook_urls(&self, cp: &ControlPlane) -> Vec<String> {
        let o = cp.kubectl(&[
            "get",
            "validatingwebhookconfigurations,mutatingwebhookconfigurations",
            "-l",
            MANAGED,
            "-o",
            "jsonpath={range .items[*].webhooks[*]}{.clientConfig.url}{.clientConfig.service.name}{\"\\n\"}{end}",
        ]);
        assert!(
            o.status.success(),
            "list Kyverno's webhooks: {}",
            stderr(&o)
        );
        stdout(&o)
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Stops the process (TERM, then KILL after 10 s) and deletes its webhook configurations, so
    /// a `failurePolicy: Fail` webhook is not left pointing at a stopped server.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: signals our own child, whose pid we hold and have not yet waited for.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.wait();
        }
        let _ = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "delete",
                "validatingwebhookconfigurations,mutatingwebhookconfigurations",
                "-l",
                MANAGED,
                "--wait=false",
            ])
            .stdin(Stdio::null())
            .output();
    }
}

impl Drop for Kyverno {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The flags of the dev guide's out-of-cluster setup (`--kubeconfig`, `--serverIP`, the Secret
/// names), everything bound to loopback, and what an admission-only run does not need turned off.
fn args(kubeconfig: &Path, webhook_port: u16, metrics_port: u16) -> Vec<String> {
    let mut a = vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--serverIP=127.0.0.1:{webhook_port}"),
        "--webhookServerHost=127.0.0.1".into(),
        format!("--webhookServerPort={webhook_port}"),
        "--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca".into(),
        "--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair".into(),
        "--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller"
            .into(),
        "--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller".into(),
        // Metrics as deployed (the Prometheus exporter, scraped, never pushed), on loopback.
        "--metricsHost=127.0.0.1".into(),
        format!("--metricsPort={metrics_port}"),
        "--otelConfig=prometheus".into(),
        "--controllerRuntimeMetricsAddress=0".into(),
        "--enableTracing=false".into(),
        "--enableTuf=false".into(),
        "--registryCredentialHelpers=".into(),
        // No reports controller runs to aggregate them.
        "--admissionReports=false".into(),
        // The Helm chart's default.
        "--omitEvents=PolicyApplied,PolicySkipped".into(),
        "--loggingFormat=text".into(),
    ];
    a.push("-v=2".into());
    a
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        // As in the dev guide's launch configuration.
        ("KYVERNO_NAMESPACE", NAMESPACE),
        (
            "KYVERNO_SERVICEACCOUNT_NAME",
            "kyverno-admission-controller",
        ),
        ("KYVERNO_DEPLOYMENT", "dummy"),
        ("KYVERNO_POD_NAME", "dummy"),
        ("INIT_CONFIG", "kyverno"),
        ("METRICS_CONFIG", "kyverno-metrics"),
        // Any HTTP client that honours the proxy variables and aims past loopback reaches the
        // discard port on loopback and fails; the API server (127.0.0.1) is exempt.
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("NO_PROXY", "127.0.0.1,localhost"),
    ]
}

/// The Helm chart's ConfigMaps, reduced to what applies here: the resource filters and the
/// webhooks' namespaceSelector.
fn config_maps(namespace_selector: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: kyverno, namespace: {NAMESPACE}}}
data:
  resourceFilters: '[Event,*,*][*/*,kube-system,*][*/*,kube-public,*][*/*,kube-node-lease,*][*/*,{NAMESPACE},*]'
  webhooks: '{{"namespaceSelector":{namespace_selector}}}'
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: kyverno-metrics, namespace: {NAMESPACE}}}
data: {{}}
"#
    )
}

/// Adds the process to the control plane's `pids`, so `down` stops it (its command line names
/// its binary and, through `--kubeconfig`, the control plane's directory, as `down` checks).
fn record_pid(dir: &Path, pid: u32) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("pids"))
        .expect("the control plane's pids file");
    writeln!(f, "kyverno {pid}").expect("record kyverno's pid");
}

/// Resident set size and its peak (kB), and CPU time (user + system, in clock ticks) of `pid`.
pub fn proc_usage(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ticks = stat
        .rsplit_once(") ")
        .map(|(_, rest)| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 (utime, stime), counted from 1 with the name as field 2.
            let at = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            at(11) + at(12)
        })
        .unwrap_or(0);
    (kb("VmRSS:"), kb("VmHWM:"), ticks)
}
