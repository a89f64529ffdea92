//! End to end: a SupportException in the operator's namespace lets a refused cluster in with a
//! warning, the controller's condition says `Excepted`, the exception expires at midnight (the
//! operator's clock shifted by the hidden test flag, so midnight is seconds away) and the
//! condition flips with an `ExceptionExpired` event, without polling; an exception in an
//! untrusted namespace has no effect. The exception's gauges on `/metrics` follow it: one
//! covered object and a day left, then none and 0 days once it has expired; none at all for
//! the untrusted one.

mod support;

use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind};
use kube::core::ApiResource;
use serde_json::Value;
use support::operator::{CertFiles, Operator, http_get, unregister_webhook};
use support::{ControlPlane, eventually, holds_for, stderr};
use supportgate::api::SupportException;

const NS: &str = "exceptions-e2e";
const TRUSTED: &str = "supportgate-exc";
const UNTRUSTED: &str = "untrusted-exc";
const WAIT: Duration = Duration::from_secs(45);

/// A Konvoy 1.5 cluster: refused as unsupported, and nothing else wrong with it.
fn cluster(name: &str) -> String {
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  provisioner: {{provider: aws, version: v1.5.6}}\n  cluster:\n    kubernetes: {{version: 1.17.17}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-1.17-2.7.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-1.17-1.1.4\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

fn exception(namespace: &str, cluster: &str, expires: Date) -> String {
    format!(
        "apiVersion: supportgate.dev/v1alpha1\nkind: SupportException\nmetadata: {{name: legacy, namespace: {namespace}}}\nspec:\n  reason: DR cluster for ACME\n  expires: \"{expires}\"\n  rules: [konvoy-unsupported]\n  match: {{namespaces: [{NS}], names: [{cluster}]}}\n  versions: {{konvoy: [\"1.5\"]}}\n"
    )
}

const WEBHOOK: &str = "supportgate-exceptions-e2e";

fn supported(obj: &DynamicObject) -> Option<Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Supported")
        .cloned()
}

fn events_for(cp: &ControlPlane, name: &str) -> Vec<String> {
    cp.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
        ],
        None,
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// Waits until the operator's `/metrics` has every line of `want` (the exception `legacy`'s
/// gauges in the trusted namespace: objects covered, Ready, days left); returns the text.
async fn exception_gauges(op: &Operator, want: [(&str, i64); 3]) -> String {
    let lines: Vec<String> = want
        .iter()
        .map(|(metric, v)| {
            format!(
                "supportgate_exception_{metric}{{namespace=\"{TRUSTED}\",exception=\"legacy\"}} {v}"
            )
        })
        .collect();
    eventually(WAIT, "the exception's gauges", || async {
        let (_, text) = http_get(op.health_port, "/metrics").await.ok()?;
        lines
            .iter()
            .all(|l| text.lines().any(|t| t == l))
            .then_some(text)
    })
    .await
}

/// Seconds to add to the clock so that it reads `at` now.
fn offset_to(at: Timestamp) -> i64 {
    at.duration_since(Timestamp::now()).as_secs()
}

fn midnight_after(day: Date) -> Timestamp {
    day.tomorrow()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
}

/// The test's cluster: the KonvoyClusters of `NS`, the exceptions of `TRUSTED`, the
/// certificates the operator serves, and the day the test started.
struct Scene<'a> {
    cp: &'a ControlPlane,
    clusters: Api<DynamicObject>,
    exceptions: Api<SupportException>,
    certs: CertFiles,
    day: Date,
    expires: Date,
}

impl Scene<'_> {
    /// The operator, trusting `TRUSTED`, with its clock `offset` seconds ahead.
    fn start(&self, offset: i64) -> Operator {
        Operator::start(
            self.cp,
            &self.certs,
            &[
                "--no-leader-election",
                &format!("--namespace={TRUSTED}"),
                &format!("--test-clock-offset-seconds={offset}"),
            ],
        )
    }

    fn apply(&self, doc: &str) -> std::process::Output {
        self.cp.kubectl_in(&["apply", "-f", "-"], Some(doc))
    }
}

