//! The test control plane dies with its test binary and leaves no directory behind after a clean
//! run. Each test runs this binary again as a child (the ignored `child_with_a_control_plane`
//! test, in a process group of its own), lets it start a control plane, ends it one way or
//! another, and watches what the watchdog (tests/support/watchdog.rs) does.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::ControlPlane;

const MODE: &str = "SUPPORTGATE_CLEANUP_CHILD";
const OUT: &str = "SUPPORTGATE_CLEANUP_CHILD_OUT";

/// The child: starts this binary's control plane, writes its directory to $OUT, then passes,
/// fails or waits to be killed as $MODE says. Ignored, so it runs only when a test asks for it.
#[test]
#[ignore = "a helper the other tests in this file run as a child process"]
fn child_with_a_control_plane() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let cp = ControlPlane::shared();
    let out = std::env::var(OUT).expect("the parent names the output file");
    std::fs::write(&out, cp.dir.display().to_string()).expect("write the dir");
    // The parent reads DIR/pids before this binary ends (and the watchdog cleans up).
    let go = PathBuf::from(format!("{out}.go"));
    let asked = Instant::now();
    while !go.exists() && asked.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_millis(100));
    }
    match mode.as_str() {
        "pass" => {}
        "fail" => panic!("a deliberate failure, for the cleanup test"),
        // Bounded: the parent kills the group long before this ends.
        _ => std::thread::sleep(Duration::from_secs(300)),
    }
}

/// A child run of `child_with_a_control_plane` in its own process group.
struct ChildRun {
    child: Child,
    scratch: tempfile::TempDir,
    reaped: bool,
}

