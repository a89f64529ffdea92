//! A single-node cluster per test binary (`hack/controlplane/up --node`): etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, containerd, kubelet and kube-proxy in network, PID
//! and mount namespaces of their own. The test process reaches the apiserver through a
//! loopback port forward into that network namespace (DIR/kubeconfig).
//!
//! Lifetime: `up --node --lifeline` ties the node to a pipe whose only writer is this process.
//! However the process ends (panic, abort, SIGKILL of its process group), the kernel closes
//! the pipe, the node's init sees end of file, kills everything in its namespaces (containers
//! included) and removes the pods' cgroups; its mounts and network namespace vanish with it.
//! When the node cannot start, the test fails with the kubelet's and containerd's logs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub struct Node {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub bin: PathBuf,
}

static NODE: OnceLock<Node> = OnceLock::new();
/// The write end of the node's lifeline; never written to, never closed while we live.
static LIFELINE: OnceLock<std::io::PipeWriter> = OnceLock::new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cache_root() -> PathBuf {
    std::env::var_os("SUPPORTGATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache"))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Node {
    /// The node of this test binary, started on first use.
    pub fn shared() -> &'static Node {
        NODE.get_or_init(Node::start)
    }

    fn start() -> Node {
        let cp = repo().join("hack/controlplane");
        let built = Command::new(cp.join("build.sh"))
            .env("SUPPORTGATE_CACHE", cache_root())
            .output()
            .expect("run hack/controlplane/build.sh");
        assert!(built.status.success(), "build.sh failed:\n{}", text(&built));
        let printed = Command::new(cp.join("build.sh"))
            .arg("--print")
            .env("SUPPORTGATE_CACHE", cache_root())
            .output()
            .expect("build.sh --print");
        let bin = PathBuf::from(String::from_utf8_lossy(&printed.stdout).trim());
        let dir = tempfile::Builder::new()
            .prefix("supportgate-node-e2e-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let (reader, writer) = std::io::pipe().expect("lifeline pipe");
        assert!(LIFELINE.set(writer).is_ok(), "one node per test binary");
        let out = Command::new(cp.join("up"))
            .args(["--node", "--lifeline", "--timeout", "300"])
            .arg("--dir")
            .arg(&dir)
            .arg("--bin")
            .arg(&bin)
            .env("SUPPORTGATE_CACHE", cache_root())
            .stdin(reader)
            .output()
            .expect("run hack/controlplane/up --node");
        let node = Node {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            bin,
        };
        assert!(
            out.status.success(),
            "the test node did not start ({}); this test needs a node that runs pods and fails without one.\n--- up --node\n{}\n{}",
            out.status,
            text(&out),
            node.logs()
        );
        node
    }

    /// Asks the node to delete its whole directory when it stops (a passing test calls
    /// this; after a failure the logs stay for inspection).
    pub fn remove_on_stop(&self) {
        std::fs::write(self.dir.join(".remove-on-stop"), b"").expect("write .remove-on-stop");
    }

    /// The last lines of the node's logs, for failure messages.
    pub fn logs(&self) -> String {
        [
            "init",
            "containerd",
            "kubelet",
            "kube-proxy",
            "kube-apiserver",
        ]
        .iter()
        .map(|name| {
            let path = self.dir.join("logs").join(format!("{name}.log"));
            format!(
                "--- {} (last 40 lines)\n{}",
                path.display(),
                tail(&path, 40)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(self.tool(tool));
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"))
            .args(args)
            .current_dir(repo())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect(tool)
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run("kubectl", args, stdin)
    }

    /// Runs kubectl and panics with its output (and the node's logs) unless it succeeds.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.kubectl(args, stdin);
        assert!(
            o.status.success(),
            "kubectl {} failed:\n{}",
            args.join(" "),
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn helm(&self, args: &[&str]) -> Output {
        self.run("helm", args, None)
    }

    pub fn helm_ok(&self, args: &[&str]) -> String {
        let o = self.helm(args);
        assert!(
            o.status.success(),
            "helm {} failed:\n{}",
            args.join(" "),
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Imports an OCI archive into the node's containerd (the namespace the kubelet uses).
    pub fn import_image(&self, archive: &Path) {
        let o = Command::new("ctr")
            .arg("--address")
            .arg(self.dir.join("containerd/containerd.sock"))
            .args(["-n", "k8s.io", "images", "import"])
            .arg(archive)
            .output()
            .expect("run ctr");
        assert!(
            o.status.success(),
            "ctr images import failed:\n{}",
            text(&o)
        );
    }
}

/// A client for the node's apiserver (through the loopback port forward).
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig to config");
    kube::Client::try_from(config).expect("client")
}
