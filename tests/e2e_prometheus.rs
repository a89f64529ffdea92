//! End to end: observability as operators use it. A real Prometheus (Debian's package, on
//! loopback only) scrapes a real `supportgate run` against the real kube-apiserver, with the
//! chart's alert rules loaded; its HTTP API must show the fleet gauge, the out-of-support alert,
//! and data for every query of the shipped dashboard, and a SupportException's gauges and
//! expiry alert (gone once it is deleted). The chart's PrometheusRule, dashboard
//! ConfigMap and ServiceMonitor are rendered with the real `helm` and accepted by the API server.
//!
//! Set SUPPORTGATE_OBS_SAMPLES=<file> to write the dashboard queries with their results as
//! Markdown (docs/observability.md shows such a run).

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde::Deserialize as _;
use serde_json::{Value, json};
use support::operator::{CertFiles, Operator, http_get, post};
use support::{ControlPlane, eventually, free_port, repo, stderr, stdout};
use supportgate::base::metrics::{
    DropLabels, ErrorLabels, ExceptionLabels, ExceptionView, FleetLabels, Metrics,
    ObjectSupportLabels, PolicyInfoLabels, PolicyView, RuleLabels, VerdictLabels, WriteLabels,
};
use supportgate::engine::policy::DEFAULT_POLICY_YAML;
use supportgate::webhook::tls::generate_valid;

const NS: &str = "prometheus-e2e";
/// The namespace whose SupportExceptions the operator trusts (`--exception-namespace`).
const EXC_NS: &str = "prometheus-e2e-exc";
const EXC_FLAG: &str = "--exception-namespace=prometheus-e2e-exc";
/// Days until the test's SupportException expires: within the alert's 14 days.
const EXC_DAYS: i64 = 10;
const RULES: &str = "charts/supportgate/files/prometheus-rules.yaml";
const DASHBOARD: &str = "charts/supportgate/files/grafana-dashboard.json";
const WAIT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------- Prometheus

/// A Prometheus on 127.0.0.1 with its own temp dir; killed on drop, and by a watchdog when this
/// test process dies without dropping it.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target_port: u16, rules: &str) -> Prometheus {
        let bin = tool("prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("rules.yaml"), rules).expect("rules");
        // Loopback only: the one target is the supportgate under test.
        let config = format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}\n\
             rule_files: [rules.yaml]\n\
             scrape_configs:\n\
             - job_name: supportgate\n  honor_labels: true\n  static_configs:\n  - targets: ['127.0.0.1:{target_port}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        watchdog(child.id(), dir.path());
        Prometheus { child, port, dir }
    }

    /// Waits for `/-/ready`; fails with the log when Prometheus exits or never gets ready.
    async fn wait_ready(&mut self) {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", self.logs());
            }
            if let Ok((200, _)) = http_get(self.port, "/-/ready").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus not ready after 30 s:\n{}", self.logs());
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: the `data` of a successful answer; panics on an error answer.
    async fn query(&self, expr: &str) -> Value {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let (code, body) = http_get(self.port, &path).await.expect("query Prometheus");
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("Prometheus answered {code} {body}: {e}"));
        assert_eq!(
            (code, &v["status"]),
            (200, &json!("success")),
            "query {expr}: {body}"
        );
        v["data"].clone()
    }

    /// The query's vector result (empty while there is none).
    async fn vector(&self, expr: &str) -> Vec<Value> {
        let data = self.query(expr).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills `pid` and removes `dir` once this test process is gone; exits when `pid` exits first.
// Deliberately never waited for: it must outlive this process.
#[allow(clippy::zombie_processes)]
fn watchdog(pid: u32, dir: &Path) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do kill -0 {pid} 2>/dev/null || exit 0; sleep 1; done; \
         kill {pid} 2>/dev/null; sleep 2; kill -9 {pid} 2>/dev/null; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the prometheus watchdog");
}

/// A Debian `prometheus` package binary; a missing one fails the test with how to get it.
fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: `make deps` installs Debian's prometheus package")
    })
}

/// Percent-encoding for a query string value (RFC 3986 unreserved characters pass).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The rules the chart ships, with every `for:` shortened so that alerts fire within the test.
fn test_rules() -> String {
    let source = std::fs::read_to_string(repo().join(RULES)).expect("rules file");
    let shortened: Vec<String> = source
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 3s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect();
    assert!(
        shortened.iter().filter(|l| l.trim() == "for: 3s").count() >= 7,
        "every alert has a for:"
    );
    shortened.join("\n")
}

