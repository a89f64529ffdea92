//! Restarting the test control plane's kube-apiserver, as an upgrade or a crash does.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ControlPlane, stderr};

impl ControlPlane {
    /// Stops kube-apiserver (etcd keeps running) and starts it again on the same port with the
    /// same flags, as an apiserver upgrade or crash does. Returns once `/readyz` is ok.
    pub fn restart_apiserver(&self) {
        let pids_file = self.dir.join("pids");
        let pids = std::fs::read_to_string(&pids_file).expect("pids file");
        let old: u32 = pids
            .lines()
            .find_map(|l| l.strip_prefix("kube-apiserver "))
            .and_then(|p| p.trim().parse().ok())
            .expect("kube-apiserver pid");
        stop_like_a_crash(old);
        let started = Instant::now();
        let new_pid = self.start_apiserver_again();
        let updated: Vec<String> = pids
            .lines()
            .map(|l| {
                if l.starts_with("kube-apiserver ") {
                    format!("kube-apiserver {new_pid}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&pids_file, updated.join("\n") + "\n").expect("update pids");
        loop {
            let o = self.kubectl(&["get", "--raw=/readyz"]);
            if o.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "kube-apiserver not ready after restart: {}",
                stderr(&o)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts kube-apiserver with the arguments `up` recorded, in a session of its own; returns
    /// its pid.
    fn start_apiserver_again(&self) -> String {
        let args: Vec<String> = std::fs::read_to_string(self.dir.join("kube-apiserver.args"))
            .expect("kube-apiserver.args")
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let pidf = self.dir.join(".kube-apiserver.restart.pid");
        let _ = std::fs::remove_file(&pidf);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("kube-apiserver.log"))
            .expect("log");
        // `setsid -f` forks, so waiting for it does not wait for the apiserver.
        Command::new("setsid")
            .arg("-f")
            .arg("bash")
            .arg("-c")
            .arg(r#"echo $$ > "$1"; shift; exec "$@""#)
            .arg("_")
            .arg(&pidf)
            .arg(self.tool("kube-apiserver"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("restart kube-apiserver")
            .wait()
            .ok();
        let started = Instant::now();
        loop {
            if let Ok(p) = std::fs::read_to_string(&pidf)
                && !p.trim().is_empty()
            {
                return p.trim().to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "kube-apiserver did not restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends SIGTERM to `pid` and waits until it is gone; its graceful shutdown drains for ~30 s,
/// so after 5 s it is ended the way a crash would (SIGKILL).
fn stop_like_a_crash(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let gone = Instant::now();
    // A zombie counts as gone: the container's init may be slow to reap re-parented processes.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    };
    let mut killed = false;
    while alive(pid) {
        if !killed && gone.elapsed() > Duration::from_secs(5) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            killed = true;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(30),
            "kube-apiserver {pid} did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
