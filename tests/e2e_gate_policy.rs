//! End to end (issue 28, paths 1 and 2): an edit to a SupportPolicy never unguards what it
//! guarded. On a real kube-apiserver, with `supportgate run` keeping the webhook rules:
//! - the schema refuses what it can (a singular `resource`, a date that is no date);
//! - a kind that passes the schema but is not what the API server serves (`Konvoycluster`) makes
//!   the policy `Ready=False TargetsUnresolved`, with one Warning event, and the generation
//!   before it stays in force: the webhook rules keep `konvoyclusters`, and a cluster the
//!   stricter policy refuses is still refused;
//! - a spec the engine refuses (a JSONPath that does not parse) does the same with
//!   `InvalidSpec`, and `supportgate_policy_stale` says so;
//! - the fixed spec is in force again, `Ready=True`.

mod support;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use serde_json::{Value, json};
use support::operator::{CertFiles, Operator, http_get};
use support::{ControlPlane, eventually, stderr};
use supportgate::api::SupportPolicy;
use supportgate::engine::policy::DEFAULT_POLICY_YAML;
use supportgate::engine::targets::presets;

const NS: &str = "gate-policy-e2e";
const WEBHOOK: &str = "supportgate-gate-policy-e2e";
const POLICY: &str = "strict";
const WAIT: Duration = Duration::from_secs(60);

fn cluster(name: &str, konvoy: &str, kubernetes: &str) -> String {
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {kubernetes}}}\n"
    )
}

/// The embedded default as `strict`, supporting only the newest minor, with the presets spelt
/// out (so that one of them can be misspelt), after `edit`.
fn strict(edit: impl FnOnce(&mut Value)) -> String {
    let mut doc: Value = serde_norway::from_str(DEFAULT_POLICY_YAML).expect("default policy");
    doc["metadata"]["name"] = POLICY.into();
    doc["spec"]["supportWindow"] = 1.into();
    doc["spec"]["targets"] = serde_json::to_value(presets()).expect("presets as JSON");
    edit(&mut doc);
    doc.to_string()
}

fn konvoy_target(doc: &mut Value) -> &mut Value {
    doc["spec"]["targets"]
        .as_array_mut()
        .and_then(|ts| ts.iter_mut().find(|t| t["kind"] == "KonvoyCluster"))
        .expect("the KonvoyCluster preset")
}

/// The resources the webhook's rules intercept, across its webhooks.
async fn guarded(cp: &ControlPlane) -> Vec<String> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(cp.client().await);
    let Ok(vwc) = api.get(WEBHOOK).await else {
        return Vec::new();
    };
    let mut out: Vec<String> = vwc
        .webhooks
        .iter()
        .flatten()
        .flat_map(|w| w.rules.iter().flatten())
        .flat_map(|r| r.resources.iter().flatten().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The policy's Ready condition once it has `status` and `reason`, for `generation` or later.
async fn ready(cp: &ControlPlane, status: &str, reason: &str) -> (String, i64) {
    let api: Api<SupportPolicy> = Api::all(cp.client().await);
    eventually(WAIT, &format!("Ready={status} {reason}"), || async {
        let sp = api.get(POLICY).await.ok()?;
        let st = sp.status?;
        if st.observed_generation != sp.metadata.generation {
            return None;
        }
        let c = st.conditions.iter().find(|c| c.type_ == "Ready")?;
        (c.status == status && c.reason == reason)
            .then(|| (c.message.clone(), sp.metadata.generation.unwrap_or(0)))
    })
    .await
}

fn apply(cp: &ControlPlane, doc: &str) -> std::process::Output {
    cp.kubectl_in(&["apply", "-f", "-"], Some(doc))
}

/// Server-side dry runs: what the webhook says now, without leaving the object.
fn refused(cp: &ControlPlane, doc: &str) -> Option<String> {
    let o = cp.kubectl_in(&["apply", "--dry-run=server", "-f", "-"], Some(doc));
    (!o.status.success()).then(|| stderr(&o))
}

async fn stale_gauge(op: &Operator, value: i64) {
    let line = format!("supportgate_policy_stale{{policy=\"{POLICY}\"}} {value}");
    eventually(WAIT, &line, || async {
        let (_, text) = http_get(op.health_port, "/metrics").await.ok()?;
        text.lines().any(|l| l == line).then_some(())
    })
    .await;
}

fn warning_events(cp: &ControlPlane, reason: &str) -> usize {
    cp.kubectl_ok(
        &[
            "-n",
            "default",
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={POLICY},reason={reason}"),
            "-o",
            "jsonpath={range .items[*]}{.type}{\"\\n\"}{end}",
        ],
        None,
    )
    .lines()
    .filter(|l| *l == "Warning")
    .count()
}

#[tokio::test]
async fn a_policy_edit_never_unguards_what_it_guarded() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);
    let certs = CertFiles::new();
    let webhook_flag = format!("--webhook-config-name={WEBHOOK}");
    let mut op = Operator::start(
        cp,
        &certs,
        &[
            "--no-leader-election",
            "--sync-webhook-rules",
            &webhook_flag,
        ],
    );
    let probe = cluster("probe", "v1.5.6", "1.17.17");
    op.serve_admission(cp, &certs, WEBHOOK, NS, &probe).await;

    let o = apply(cp, &strict(|_| {}));
    assert!(o.status.success(), "{}", stderr(&o));
    ready(cp, "True", "Valid").await;
    let older = cluster("older", "v1.7.5", "1.19.15");
    let why = eventually(WAIT, "1.7.5 refused by the one-minor window", || async {
        refused(cp, &older)
    })
    .await;
    assert!(why.contains("konvoy-unsupported"), "{why}");
    assert!(guarded(cp).await.contains(&"konvoyclusters".to_string()));

    the_schema_refuses_what_it_can(cp);
    an_unserved_kind_keeps_the_last_valid_generation(cp, &op, &older).await;
    an_uncompilable_spec_keeps_the_last_valid_generation(cp, &op, &older).await;
    a_fixed_policy_is_in_force(cp, &op, &older).await;
}