impl ChildRun {
    fn start(mode: &str) -> ChildRun {
        let scratch = tempfile::tempdir().expect("temp dir");
        let child = Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", "child_with_a_control_plane", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(MODE, mode)
            .env(OUT, scratch.path().join("dir"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(scratch.path().join("stdout")).expect("stdout"))
            .stderr(std::fs::File::create(scratch.path().join("stderr")).expect("stderr"))
            .spawn()
            .expect("run this test binary as a child");
        ChildRun {
            child,
            scratch,
            reaped: false,
        }
    }

    /// The control plane directory, once the child has started its control plane.
    fn control_plane_dir(&mut self) -> PathBuf {
        let file = self.scratch.path().join("dir");
        let started = Instant::now();
        loop {
            if let Ok(d) = std::fs::read_to_string(&file)
                && !d.is_empty()
            {
                return PathBuf::from(d);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the child ended ({status}) before its control plane started:\n{}",
                    self.output()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "the child's control plane did not start in 240 s:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Lets the child go on past its control plane start (to pass, fail or wait for the kill).
    fn go(&self) {
        std::fs::write(self.scratch.path().join("dir.go"), "").expect("write the go file");
    }

    fn wait(&mut self) -> ExitStatus {
        let status = self.child.wait().expect("wait for the child");
        self.reaped = true;
        status
    }

    fn output(&self) -> String {
        let read =
            |f: &str| std::fs::read_to_string(self.scratch.path().join(f)).unwrap_or_default();
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            read("stdout"),
            read("stderr")
        )
    }
}

impl Drop for ChildRun {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: kill(2) on our own child's process group; an already reaped group is ESRCH.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `name pid` of every process `up` recorded, plus the watchdog.
fn recorded(dir: &Path) -> Vec<(String, u32)> {
    let mut procs: Vec<(String, u32)> = std::fs::read_to_string(dir.join("pids"))
        .expect("DIR/pids")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, p)| (n.to_string(), p.trim().parse().expect("pid")))
        .collect();
    let watchdog = std::fs::read_to_string(dir.join("watchdog.pid")).expect("DIR/watchdog.pid");
    procs.push(("watchdog".into(), watchdog.trim().parse().expect("pid")));
    procs
}

/// Alive (not a zombie) and still the process that was recorded: its command line names `dir`.
fn running(pid: u32, dir: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'));
    !zombie && String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
}

/// Waits (bounded) until none of `procs` runs any more.
fn assert_all_stop(procs: &[(String, u32)], dir: &Path, what: &str) {
    let started = Instant::now();
    while procs.iter().any(|(_, p)| running(*p, dir)) {
        let left: Vec<_> = procs.iter().filter(|(_, p)| running(*p, dir)).collect();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: still running 60 s later: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (bounded) until `done` holds. The watchdog removes or marks the directory a moment after
/// the processes it watches stop, so checking once as soon as they stop races it.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: not so 60 s later"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The watchdog's KEPT note, once it has written one that says `why` (bounded wait).
fn kept_note(dir: &Path, why: &str) -> String {
    let mut kept = String::new();
    let file = dir.join("KEPT");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        kept = std::fs::read_to_string(&file).unwrap_or_default();
        if kept.contains(why) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kept
}

/// Removes a directory the watchdog kept, so this test leaves nothing behind either.
fn remove_kept(dir: &Path) {
    std::fs::remove_dir_all(dir).expect("remove the kept control plane dir");
}

#[test]
fn a_control_plane_dies_with_its_test_binary_when_the_process_group_is_killed() {
    let mut run = ChildRun::start("wait");
    let dir = run.control_plane_dir();
    let procs = recorded(&dir);
    let names: Vec<&str> = procs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["etcd", "kube-apiserver", "watchdog"], "{procs:?}");
    for (name, pid) in &procs {
        assert!(running(*pid, &dir), "{name} ({pid}) is not running");
    }
    let group = run.child.id() as i32;
    // The watchdog is out of the group, or the group kill below would take it along.
    // SAFETY: getpgid(2) only reads.
    let watchdog_group = unsafe { libc::getpgid(procs[2].1 as i32) };
    assert_ne!(
        watchdog_group, group,
        "the watchdog is in the test binary's process group"
    );

    // SAFETY: kill(2) on the process group of our own child.
    assert_eq!(
        unsafe { libc::kill(-group, libc::SIGKILL) },
        0,
        "kill the group"
    );
    let status = run.wait();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{status}"
    );

    assert_all_stop(&procs, &dir, "after the group was killed");
    let kept = kept_note(&dir, "killed before it finished");
    assert!(
        kept.contains("killed before it finished"),
        "a killed binary keeps its dir and says why; KEPT: {kept:?}"
    );
    let said = format!("kept the control plane dir {}", dir.display());
    eventually("the watchdog's note on stderr", || {
        run.output().contains(&said)
    });
    assert!(
        run.output().contains(&said),
        "the kept dir is printed:\n{}",
        run.output()
    );
    remove_kept(&dir);
}

#[test]
fn a_clean_run_removes_its_control_plane_dir_and_a_failed_one_keeps_it() {
    // Both children at once: two control planes start in the time of one.
    let mut pass = ChildRun::start("pass");
    let mut fail = ChildRun::start("fail");
    let (pass_dir, fail_dir) = (pass.control_plane_dir(), fail.control_plane_dir());
    let pass_procs = recorded(&pass_dir);
    let fail_procs = recorded(&fail_dir);
    pass.go();
    fail.go();
    assert!(pass.wait().success(), "{}", pass.output());
    assert!(!fail.wait().success(), "{}", fail.output());

    assert_all_stop(&pass_procs, &pass_dir, "after a clean run");
    eventually(&format!("removal of {}", pass_dir.display()), || {
        !pass_dir.exists()
    });
    assert!(
        !pass_dir.exists(),
        "a clean run removes {}",
        pass_dir.display()
    );

    assert_all_stop(&fail_procs, &fail_dir, "after a failed run");
    let kept = kept_note(&fail_dir, "a test failed");
    assert!(kept.contains("a test failed"), "KEPT: {kept:?}");
    assert!(
        fail_dir.join("kube-apiserver.log").is_file(),
        "the logs stay for inspection"
    );
    let said = format!("kept the control plane dir {}", fail_dir.display());
    eventually("the watchdog's note on stderr", || {
        fail.output().contains(&said)
    });
    assert!(
        fail.output().contains(&said),
        "the kept dir is printed:\n{}",
        fail.output()
    );
    remove_kept(&fail_dir);
}