/// Every query of the dashboard: (panel title, refId, expr).
fn dashboard_queries() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(repo().join(DASHBOARD)).expect("dashboard");
    let d: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap_or("?").to_string(),
                t["refId"].as_str().unwrap_or("?").to_string(),
                t["expr"]
                    .as_str()
                    .expect("every target has an expr")
                    .to_string(),
            ));
        }
    }
    out
}

// ----------------------------------------------------------------------------- the fleet

fn cluster(name: &str, konvoy: &str, k8s: &str, kommander: &str) -> String {
    let minor = k8s.rsplit_once('.').map(|(m, _)| m).unwrap_or(k8s);
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {k8s}}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-{minor}-4.4.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-{minor}-{kommander}\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

/// The default policy with an end of support for 1.8 a year and a half from now: a date-driven
/// change for the policy gauges, and no change of verdicts today.
fn policy() -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let eos = today + jiff::Span::new().days(540);
    DEFAULT_POLICY_YAML.replace(
        "releaseDate: \"2021-05-05\"",
        &format!("releaseDate: \"2021-05-05\"\n    endOfSupport: \"{eos}\""),
    )
}

fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// A SupportException in the trusted namespace covering the cluster `dr`, expiring in
/// `EXC_DAYS` days.
fn exception() -> String {
    let expires = today() + jiff::Span::new().days(EXC_DAYS);
    format!(
        "apiVersion: supportgate.dev/v1alpha1\nkind: SupportException\nmetadata: {{name: legacy, namespace: {EXC_NS}}}\nspec:\n  reason: DR cluster, upgrade booked\n  expires: \"{expires}\"\n  rules: [konvoy-unsupported]\n  match: {{namespaces: [{NS}], names: [dr]}}\n"
    )
}

/// An AdmissionReview for a KonvoyCluster with Konvoy `konvoy`, posted to the webhook.
async fn review(op: &Operator, ca: &str, uid: &str, konvoy: &str) -> bool {
    let object: Value =
        serde_norway::from_str(&cluster(uid, konvoy, "1.20.13", "1.4.4")).expect("cluster");
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
        "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
        "name": uid, "namespace": NS, "operation": "CREATE", "userInfo": {}, "object": object}});
    let (code, answer, _) = post(
        op.webhook_port,
        ca,
        "/validate",
        serde_json::to_vec(&body).unwrap(),
    )
    .await
    .expect("post a review");
    assert_eq!(code, 200, "{answer}");
    let v: Value = serde_json::from_str(&answer).expect("an AdmissionReview");
    v["response"]["allowed"].as_bool().expect("allowed")
}

/// Reviews that the counters, the latency histogram and the denials by rule see.
async fn traffic(op: &Operator, ca: &str, round: u32) {
    for i in 0..3 {
        assert!(
            !review(op, ca, &format!("r{round}-{i}-old"), "v1.5.6").await,
            "1.5 is denied"
        );
        assert!(
            review(op, ca, &format!("r{round}-{i}-new"), "v1.8.5").await,
            "1.8 is allowed"
        );
    }
}

#[tokio::test]
async fn a_real_prometheus_sees_the_fleet_the_alert_and_every_dashboard_query() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("crds/supportgate.dev_supportexceptions.yaml");
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);
    cp.create_namespace(EXC_NS);
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy()));
    // An unsupported cluster under a SupportException that expires in 10 days. The exception
    // exists before supportgate starts, so `dr` is never counted as denied.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&exception()));
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&cluster("dr", "v1.5.6", "1.17.17", "1.1.5")),
    );
    // No webhook is registered: the unsupported cluster exists, as one created before
    // supportgate was installed does.
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&cluster("old", "v1.5.6", "1.17.17", "1.1.5")),
    );
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&cluster("current", "v1.8.5", "1.20.13", "1.4.4")),
    );

    // A serving certificate that expires in 20 days, for the expiry gauge.
    let mut certs = CertFiles::new();
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    certs.generated = generate_valid(
        &["127.0.0.1", "localhost"],
        "supportgate-test-ca",
        Some(today + jiff::Span::new().days(20)),
    )
    .expect("certs");
    certs.write(&certs.generated.cert_pem, &certs.generated.key_pem);
    let mut op = Operator::start(
        cp,
        &certs,
        &["--no-leader-election", "--object-metrics", EXC_FLAG],
    );
    op.wait_ready().await;
    let mut prom = Prometheus::start(op.health_port, &test_rules());
    prom.wait_ready().await;
    let ca = certs.generated.ca_pem.clone();

    the_fleet_gauge_shows_the_cluster(&prom, &op).await;
    the_alert_fires_and_the_others_stay_silent(&prom).await;
    the_exception_shows_with_its_expiry_and_alert(&prom, &op).await;
    traffic(&op, &ca, 1).await;
    // Two scrapes with the counters moving in between: every rate() has two points.
    wait_scrapes(&prom, 3).await;
    traffic(&op, &ca, 2).await;
    wait_scrapes(&prom, 3).await;
    every_dashboard_query_returns_data(&prom, &op).await;
    drop(prom);
    the_fleet_is_right_again_after_a_restart(cp, op, &certs).await;
}

