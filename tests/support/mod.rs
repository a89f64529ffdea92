//! Test support: a real kube-apiserver + etcd per test binary (hack/controlplane), a
//! `kube::Client` for it, real `kubectl`, and the project's CRDs installed.
//!
//! The control plane is started once per test binary and shared; tests isolate themselves with
//! their own namespaces and object names. A watchdog in a session of its own (`watchdog.rs`)
//! stops it when the test binary exits, however it exits (a panic that aborts, a SIGKILL of the
//! whole process group), and removes its directory after a clean run; after a failure or a kill
//! the directory stays and its path is printed. When the control plane cannot start, tests
//! **fail** with the reason; they never skip.

#![allow(dead_code)]

pub mod accounts;
pub mod admission;
pub mod apiserver;
pub mod chart;
pub mod kyverno;
pub mod operator;
pub mod watchdog;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The checkout the tests run in, found at run time: Cargo runs test binaries with
/// `CARGO_MANIFEST_DIR` set and the package root as working directory. A path compiled into the
/// binary would point at whichever clone built it, and the target directory is shared.
pub fn repo() -> PathBuf {
    static REPO: OnceLock<PathBuf> = OnceLock::new();
    REPO.get_or_init(find_repo).clone()
}

fn find_repo() -> PathBuf {
    let candidates = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::current_dir().ok(),
    ];
    let repo = candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("hack/controlplane/up").is_file())
        .unwrap_or_else(|| {
            panic!(
                "cannot find the supportgate checkout: neither $CARGO_MANIFEST_DIR ({:?}) nor the \
                 working directory ({:?}) holds hack/controlplane/up; run the tests with cargo",
                std::env::var_os("CARGO_MANIFEST_DIR"),
                std::env::current_dir().ok()
            )
        });
    assert_built_in(&repo);
    repo
}

/// Fails when this binary was built from another checkout's sources (build.rs keys the build by
/// checkout, so Cargo should have rebuilt it; this catches the day that stops working).
fn assert_built_in(repo: &Path) {
    let Some(built) = option_env!("SUPPORTGATE_BUILT_IN").filter(|b| !b.is_empty()) else {
        return;
    };
    let same = match (Path::new(built).canonicalize(), repo.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    assert!(
        same,
        "this test binary was built from the checkout {built} but runs in {}; the shared target \
         directory handed out another checkout's build (see build.rs); run `cargo clean -p \
         supportgate` and test again",
        repo.display()
    );
}

fn cache_root() -> PathBuf {
    std::env::var_os("SUPPORTGATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache"))
}

pub struct ControlPlane {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub bin: PathBuf,
    pub env: HashMap<String, String>,
}

static SHARED: OnceLock<ControlPlane> = OnceLock::new();
static CRDS: OnceLock<()> = OnceLock::new();

fn run_script(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Builds the pinned control plane binaries when they are missing (a no-op when they are
/// cached) and returns their directory.
fn control_plane_binaries(cp: &Path) -> PathBuf {
    run_script(
        Command::new(cp.join("build.sh")).env("SUPPORTGATE_CACHE", cache_root()),
        "building the control plane (hack/controlplane/build.sh)",
    );
    let out = run_script(
        Command::new(cp.join("build.sh"))
            .arg("--print")
            .env("SUPPORTGATE_CACHE", cache_root()),
        "build.sh --print",
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
}

/// The `KEY=value` lines `up` writes to DIR/env.
fn read_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim_start_matches("export ").to_string(),
                v.trim_matches('"').to_string(),
            )
        })
        .collect()
}