/// What the schema can refuse, it refuses: the policy is not even stored.
fn the_schema_refuses_what_it_can(cp: &ControlPlane) {
    for (doc, want) in [
        (
            strict(|d| konvoy_target(d)["resource"] = "konvoycluster".into()),
            "resource is the plural of the kind",
        ),
        (
            strict(|d| d["spec"]["product"][0]["endOfSupport"] = "2027-02-30".into()),
            "must be of type date",
        ),
        (
            strict(|d| konvoy_target(d)["resource"] = "KonvoyClusters".into()),
            "spec.targets[0].resource",
        ),
    ] {
        let o = apply(cp, &doc);
        assert!(!o.status.success(), "accepted:\n{doc}");
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
    }
}

/// A kind the API server does not serve under that resource: reported, and the generation
/// before it stays in force.
async fn an_unserved_kind_keeps_the_last_valid_generation(
    cp: &ControlPlane,
    op: &Operator,
    older: &str,
) {
    let o = apply(
        cp,
        &strict(|d| konvoy_target(d)["kind"] = "Konvoycluster".into()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (message, generation) = ready(cp, "False", "TargetsUnresolved").await;
    assert!(
        message.starts_with("Konvoycluster.kommander.mesosphere.io: resource konvoyclusters in kommander.mesosphere.io is of kind KonvoyCluster, not Konvoycluster; generation")
            && message.contains(&format!("generation {}, the last valid one, stays in force", generation - 1)),
        "{message}"
    );
    stale_gauge(op, 1).await;
    let why = refused(cp, older).expect("1.7.5 still refused under the typo");
    assert!(why.contains("konvoy-unsupported"), "{why}");
    assert!(guarded(cp).await.contains(&"konvoyclusters".to_string()));
    eventually(WAIT, "one TargetsUnresolved Warning event", || async {
        (warning_events(cp, "TargetsUnresolved") == 1).then_some(())
    })
    .await;
}

/// A spec the engine cannot compile: the same, with the engine's reason.
async fn an_uncompilable_spec_keeps_the_last_valid_generation(
    cp: &ControlPlane,
    op: &Operator,
    older: &str,
) {
    let o = apply(
        cp,
        &strict(|d| konvoy_target(d)["fields"]["productVersion"] = "$.spec[[".into()),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (message, _) = ready(cp, "False", "InvalidSpec").await;
    assert!(
        message.contains("productVersion")
            && message.contains("the last valid one, stays in force"),
        "{message}"
    );
    let why = refused(cp, older).expect("1.7.5 still refused under the invalid spec");
    assert!(why.contains("konvoy-unsupported"), "{why}");
    stale_gauge(op, 1).await;
}

/// Fixed: this generation is in force; a wider window admits 1.7.5.
async fn a_fixed_policy_is_in_force(cp: &ControlPlane, op: &Operator, older: &str) {
    let o = apply(cp, &strict(|d| d["spec"]["supportWindow"] = json!(3)));
    assert!(o.status.success(), "{}", stderr(&o));
    ready(cp, "True", "Valid").await;
    stale_gauge(op, 0).await;
    eventually(
        WAIT,
        "1.7.5 admitted once the fixed policy is in force",
        || async { refused(cp, older).is_none().then_some(()) },
    )
    .await;
    assert!(
        guarded(cp).await.contains(&"konvoyclusters".to_string()),
        "{}",
        op.logs()
    );
}