/// The fleet gauges come from the verdicts a controller records, not from counters: a new
/// process publishes the fleet as it is, including what changed while none ran.
async fn the_fleet_is_right_again_after_a_restart(
    cp: &ControlPlane,
    op: Operator,
    certs: &CertFiles,
) {
    drop(op);
    // While no supportgate runs, a second unsupported cluster appears.
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&cluster("old2", "v1.5.6", "1.17.17", "1.1.5")),
    );
    let mut op = Operator::start(cp, certs, &["--no-leader-election", EXC_FLAG]);
    op.wait_ready().await;
    let denied = format!(
        "supportgate_objects{{kind=\"KonvoyCluster\",namespace=\"{NS}\",verdict=\"denied\",reason=\"KonvoyUnsupported\"}} "
    );
    // Both denied clusters, counted once each (the process saw each one once).
    let text = eventually(
        WAIT,
        "the fleet gauge to show 2 after a restart",
        || async {
            let (_, text) = http_get(op.health_port, "/metrics").await.ok()?;
            let value = text.lines().find_map(|l| l.strip_prefix(&denied))?;
            (value == "2").then_some(text)
        },
    )
    .await;
    assert!(
        !text.contains("supportgate_object_support{"),
        "per-object series are off without --object-metrics: {text}"
    );
    // The exception's gauges come back too: they are computed from the new process's view.
    let covers =
        format!("supportgate_exception_objects{{namespace=\"{EXC_NS}\",exception=\"legacy\"}} 1");
    eventually(WAIT, "the exception gauge after a restart", || async {
        let (_, text) = http_get(op.health_port, "/metrics").await.ok()?;
        text.lines().any(|l| l == covers).then_some(())
    })
    .await;
    // Deleting them removes the series. A deleted object is never reconciled: let the status
    // passes that the restart started settle first, so that only the deletion can wake the next.
    tokio::time::sleep(Duration::from_secs(4)).await;
    cp.kubectl_ok(&["-n", NS, "delete", "konvoycluster", "old", "old2"], None);
    eventually(WAIT, "the denied series to go", || async {
        let (_, text) = http_get(op.health_port, "/metrics").await.ok()?;
        let allowed = format!("namespace=\"{NS}\",verdict=\"allowed\"");
        (!text.contains(&denied) && text.contains(&allowed)).then_some(())
    })
    .await;
    the_deleted_exception_series_go(cp, &op, &denied).await;
}

/// Deleting the SupportException removes every one of its series, and the cluster it covered
/// is denied again.
async fn the_deleted_exception_series_go(cp: &ControlPlane, op: &Operator, denied: &str) {
    let ours = format!("{{namespace=\"{EXC_NS}\",exception=\"legacy\"}}");
    let (_, text) = http_get(op.health_port, "/metrics").await.expect("metrics");
    assert_eq!(
        text.lines().filter(|l| l.contains(&ours)).count(),
        4,
        "objects, ready, expiry and days while it exists: {text}"
    );
    cp.kubectl_ok(
        &["-n", EXC_NS, "delete", "supportexception", "legacy"],
        None,
    );
    let text = eventually(WAIT, "the exception's series to go", || async {
        let (_, text) = http_get(op.health_port, "/metrics").await.ok()?;
        let dr_denied = text.lines().any(|l| l == format!("{denied}1"));
        // Nor does the policy's next change count it any more.
        let counted = text.contains("change=\"exception_expiry\"");
        (!text.contains("exception=\"legacy\"") && dr_denied && !counted).then_some(text)
    })
    .await;
    assert!(
        text.contains(
            "supportgate_policy_next_change_days{policy=\"default\",change=\"nearing_end\"} 450"
        ),
        "{text}"
    );
}

