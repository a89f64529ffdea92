//! `make run-cluster`'s script, end to end: the product installed by Helm from the locally
//! built image into the local node shows the same walk-through as `make run`, the pods, and a
//! KUBECONFIG that works from another shell; SIGTERM stops everything it started.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Stops the script (SIGTERM, as Ctrl-C would) if the test fails before it does.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let started = Instant::now();
            while self.0.try_wait().ok().flatten().is_none()
                && started.elapsed() < Duration::from_secs(60)
            {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[test]
fn make_run_cluster_installs_with_helm_stays_up_and_stops_on_sigterm() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let cache = std::env::var("SUPPORTGATE_CACHE").unwrap_or_else(|_| format!("{repo}/.cache"));
    let child = Command::new("hack/run-cluster.sh")
        .current_dir(repo)
        .env("SUPPORTGATE_BIN", env!("CARGO_BIN_EXE_supportgate"))
        .env("SUPPORTGATE_CACHE", &cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hack/run-cluster.sh");
    let mut script = Script(child);
    let child = &mut script.0;
    let (stdout, kubeconfig) = up_and_waiting(child);
    for needle in [
        "ADMITTED\u{1b}[0m prod-east",
        "Warning: [konvoy-nearing-end]",
        "REFUSED\u{1b}[0m  old-west",
        "- [konvoy-unsupported] spec.provisioner.version: Konvoy 1.5.6 is out of support",
        "supportgate-",
        "sgnode",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    the_kubeconfig_works_from_another_process(repo, &cache, &kubeconfig);
    sigterm_stops_everything(child, &kubeconfig);
}

/// Reads the script's output until the KUBECONFIG= line: the script is then up and waiting
/// (bounded by the test harness; the script's own waits are bounded too). Returns the output
/// so far and the kubeconfig's path.
fn up_and_waiting(child: &mut Child) -> (String, String) {
    let stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut stdout = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.unwrap_or_default();
        stdout.push_str(&line);
        stdout.push('\n');
        if let Some(path) = line.strip_prefix("KUBECONFIG=") {
            return (stdout, path.to_string());
        }
    }
    let _ = child.wait();
    panic!(
        "run-cluster.sh ended without a KUBECONFIG line:\n{stdout}\n{}",
        errors.join().unwrap_or_default()
    );
}

/// The KUBECONFIG works from another process on the machine (loopback port forward): both
/// pods are running.
fn the_kubeconfig_works_from_another_process(repo: &str, cache: &str, kubeconfig: &str) {
    let bin = Command::new(format!("{repo}/hack/controlplane/build.sh"))
        .arg("--print")
        .env("SUPPORTGATE_CACHE", cache)
        .output()
        .expect("build.sh --print");
    let kubectl = format!("{}/kubectl", String::from_utf8_lossy(&bin.stdout).trim());
    let pods = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            kubeconfig,
            "get",
            "pods",
            "-n",
            "supportgate",
        ])
        .output()
        .expect("kubectl");
    let pods_out = String::from_utf8_lossy(&pods.stdout);
    assert_eq!(pods_out.matches("1/1     Running").count(), 2, "{pods_out}");
}

/// SIGTERM stops everything: the script exits, its state directory is gone, and no process
/// it started is left.
fn sigterm_stops_everything(child: &mut Child, kubeconfig: &str) {
    let state = kubeconfig.trim_end_matches("/node/kubeconfig").to_string();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "run-cluster.sh ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !std::path::Path::new(&state).exists(),
        "{state} is left behind"
    );
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&state))
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
