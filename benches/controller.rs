//! Controller convergence through a real API server.
//!
//! For N KonvoyClusters (default 1,000 and 10,000; `SG_BENCH_OBJECTS=1000,10000`):
//! - baseline: the raw rate at which the same API server takes N plain status merge patches
//!   (16 in flight, the controller's default concurrency);
//! - the time until supportgate has put a `Supported` condition on all N (cold start), and the
//!   time until all N carry the new verdict after a policy change (Konvoy 1.9 released);
//! - the peak RSS of the supportgate process (VmHWM) with all N watched.
//!
//! With `SG_BENCH_CONTROLLER_BASELINE=<path to another supportgate binary>`, that build runs
//! first on the same API server, and the bench prints this build's ratios to it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use kube::Api;
use kube::api::{
    DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::operator::{CertFiles, Operator};
use support::{ControlPlane, free_port};
use supportgate::engine::policy::DEFAULT_POLICY_YAML;

const IN_FLIGHT: usize = 16;

fn ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters",
    )
}

fn cluster(ns: &str, i: usize) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
        "metadata": {"name": format!("c{i:05}"), "namespace": ns},
        "spec": {"provisioner": {"provider": "aws", "version": "v1.6.3"}, "cluster": {
            "kubernetes": {"version": "1.18.13"},
            "addons": [
                {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons", "configVersion": "stable-1.18-3.3.0",
                 "addonsList": [{"name": "prometheus", "enabled": true}, {"name": "traefik", "enabled": true}]},
                {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander", "configVersion": "stable-1.18-1.2.2",
                 "addonsList": [{"name": "kommander", "enabled": true}]}]}}
    }))
    .expect("fixture")
}

fn reason_of(o: &DynamicObject) -> Option<String> {
    o.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Supported")
        .and_then(|c| c["reason"].as_str().map(String::from))
}

/// Waits on a watch (not by listing, which would load the API server being measured) until all
/// `n` objects carry `reason`.
async fn wait_all(api: &Api<DynamicObject>, n: usize, reason: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut done = std::collections::HashSet::new();
    let stream = watcher::watcher(api.clone(), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => {
                    let name = o.metadata.name.clone().unwrap_or_default();
                    if reason_of(&o).as_deref() == Some(reason) { done.insert(name); } else { done.remove(&name); }
                    if done.len() >= n { return start.elapsed(); }
                }
                Some(_) => {}
                None => panic!("watch ended"),
            },
            _ = &mut deadline => panic!("{n} objects did not reach {reason} within {limit:?} ({} did)", done.len()),
        }
    }
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the parenthesised name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    match (field(14), field(15)) {
        (Some(u), Some(s)) => (u + s) / tick,
        _ => f64::NAN,
    }
}

/// Where the 2 cores go during a phase: supportgate, kube-apiserver and etcd (the control
/// plane's pids file, `name pid` per line).
struct CpuSplit {
    pids: Vec<(String, u32)>,
    start: Vec<f64>,
}

impl CpuSplit {
    fn start(cp: &ControlPlane, supportgate: u32) -> CpuSplit {
        let listed = std::fs::read_to_string(cp.dir.join("pids")).unwrap_or_default();
        let mut pids = vec![("supportgate".to_string(), supportgate)];
        pids.extend(listed.lines().filter_map(|l| {
            let (name, pid) = l.split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        }));
        let start = pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
        CpuSplit { pids, start }
    }

    /// "supportgate 0.41 cores, kube-apiserver 1.12, etcd 0.30" over `wall`.
    fn report(&self, wall: Duration) -> String {
        self.pids
            .iter()
            .zip(&self.start)
            .map(|((name, pid), s)| {
                format!("{name} {:.2}", (cpu_seconds(*pid) - s) / wall.as_secs_f64())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn policy_with_19() -> String {
    DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x, default: 1.21.2}\n    kommander: \"1.5\"\n",
    )
}

/// A build of supportgate to measure: this one, or a baseline build named by
/// `SG_BENCH_CONTROLLER_BASELINE` (a binary path), run first against the same API server.
struct Build {
    label: String,
    bin: PathBuf,
}

fn builds() -> Vec<Build> {
    let mut out = Vec::new();
    if let Some(bin) = std::env::var_os("SG_BENCH_CONTROLLER_BASELINE") {
        out.push(Build {
            label: format!("baseline ({})", PathBuf::from(&bin).display()),
            bin: bin.into(),
        });
    }
    out.push(Build {
        label: "this build".into(),
        bin: env!("CARGO_BIN_EXE_supportgate").into(),
    });
    out
}

/// What one build did with `n` objects.
struct Figures {
    raw: f64,
    cold: f64,
    changed: f64,
    rss_cold: f64,
    rss: f64,
}

async fn create_all(api: &Arc<Api<DynamicObject>>, ns: &str, n: usize) -> Duration {
    let start = Instant::now();
    stream::iter(0..n)
        .for_each_concurrent(IN_FLIGHT, |i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &cluster(ns, i))
                    .await
                    .expect("create");
            }
        })
        .await;
    start.elapsed()
}