/// Waits until Prometheus has scraped `n` more times.
async fn wait_scrapes(prom: &Prometheus, n: u32) {
    let count = |v: Vec<Value>| {
        v.first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let q = "count_over_time(up{job=\"supportgate\"}[10m])";
    let start = count(prom.vector(q).await);
    eventually(WAIT, "more scrapes", || async {
        (count(prom.vector(q).await) >= start + f64::from(n)).then_some(())
    })
    .await;
}

async fn the_fleet_gauge_shows_the_cluster(prom: &Prometheus, op: &Operator) {
    let q = format!(
        "supportgate_objects{{job=\"supportgate\", kind=\"KonvoyCluster\", namespace=\"{NS}\", verdict=\"denied\"}}"
    );
    let series = eventually(WAIT, "the fleet gauge in Prometheus", || async {
        let v = prom.vector(&q).await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(series.len(), 1, "{series:?}\n{}", op.logs());
    assert_eq!(series[0]["metric"]["reason"], "KonvoyUnsupported");
    assert_eq!(series[0]["value"][1], "1", "one unsupported cluster");
    let allowed = prom
        .vector(&format!(
            "supportgate_objects{{namespace=\"{NS}\", verdict=\"allowed\"}}"
        ))
        .await;
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(allowed[0]["value"][1], "1", "one supported cluster");
    // The per-object series (--object-metrics) names it with its versions.
    let named = prom
        .vector(&format!(
            "supportgate_object_support{{namespace=\"{NS}\", verdict=\"denied\"}}"
        ))
        .await;
    assert_eq!(named.len(), 1, "{named:?}");
    let m = &named[0]["metric"];
    assert_eq!(
        (
            &m["name"],
            &m["rule"],
            &m["konvoy_version"],
            &m["kubernetes_version"]
        ),
        (
            &json!("old"),
            &json!("konvoy-unsupported"),
            &json!("v1.5.6"),
            &json!("1.17.17")
        ),
        "{m}"
    );
}

/// The exception's gauges, its part in the policy's next change, and its expiry alert.
async fn the_exception_shows_with_its_expiry_and_alert(prom: &Prometheus, op: &Operator) {
    let sel = format!("{{namespace=\"{EXC_NS}\", exception=\"legacy\"}}");
    let value = |v: &[Value]| v.first().map(|s| s["value"][1].clone());
    let covers = eventually(WAIT, "the exception gauge in Prometheus", || async {
        let v = prom
            .vector(&format!("supportgate_exception_objects{sel}"))
            .await;
        (value(&v) == Some(json!("1"))).then_some(v)
    })
    .await;
    assert_eq!(covers.len(), 1, "{covers:?}\n{}", op.logs());
    let expires = today() + jiff::Span::new().days(EXC_DAYS);
    let at = expires
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second();
    for (metric, want) in [
        ("supportgate_exception_ready", "1".to_string()),
        (
            "supportgate_exception_expiry_timestamp_seconds",
            at.to_string(),
        ),
        (
            "supportgate_exception_expires_in_days",
            EXC_DAYS.to_string(),
        ),
    ] {
        let v = prom.vector(&format!("{metric}{sel}")).await;
        assert_eq!(value(&v), Some(json!(want)), "{metric}: {v:?}");
    }
    // The cluster it covers is counted as warned (Excepted), not denied.
    let excepted = prom
        .vector(&format!(
            "supportgate_objects{{namespace=\"{NS}\", verdict=\"warned\", reason=\"Excepted\"}}"
        ))
        .await;
    assert_eq!(value(&excepted), Some(json!("1")), "{excepted:?}");
    // Its expiry is the policy's next date-driven change (before the end of support in 450 days).
    let next = prom
        .vector("supportgate_policy_next_change_days{policy=\"default\"}")
        .await;
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(
        (&next[0]["metric"]["change"], &next[0]["value"][1]),
        (&json!("exception_expiry"), &json!(EXC_DAYS.to_string())),
        "{next:?}"
    );
    let q = "ALERTS{alertname=\"SupportgateExceptionExpiringSoon\", alertstate=\"firing\"}";
    eventually(WAIT, "SupportgateExceptionExpiringSoon to fire", || async {
        (!prom.vector(q).await.is_empty()).then_some(())
    })
    .await;
    let alerts = prom_alerts(prom).await;
    let ours = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "SupportgateExceptionExpiringSoon")
        .expect("the alert in /api/v1/alerts");
    assert_eq!(
        (
            &ours["labels"]["namespace"],
            &ours["labels"]["exception"],
            &ours["labels"]["severity"]
        ),
        (&json!(EXC_NS), &json!("legacy"), &json!("warning")),
        "{ours}"
    );
    let summary = ours["annotations"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(&format!("SupportException {EXC_NS}/legacy expires in 9d ")),
        "{summary}"
    );
    let description = ours["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("The 1 object(s) it covers"),
        "{description}"
    );
}

async fn the_alert_fires_and_the_others_stay_silent(prom: &Prometheus) {
    let q = format!("ALERTS{{alertname=\"SupportgateClusterOutOfSupport\", namespace=\"{NS}\"}}");
    let states = eventually(WAIT, "SupportgateClusterOutOfSupport to fire", || async {
        let v = prom.vector(&q).await;
        let states: Vec<String> = v
            .iter()
            .filter_map(|s| s["metric"]["alertstate"].as_str().map(str::to_string))
            .collect();
        states.iter().any(|s| s == "firing").then_some(v)
    })
    .await;
    let m = &states[0]["metric"];
    assert_eq!(
        (&m["kind"], &m["reason"], &m["severity"]),
        (
            &json!("KonvoyCluster"),
            &json!("KonvoyUnsupported"),
            &json!("warning")
        ),
        "{m}"
    );
    // The annotations are rendered from the real series.
    let alerts = prom_alerts(prom).await;
    let ours = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "SupportgateClusterOutOfSupport")
        .expect("the alert in /api/v1/alerts");
    assert_eq!(
        ours["annotations"]["summary"],
        format!("1 KonvoyCluster object(s) in {NS} are out of support (KonvoyUnsupported)")
    );
    // The certificate's expiry, as the file says (20 days, at midnight UTC).
    let left = prom
        .vector("supportgate_certificate_expires_in_seconds")
        .await;
    let left: f64 = left[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (19.0 * 86_400.0..=20.0 * 86_400.0).contains(&left),
        "{left} s left"
    );
    // A ready webhook, a valid policy and a certificate with 20 days left: those stay silent.
    for silent in [
        "SupportgateWebhookDown",
        "SupportgatePolicyInvalid",
        "SupportgateCertificateExpiringSoon",
        "SupportgateWebhookErrors",
        "SupportgateSupportEndingSoon",
    ] {
        assert!(
            !alerts.iter().any(|a| a["labels"]["alertname"] == silent),
            "{silent} fired: {alerts:?}"
        );
    }
}

async fn prom_alerts(prom: &Prometheus) -> Vec<Value> {
    let (code, body) = http_get(prom.port, "/api/v1/alerts").await.expect("alerts");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["data"]["alerts"].as_array().cloned().unwrap_or_default()
}

async fn every_dashboard_query_returns_data(prom: &Prometheus, op: &Operator) {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    let mut md = String::new();
    for (panel, ref_id, expr) in &queries {
        let result = prom.vector(expr).await;
        assert!(
            !result.is_empty(),
            "panel {panel:?} query {ref_id} returned no data: {expr}\n{}\n{}",
            prom.logs(),
            op.logs()
        );
        let _ = writeln!(md, "#### {panel} ({ref_id})\n\n```promql\n{expr}\n```\n");
        for s in result.iter().take(4) {
            let _ = writeln!(md, "    {} => {}", s["metric"], s["value"][1]);
        }
        if result.len() > 4 {
            let _ = writeln!(md, "    ... {} series in all", result.len());
        }
        md.push('\n');
    }
    // Rates saw the traffic: the denial rule and both verdicts.
    let denials = prom
        .vector("sum by (rule) (rate(supportgate_admission_violations_total{severity=\"deny\"}[5m])) > 0")
        .await;
    assert!(
        denials
            .iter()
            .any(|s| s["metric"]["rule"] == "konvoy-unsupported"),
        "{denials:?}"
    );
    let p99 = prom
        .vector("histogram_quantile(0.99, sum by (le) (rate(supportgate_admission_duration_seconds_bucket[5m])))")
        .await;
    let p99: f64 = p99[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(p99 > 0.0 && p99 < 1.0, "p99 {p99}");
    if let Some(path) = std::env::var_os("SUPPORTGATE_OBS_SAMPLES") {
        std::fs::write(path, md).expect("write the samples");
    }
}

// ------------------------------------------------------------------------------- the README

/// Every metric has HELP text and a row in the README's metrics table.
#[test]
fn every_metric_has_help_and_is_listed_in_the_readme() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let m = Metrics::new();
    // Families without a series print nothing: give each one a series.
    m.admission_requests
        .get_or_create(&VerdictLabels {
            verdict: "allowed",
            operation: "CREATE",
        })
        .inc();
    m.admission_violations
        .get_or_create(&RuleLabels {
            rule: "prerelease",
            severity: supportgate::engine::rules::Severity::Warn,
        })
        .inc();
    m.admission_errors
        .get_or_create(&ErrorLabels { kind: "malformed" })
        .inc();
    m.status_write_retries
        .get_or_create(&WriteLabels {
            kind: "KonvoyCluster".into(),
        })
        .inc();
    m.events_dropped
        .get_or_create(&DropLabels {
            reason: "queue_full",
        })
        .inc();
    let fleet = FleetLabels {
        kind: "K".into(),
        namespace: "n".into(),
        verdict: "allowed".into(),
        reason: "Supported".into(),
    };
    let one = ObjectSupportLabels {
        kind: "K".into(),
        namespace: "n".into(),
        name: "o".into(),
        verdict: "allowed".into(),
        rule: String::new(),
        konvoy_version: String::new(),
        kubernetes_version: String::new(),
    };
    m.observed
        .set_fleet([(fleet, 1)].into(), Some([one].into()));
    m.observed.set_exceptions(vec![ExceptionView {
        labels: ExceptionLabels {
            namespace: "n".into(),
            exception: "x".into(),
        },
        objects: 1,
        ready: true,
        expires: Some(jiff::civil::date(2999, 1, 1)),
    }]);
    m.observed.set_policies(vec![PolicyView {
        info: PolicyInfoLabels {
            policy: "p".into(),
            product: String::new(),
            window: String::new(),
            latest: String::new(),
            supported: String::new(),
        },
        ready: true,
        next_change: Some(("release".into(), jiff::civil::date(2999, 1, 1))),
    }]);
    let text = m.encode();
    let mut n = 0;
    for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
        let rest = &line["# HELP ".len()..];
        let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
        assert!(!help.trim().is_empty(), "{name} has no HELP text");
        assert!(
            readme.contains(&format!("| `{name}")),
            "README.md does not list {name}"
        );
        n += 1;
    }
    assert!(n >= 20, "{text}");
}