/// The last `n` lines of a log file (empty when it is missing).
fn tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl ControlPlane {
    /// The control plane of this test binary, started on first use.
    pub fn shared() -> &'static ControlPlane {
        SHARED.get_or_init(ControlPlane::start)
    }

    fn start() -> ControlPlane {
        let cp = repo().join("hack/controlplane");
        let bin = control_plane_binaries(&cp);
        let dir = tempfile::Builder::new()
            .prefix("supportgate-e2e-")
            .tempdir()
            .expect("temp dir")
            .keep();
        // Before `up`: a binary killed while `up` runs must not leave what `up` started so far.
        watchdog::spawn(&cp.join("down"), &dir);
        let out = Command::new(cp.join("up"))
            .arg("--dir")
            .arg(&dir)
            .arg("--bin")
            .arg(&bin)
            .arg("--timeout")
            .arg("180")
            .output()
            .expect("run hack/controlplane/up");
        if !out.status.success() {
            panic!(
                "the test control plane did not start ({}); this end-to-end test needs a real kube-apiserver and fails without one. Its directory is kept: {}\n--- up stderr\n{}\n--- kube-apiserver.log (last 40 lines)\n{}",
                out.status,
                dir.display(),
                String::from_utf8_lossy(&out.stderr),
                tail(&dir.join("kube-apiserver.log"), 40)
            );
        }
        let env = read_env(&dir.join("env"));
        ControlPlane {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            bin,
            env,
        }
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    pub fn api_url(&self) -> String {
        self.env
            .get("APISERVER_URL")
            .cloned()
            .expect("APISERVER_URL in the control plane's env file")
    }

    /// An admin client.
    pub async fn client(&self) -> Client {
        client_for(&self.kubeconfig).await
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_in(args, None)
    }

    pub fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.kubectl_as(&self.kubeconfig, args, stdin)
    }

    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(self.tool("kubectl"));
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .current_dir(repo());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("kubectl")
    }

    /// Runs kubectl and panics with its output unless it succeeds.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.kubectl_in(args, stdin);
        assert!(
            o.status.success(),
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Installs `crds/` (the project's CRDs) once per test binary and waits until established.
    pub fn install_crds(&self) {
        CRDS.get_or_init(|| {
            self.kubectl_ok(&["apply", "--server-side", "-f", "crds/"], None);
            self.kubectl_ok(
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    "crd/supportpolicies.supportgate.dev",
                ],
                None,
            );
        });
    }

    /// Applies CRD manifests (e.g. test fixtures) and waits until they are established.
    pub fn install_crd_files(&self, path: &str) {
        self.kubectl_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", path],
            None,
        );
        self.kubectl_ok(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "-f",
                path,
            ],
            None,
        );
    }

    pub fn create_namespace(&self, name: &str) {
        let o = self.kubectl(&["create", "namespace", name]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() || err.contains("AlreadyExists"),
            "create namespace {name}: {err}"
        );
    }

    /// Writes a kubeconfig that authenticates with a bearer token (e.g. a ServiceAccount's).
    pub fn token_kubeconfig(&self, token: &str, path: &Path) {
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("admin kubeconfig");
        let ca = admin
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
            .expect("certificate-authority-data in the admin kubeconfig")
            .trim()
            .to_string();
        let kc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: token\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context: {{cluster: test, user: token}}\ncurrent-context: test\n",
            self.api_url()
        );
        std::fs::write(path, kc).expect("write kubeconfig");
    }

    /// Writes to `path` a kubeconfig of the ServiceAccount `ns/sa` (a one-hour TokenRequest
    /// token).
    pub fn service_account_kubeconfig(&self, ns: &str, sa: &str, path: &Path) {
        let token = self.kubectl_ok(&["-n", ns, "create", "token", sa, "--duration=1h"], None);
        self.token_kubeconfig(token.trim(), path);
    }

    pub fn audit_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default()
    }
}

pub async fn client_for(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig to config");
    Client::try_from(config).expect("client")
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_explained(timeout, what, String::new, f).await
}

/// [`eventually`], and on timeout the panic also says what `explain` returns then (the last
/// answer seen, a process's log).
pub async fn eventually_explained<T, F, Fut, E>(
    timeout: Duration,
    what: &str,
    explain: E,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
    E: FnOnce() -> String,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                explain()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `check` (which asserts) again and again until `window` has passed, the last time after
/// it: for what must *not* happen (a write nobody may make), which one look after a sleep would
/// catch only when it happened early enough.
pub async fn holds_for<F, Fut>(window: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    loop {
        check().await;
        if start.elapsed() >= window {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A loopback port that was free a moment ago, taken from below the kernel's ephemeral range
/// (`ip_local_port_range`, 32768 and up by default).
///
/// Why not `bind(:0)`: that hands out an ephemeral port, and between this call and the moment
/// the process under test binds it, any outgoing connection (the operators' own connections to
/// kube-apiserver, six of them starting at once in e2e_supervision) can be given the same port
/// by the kernel: "Address already in use". The kernel never picks a port below the ephemeral
/// range on its own, so only another explicit bind can take one of these. Each process walks
/// 10000..20000 from its own offset and never hands out a port twice; hack/controlplane/up
/// takes its ports from 20000..32000, so the two never meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 10_000;
    // Spread the test binaries (and parallel CI clones) over the range; a stride coprime with
    // SPAN visits every port once before repeating.
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        AtomicU32::new((std::process::id().wrapping_mul(2_654_435_761) ^ nanos) % SPAN)
    });
    for _ in 0..SPAN {
        let n = next.fetch_add(7_919, Ordering::Relaxed) % SPAN;
        let port = (LOW + n) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN);
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