/// Baseline: N plain status patches at the same concurrency.
async fn raw_patches(api: &Arc<Api<DynamicObject>>, n: usize) -> Duration {
    let start = Instant::now();
    stream::iter(0..n)
        .for_each_concurrent(IN_FLIGHT, |i| {
            let api = api.clone();
            async move {
                let p = json!({"status": {"phase": "Provisioned"}});
                api.patch_status(
                    &format!("c{i:05}"),
                    &PatchParams::default(),
                    &Patch::Merge(&p),
                )
                .await
                .expect("patch");
            }
        })
        .await;
    start.elapsed()
}

async fn run(cp: &ControlPlane, n: usize, build: &Build) -> Figures {
    let ns = format!("bench-{n}");
    cp.create_namespace(&ns);
    let client = cp.client().await;
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ar());
    let api = Arc::new(api);
    let created = create_all(&api, &ns, n).await;
    let raw = raw_patches(&api, n).await;

    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    let certs = CertFiles::new();
    let extra = ["--no-leader-election"];
    let mut op =
        Operator::start_binary(cp, &build.bin, &cp.kubeconfig, &certs, free_port(), &extra);
    op.wait_ready().await;
    let pid = op.child.id();
    let limit = Duration::from_secs(60 + n as u64 / 20);
    let split = CpuSplit::start(cp, pid);
    let cold = wait_all(&api, n, "KonvoyNearingEnd", limit).await;
    let cpu_cold = split.report(cold);
    let rss_cold = peak_rss_mib(pid);

    let split = CpuSplit::start(cp, pid);
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy_with_19()));
    let changed = wait_all(&api, n, "KonvoyUnsupported", limit).await;
    let cpu_changed = split.report(changed);
    let rss = peak_rss_mib(pid);
    drop(op);
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    // The next build starts from objects that carry no verdict.
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete the objects");

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("objects: {n}, {}", build.label);
    println!(
        "  create {n} KonvoyClusters ({IN_FLIGHT} in flight):   {:>8.2} s  {:>8.0} /s",
        created.as_secs_f64(),
        rate(created)
    );
    println!(
        "  baseline: {n} raw status patches:           {:>8.2} s  {:>8.0} /s",
        raw.as_secs_f64(),
        rate(raw)
    );
    println!(
        "  supportgate cold start, all conditioned:  {:>8.2} s  {:>8.0} /s  ({:.0}% of raw patch rate)",
        cold.as_secs_f64(),
        rate(cold),
        100.0 * rate(cold) / rate(raw)
    );
    println!(
        "  after a policy change, all converged:     {:>8.2} s  {:>8.0} /s  ({:.0}% of raw patch rate)",
        changed.as_secs_f64(),
        rate(changed),
        100.0 * rate(changed) / rate(raw)
    );
    println!("  cores used during the cold start: {cpu_cold}");
    println!("  cores used after the change:      {cpu_changed}");
    println!(
        "  supportgate peak RSS: {rss_cold:.1} MiB after the cold start, {rss:.1} MiB after the change"
    );
    Figures {
        raw: rate(raw),
        cold: rate(cold),
        changed: rate(changed),
        rss_cold,
        rss,
    }
}

fn compare(n: usize, base: &Figures, this: &Figures) {
    println!("objects: {n}, this build / baseline (same run)");
    println!(
        "  cold start {:.2}x, after a change {:.2}x (raw patch rate {:.2}x); peak RSS {:.2}x cold, {:.2}x after the change",
        this.cold / base.cold,
        this.changed / base.changed,
        this.raw / base.raw,
        this.rss_cold / base.rss_cold,
        this.rss / base.rss
    );
}

fn main() {
    // `cargo test --benches` runs benchmarks in test mode: do nothing there.
    if std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("SG_BENCH_OBJECTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cp = ControlPlane::shared();
        cp.install_crds();
        cp.install_crd_files("tests/fixtures/crds/");
        println!("== supportgate controller convergence benchmark ==");
        println!(
            "machine: {} cores; control plane kube-apiserver v1.36.3 + etcd on loopback, same machine",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let builds = builds();
        for n in sizes {
            let mut figures = Vec::new();
            for b in &builds {
                figures.push(run(cp, n, b).await);
            }
            if let [base, this] = &figures[..] {
                compare(n, base, this);
            }
        }
    });
}