// -------------------------------------------------------------------------------- the chart

fn helm(cp: &ControlPlane, sets: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("helm home");
    let mut args = vec![
        "template",
        "sg",
        "charts/supportgate",
        "--namespace",
        "obs-chart",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    Command::new(cp.tool("helm"))
        .args(&args)
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .current_dir(repo())
        .output()
        .expect("run helm")
}

fn render(cp: &ControlPlane, sets: &[&str]) -> Vec<Value> {
    let o = helm(cp, sets);
    assert!(o.status.success(), "helm template: {}", stderr(&o));
    serde_norway::Deserializer::from_str(&stdout(&o))
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

const MONITORING: [&str; 6] = [
    "metrics.serviceMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "prometheusRule.labels.release=kube-prometheus-stack",
    "prometheusRule.runbookBaseURL=https://docs.example.com/supportgate/observability",
    "grafanaDashboard.enabled=true",
    "objectMetrics.enabled=true",
];

#[tokio::test]
async fn the_chart_ships_the_rules_the_dashboard_and_the_monitor() {
    let cp = ControlPlane::shared();
    let off = render(cp, &[]);
    for kind in ["PrometheusRule", "ServiceMonitor"] {
        assert!(of_kind(&off, kind).is_empty(), "{kind} rendered by default");
    }
    assert!(
        !serde_json::to_string(&off)
            .unwrap()
            .contains("--object-metrics"),
        "per-object series are opt in"
    );
    assert!(
        !off.iter()
            .any(|d| d["metadata"]["labels"]["grafana_dashboard"] == "1"),
        "no dashboard by default"
    );

    let on = render(cp, &MONITORING);
    the_rule_is_the_source_file(&on);
    the_dashboard_is_the_source_file(&on);
    let sm = of_kind(&on, "ServiceMonitor");
    assert_eq!(sm[0]["spec"]["endpoints"][0]["honorLabels"], true);
    let deploy = of_kind(&on, "Deployment");
    let args = &deploy[0]["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--object-metrics")),
        "{args}"
    );

    // The API server accepts them (the PrometheusRule and ServiceMonitor CRDs are reduced
    // fixtures that keep the upstream field names and types, closed).
    cp.install_crd_files("tests/fixtures/crds-prometheus-operator/");
    cp.create_namespace("obs-chart");
    let objects: Vec<&Value> = on
        .iter()
        .filter(|d| {
            ["PrometheusRule", "ServiceMonitor", "ConfigMap", "Service"]
                .contains(&d["kind"].as_str().unwrap_or(""))
        })
        .collect();
    let yaml: String = objects
        .iter()
        .map(|d| format!("---\n{}", serde_norway::to_string(d).unwrap()))
        .collect();
    let o = cp.kubectl_in(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager=obs-e2e",
            "-f",
            "-",
        ],
        Some(&yaml),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("(server dry run)").count(),
        objects.len(),
        "{}",
        stdout(&o)
    );

    // Values the schema refuses.
    for bad in [
        "prometheusRule.runbookBaseURL=ftp://x",
        "grafanaDashboard.namespace=Not_A_Namespace",
        "objectMetrics.enabled=yes",
        "prometheusRule.bogus=1",
    ] {
        let o = helm(cp, &[bad]);
        assert!(!o.status.success(), "{bad} was accepted");
        assert!(stderr(&o).contains("schema"), "{bad}: {}", stderr(&o));
    }
}