#[tokio::test]
async fn exceptions_admit_mark_expire_and_need_trust() {
    let cp = ControlPlane::shared();
    let s = scene(cp).await;
    // The operator's "today" is fixed at noon of the day the test starts, whatever the real time,
    // so the exception (expiring the next day) is active however long this phase takes.
    let noon = midnight_after(s.day) - SignedDuration::from_hours(12);
    let mut op = s.start(offset_to(noon));
    op.serve_admission(cp, &s.certs, WEBHOOK, NS, &cluster("old-west"))
        .await;

    a_trusted_exception_admits_with_a_warning(&s, &op).await;
    the_condition_and_the_status_stay_truthful(&s, &op).await;
    malformed_exceptions_are_refused_and_the_fields_documented(&s);
    an_untrusted_exception_has_no_effect(&s, &op).await;
    // Restart with the clock a few seconds before the expiry.
    drop(op);
    let mut op = the_exception_expires_at_its_day(&s).await;
    expired_it_covers_nothing(&s, &mut op).await;
    let _ = unregister_webhook(cp, WEBHOOK).await;
}

async fn scene(cp: &ControlPlane) -> Scene<'_> {
    cp.install_crds();
    cp.install_crd_files("crds/supportgate.dev_supportexceptions.yaml");
    cp.install_crd_files("tests/fixtures/crds/");
    for ns in [NS, TRUSTED, UNTRUSTED] {
        cp.create_namespace(ns);
    }
    let client = cp.client().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters",
    );
    let day = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    Scene {
        cp,
        clusters: Api::namespaced_with(client.clone(), NS, &ar),
        exceptions: Api::namespaced(client, TRUSTED),
        certs: CertFiles::new(),
        day,
        expires: day.tomorrow().unwrap(),
    }
}

async fn a_trusted_exception_admits_with_a_warning(s: &Scene<'_>, op: &Operator) {
    let expires = s.expires;
    let o = s.apply(&exception(TRUSTED, "old-west", expires));
    assert!(o.status.success(), "{}", stderr(&o));

    // The refused cluster is admitted with a warning naming the exception, once the operator
    // has seen it.
    let admitted = eventually(WAIT, "old-west admitted under the exception", || async {
        let o = s.apply(&cluster("old-west"));
        o.status.success().then(|| stderr(&o))
    })
    .await;
    assert!(
        admitted.contains("[konvoy-unsupported]")
            && admitted.contains(&format!(
                "excepted by SupportException {TRUSTED}/legacy until {expires}"
            )),
        "{admitted}\n{}",
        op.logs()
    );
}

async fn the_condition_and_the_status_stay_truthful(s: &Scene<'_>, op: &Operator) {
    let (clusters, exceptions, expires) = (&s.clusters, &s.exceptions, s.expires);
    // The condition stays truthful: unsupported, excepted, naming the exception and the date.
    let c = eventually(WAIT, "old-west Supported=False (Excepted)", || async {
        let c = supported(&clusters.get("old-west").await.ok()?)?;
        (c["status"] == "False" && c["reason"] == "Excepted").then_some(c)
    })
    .await;
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("{TRUSTED}/legacy until {expires}")),
        "{msg}"
    );
    eventually(WAIT, "the exception's status to count old-west", || async {
        let st = exceptions.get("legacy").await.ok()?.status?;
        let expired = st.conditions.iter().find(|c| c.type_ == "Expired")?;
        (st.covered == 1 && expired.status == "False").then_some(())
    })
    .await;
    // Expiring tomorrow, as the operator's shifted clock sees it.
    exception_gauges(op, [("objects", 1), ("ready", 1), ("expires_in_days", 1)]).await;
}

fn malformed_exceptions_are_refused_and_the_fields_documented(s: &Scene<'_>) {
    let expires = s.expires;
    // Malformed exceptions are refused by the CRD's schema and CEL rules.
    let good = exception(TRUSTED, "x", expires).replace("name: legacy,", "name: bad,");
    for (bad, want) in [
        (
            good.replace(
                "  match: {namespaces: [exceptions-e2e], names: [x]}\n",
                "  match: {}\n",
            ),
            "match.namespaces is required",
        ),
        (
            good.replace(
                "  match: {namespaces: [exceptions-e2e], names: [x]}\n",
                "  match: {names: [x]}\n",
            ),
            "match.namespaces is required",
        ),
        (
            good.replace("[konvoy-unsupported]", "[no-such-rule]"),
            "Unsupported value: \"no-such-rule\"",
        ),
        (
            good.replace("[konvoy-unsupported]", "[]"),
            "should have at least 1 items",
        ),
        (
            good.replace(&format!("  expires: \"{expires}\"\n"), ""),
            "spec.expires: Required value",
        ),
    ] {
        assert_ne!(bad, good);
        let o = s.apply(&bad);
        assert!(
            !o.status.success() && stderr(&o).contains(want),
            "{want}: {}",
            stderr(&o)
        );
    }

    // `kubectl explain` documents the fields.
    let explain = s.cp.kubectl_ok(&["explain", "supportexception.spec"], None);
    for want in [
        "reason",
        "expires",
        "rules",
        "match",
        "versions",
        "maxExceptionDays",
    ] {
        assert!(explain.contains(want), "{want} missing from:\n{explain}");
    }
}

