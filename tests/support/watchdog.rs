//! The control plane dies with its test binary, however the binary ends.
//!
//! A watchdog (`watchdog.sh`) starts in a session of its own, so a SIGKILL of the binary's
//! process group misses it. The binary holds the write end of the watchdog's stdin; the kernel
//! closes it when the binary dies, and the watchdog then runs `hack/controlplane/down`. Over the
//! same pipe the binary reports a panicking test (`failed`) and a normal exit (`exited`, from an
//! `atexit` handler), so the watchdog removes the control plane's directory only after a clean
//! run and keeps it, printing its path, after a failure or a kill.

use std::io::Write;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once};

const SCRIPT: &str = include_str!("watchdog.sh");

static PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);
static HOOKS: Once = Once::new();

/// Starts the watchdog of the control plane in `dir`.
// The watchdog outlives this process by design, so it is never waited for.
#[allow(clippy::zombie_processes)]
pub fn spawn(down: &Path, dir: &Path) {
    let pid = std::process::id();
    let start = start_time(pid).expect("this process's start time from /proc/self/stat");
    let mut child = Command::new("setsid")
        .arg("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("watchdog.sh")
        .arg(pid.to_string())
        .arg(start)
        .arg(dir)
        .arg(down)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        // Inherited, so a kept directory is reported where the test output goes.
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the control plane watchdog (setsid bash)");
    *PIPE.lock().unwrap_or_else(|e| e.into_inner()) = child.stdin.take();
    HOOKS.call_once(install_hooks);
}

/// Field 22 of `/proc/PID/stat`: with the pid, it names one process even if the pid is reused.
pub fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses; the fields after it do not.
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19).map(str::to_string)
}

fn tell(line: &str) {
    // try_lock: a panic while another thread writes must not deadlock the panic hook.
    if let Ok(mut pipe) = PIPE.try_lock()
        && let Some(p) = pipe.as_mut()
    {
        let _ = writeln!(p, "{line}");
    }
}

fn install_hooks() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        tell(&format!("failed {}", thread.name().unwrap_or("unnamed")));
        previous(info);
    }));
    // SAFETY: registers a plain function with no captured state; it only writes to a pipe.
    let rc = unsafe { libc::atexit(at_exit) };
    assert_eq!(rc, 0, "atexit");
}

extern "C" fn at_exit() {
    tell("exited");
}