/// The PrometheusRule's groups are the source file's, plus runbook_url; promtool accepts them.
fn the_rule_is_the_source_file(docs: &[Value]) {
    let rules = of_kind(docs, "PrometheusRule");
    assert_eq!(rules.len(), 1);
    let rule = rules[0];
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    let text = std::fs::read_to_string(repo().join(RULES)).unwrap();
    let mut source: Value = serde_norway::from_str(&text).unwrap();
    let mut alerts = 0;
    for g in source["groups"].as_array_mut().unwrap() {
        for r in g["rules"].as_array_mut().unwrap() {
            let anchor = r["alert"].as_str().unwrap().to_lowercase();
            r["annotations"]["runbook_url"] = json!(format!(
                "https://docs.example.com/supportgate/observability#{anchor}"
            ));
            alerts += 1;
        }
    }
    assert_eq!(alerts, 7);
    assert_eq!(rule["spec"], source, "the chart ships the tested rules");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, serde_norway::to_string(&rule["spec"]).unwrap()).unwrap();
    let o = Command::new(tool("promtool"))
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool");
    assert!(
        o.status.success() && stdout(&o).contains("SUCCESS: 7 rules found"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn the_dashboard_is_the_source_file(docs: &[Value]) {
    let cms: Vec<&Value> = of_kind(docs, "ConfigMap")
        .into_iter()
        .filter(|d| d["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    assert_eq!(cms.len(), 1, "one dashboard ConfigMap");
    let shipped: Value =
        serde_json::from_str(cms[0]["data"]["supportgate.json"].as_str().unwrap()).unwrap();
    let source: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join(DASHBOARD)).unwrap()).unwrap();
    assert_eq!(shipped, source);
    assert_eq!(shipped["uid"], "supportgate");
    // Grafana needs unique panel ids; panels that overlap on the 24-column grid are moved by
    // Grafana, not shown where the layout says.
    let panels = shipped["panels"].as_array().unwrap();
    let mut ids: Vec<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let cells = |p: &Value| {
        let g = &p["gridPos"];
        let n = |k: &str| g[k].as_i64().unwrap();
        assert!(
            n("x") + n("w") <= 24,
            "{} is wider than the grid",
            p["title"]
        );
        (n("x"), n("y"), n("x") + n("w"), n("y") + n("h"))
    };
    for (i, a) in panels.iter().enumerate() {
        for b in &panels[i + 1..] {
            let (ax0, ay0, ax1, ay1) = cells(a);
            let (bx0, by0, bx1, by1) = cells(b);
            let overlap = ax0 < bx1 && bx0 < ax1 && ay0 < by1 && by0 < ay1;
            assert!(!overlap, "{} overlaps {}", a["title"], b["title"]);
        }
    }
}