/// The same exception in a namespace the operator does not trust: no effect.
async fn an_untrusted_exception_has_no_effect(s: &Scene<'_>, op: &Operator) {
    let o = s.apply(&exception(UNTRUSTED, "new-west", s.expires));
    assert!(o.status.success(), "{}", stderr(&o));
    holds_for(Duration::from_secs(2), || async {
        let o = s.apply(&cluster("new-west"));
        assert!(
            !o.status.success() && stderr(&o).contains("[konvoy-unsupported]"),
            "an untrusted exception must not apply: {}",
            stderr(&o)
        );
    })
    .await;
    let text = exception_gauges(op, [("objects", 1), ("ready", 1), ("expires_in_days", 1)]).await;
    assert!(
        !text.contains(&format!("namespace=\"{UNTRUSTED}\"")),
        "no series for an untrusted exception: {text}"
    );
}

/// A restart with the clock a few seconds before the expiry: the controller requeues for the
/// expiry itself; nothing changes on the object, and nothing polls. Returns the new operator.
async fn the_exception_expires_at_its_day(s: &Scene<'_>) -> Operator {
    let (cp, clusters, exceptions) = (s.cp, &s.clusters, &s.exceptions);
    let expiry = midnight_after(s.day);
    let lead = SignedDuration::from_secs(12);
    let mut op = s.start(offset_to(expiry - lead));
    let started = Instant::now();
    op.wait_ready().await;
    let ready = started.elapsed();
    assert!(
        ready < Duration::from_secs(8),
        "the operator took {ready:?} to get ready; the expiry {lead:?} ahead may have passed \
         before its first reconcile, which would not test the requeue at expiry"
    );
    let flipped = eventually(
        WAIT + Duration::from_secs(12),
        "old-west to lose its cover",
        || async {
            let c = supported(&clusters.get("old-west").await.ok()?)?;
            (c["reason"] == "KonvoyUnsupported").then_some(c)
        },
    )
    .await;
    let after = started.elapsed();
    assert_eq!(flipped["status"], "False");
    assert!(
        after >= Duration::from_secs(10),
        "the flip came {after:?} after the restart, before the expiry {lead:?} ahead\n{}",
        op.logs()
    );
    eprintln!("exception expiry observed {after:?} after the restart (expiry {lead:?} ahead)");
    eventually(WAIT, "the ExceptionExpired event", || async {
        let events = events_for(cp, "old-west");
        (events.iter().filter(|r| *r == "ExceptionExpired").count() == 1).then_some(())
    })
    .await;
    eventually(WAIT, "the exception's Expired condition", || async {
        let st = exceptions.get("legacy").await.ok()?.status?;
        let expired = st.conditions.iter().find(|c| c.type_ == "Expired")?;
        (st.covered == 0 && expired.status == "True").then_some(())
    })
    .await;
    op
}

async fn expired_it_covers_nothing(s: &Scene<'_>, op: &mut Operator) {
    let cp = s.cp;
    // Expired: it covers nothing, and its day has come.
    exception_gauges(op, [("objects", 0), ("ready", 1), ("expires_in_days", 0)]).await;
    // Expired: the cluster, deleted and created again, is refused again (by the new process).
    op.serve_admission(cp, &s.certs, WEBHOOK, NS, &cluster("west-2"))
        .await;
    cp.kubectl_ok(&["-n", NS, "delete", "konvoycluster", "old-west"], None);
    let o = s.apply(&cluster("old-west"));
    assert!(
        !o.status.success() && stderr(&o).contains("[konvoy-unsupported]"),
        "an expired exception must not apply: {}",
        stderr(&o)
    );
}
