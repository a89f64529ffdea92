//! Issue 17: what users own survives every Helm operation. Install, edit `default` (add
//! Konvoy 1.9), `helm upgrade` with a changed value, `helm rollback`, `helm upgrade` again,
//! uninstall and install again: the edit survives each time and a 1.9 cluster stays admitted,
//! with `supportgate run` (as the chart's ServiceAccount) answering admission behind a webhook
//! configuration of the chart's rules (`supportgate webhook-config`) on loopback. Before that, a
//! `default` that an older supportgate seeded (no Konvoy 1.8) raises NewerVendorPolicy plus an
//! event, and nothing changes it. Last, a chart whose CRD gained a field upgrades the CRD and no
//! object loses one, and a deleted `default` stays deleted next to another policy.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use supportgate::api::SupportPolicy;
use supportgate::engine::policy::DEFAULT_POLICY_YAML;

use crate::cluster::{
    CRD_NAME, delete_project_crd, exclusive, konvoy_cluster, konvoy_cluster_paired, runtime,
};
use crate::support::chart::{CHART, Release, get_json, helm_ok};
use crate::support::operator::{CertFiles, Operator, wait_webhook_effective};
use crate::support::{
    ControlPlane, eventually, eventually_explained, holds_for, repo, stderr, stdout,
};

const RELEASE: &str = "sgup";
const NS: &str = "sgup-e2e";
const FULLNAME: &str = "sgup-supportgate";
const CLUSTERS: &str = "sgup-clusters";

/// Konvoy 1.9 as a platform team adds it to `default` before supportgate knows it.
const KONVOY_1_9: &str = r#"{"version": "1.9", "releaseDate": "2021-09-01", "kubernetes": {"min": "1.19.x", "max": "1.21.x", "default": "1.21.4"}, "kommander": "1.5"}"#;

/// Deletes a cluster-scoped object when dropped (a webhook configuration pointing at a process
/// that is gone, with failurePolicy Fail, would block the other tests).
struct Deleted<'a> {
    cp: &'a ControlPlane,
    what: Vec<String>,
}

impl Drop for Deleted<'_> {
    fn drop(&mut self) {
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        args.extend(self.what.iter().map(String::as_str));
        let _ = self.cp.kubectl(&args);
    }
}

/// `kubectl replace` of the `default` SupportPolicy with its product list changed by `edit`
/// (as a platform team does it); returns the new spec.
fn replace_default(cp: &ControlPlane, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    let mut sp = get_json(cp, &["supportpolicy", "default"]);
    let obj = sp.as_object_mut().unwrap();
    obj.remove("status");
    let product = obj["spec"]["product"].as_array_mut().unwrap();
    edit(product);
    let out = cp.kubectl_ok(&["replace", "-f", "-", "-o", "json"], Some(&sp.to_string()));
    serde_json::from_str::<Value>(&out).unwrap()["spec"].clone()
}

/// What must hold after every helm operation: `default` is the very object the user edited
/// (same uid, generation and spec), 1.9 clusters are admitted and a 1.5 one still refused (so
/// the webhook is in the path), and the 1.9 cluster stays Supported.
fn assert_users_policy_holds(cp: &ControlPlane, step: &str, want: &Value, clusters: &str) {
    let sp = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(
        sp["metadata"]["uid"], want["uid"],
        "{step}: default was re-created"
    );
    assert_eq!(
        sp["metadata"]["generation"], want["generation"],
        "{step}: default's spec was written"
    );
    assert_eq!(sp["spec"], want["spec"], "{step}: the user's edit is gone");
    let dry = |doc: &str| cp.dry_run_in(clusters, doc);
    let o = dry(&konvoy_cluster_paired(
        "new-19", "v1.9.1", "1.21.4", "1.5.0",
    ));
    assert!(
        o.status.success(),
        "{step}: a 1.9 cluster refused: {}",
        stderr(&o)
    );
    let o = dry(&konvoy_cluster("old-15", "v1.5.6", "1.17.17"));
    assert!(
        stderr(&o).contains("[konvoy-unsupported]"),
        "{step}: a 1.5 cluster was not refused: {}",
        stderr(&o)
    );
    assert_eq!(
        supported(cp, clusters, "edge-19"),
        "True",
        "{step}: edge-19 lost its support"
    );
}

/// The status of the Supported condition of the KonvoyCluster `name`.
fn supported(cp: &ControlPlane, clusters: &str, name: &str) -> String {
    cp.kubectl_ok(
        &[
            "-n",
            clusters,
            "get",
            "konvoycluster",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Supported\")].status}",
        ],
        None,
    )
}

/// The `NewerVendorPolicy` condition of `default`: (status, message).
fn vendor_condition(cp: &ControlPlane) -> (String, String) {
    let sp = get_json(cp, &["supportpolicy", "default"]);
    let c = sp["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "NewerVendorPolicy");
    c.map(|c| {
        (
            c["status"].as_str().unwrap_or("").to_string(),
            c["message"].as_str().unwrap_or("").to_string(),
        )
    })
    .unwrap_or_default()
}

async fn wait_vendor_condition(cp: &ControlPlane, status: &str, op: &Operator) {
    eventually_explained(
        Duration::from_secs(30),
        &format!("NewerVendorPolicy to become {status}"),
        || format!("{:?}\n{}", vendor_condition(cp), op.logs()),
        || async { (vendor_condition(cp).0 == status).then_some(()) },
    )
    .await;
}

#[test]
fn upgrades_rollbacks_and_reinstalls_keep_the_users_default_policy() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    runtime().block_on(users_policy_proof(cp));
}

async fn users_policy_proof(cp: &ControlPlane) {
    // A fresh cluster: the chart installs the CRD, and supportgate creates `default`.
    delete_project_crd(cp);
    cp.install_crd_files("tests/fixtures/crds/");
    let release = install_with_no_policy(cp);

    // supportgate run as the chart's ServiceAccount (whose RBAC must allow the create), behind
    // a webhook configuration of its own.
    let certs = CertFiles::new();
    let op = Operator::ready_as(cp, (NS, FULLNAME), &certs, &run_args()).await;
    supportgate_creates_the_embedded_default(cp, &op).await;
    let vwc = register_direct_webhook(cp, &op, &certs);
    wait_webhook_effective(cp, CLUSTERS, &konvoy_cluster("old-15", "v1.5.6", "1.17.17")).await;

    vendor_update_is_reported_not_applied(cp, &op).await;
    let want = add_konvoy_1_9(cp, CLUSTERS, &op).await;
    helm_history_keeps_the_edit(cp, RELEASE, NS, FULLNAME, CLUSTERS, &want);
    drop(vwc);
    drop(op);
    crd_upgrade_keeps_every_field(cp, RELEASE, NS, &want);
    a_deleted_default_stays_deleted(cp).await;
    drop(release);
    delete_project_crd(cp);
}

/// The leader election of the chart's Deployment, and the creation of `default`.
fn run_args() -> [&'static str; 3] {
    [
        "--leader-election-namespace=sgup-e2e",
        "--leader-election-lease=sgup-supportgate",
        "--create-default-policy",
    ]
}

/// `helm install` of the chart, whose own webhook configuration points at a Service with no
/// pods here: Ignore, so that the test's configuration (below) alone decides. Helm creates no
/// policy.
fn install_with_no_policy(cp: &ControlPlane) -> Release<'_> {
    cp.create_namespace(NS);
    let out = helm_ok(
        cp,
        &[
            "install",
            RELEASE,
            CHART,
            "-n",
            NS,
            "--set",
            "webhook.failurePolicy=Ignore",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    let release = Release::new(cp, RELEASE, NS);
    let o = cp.kubectl(&["get", "supportpolicy", "default"]);
    assert!(
        stderr(&o).contains("NotFound"),
        "helm creates no policy: {}",
        stderr(&o)
    );
    release
}

/// supportgate, finding no SupportPolicy, creates the embedded default and says why.
async fn supportgate_creates_the_embedded_default(cp: &ControlPlane, op: &Operator) {
    let stored: SupportPolicy = eventually(
        Duration::from_secs(30),
        "supportgate to create the default SupportPolicy",
        || async {
            let o = cp.kubectl(&["get", "supportpolicy", "default", "-o", "json"]);
            o.status
                .success()
                .then(|| serde_json::from_slice(&o.stdout).unwrap())
        },
    )
    .await;
    let embedded: SupportPolicy = serde_norway::from_str(DEFAULT_POLICY_YAML).unwrap();
    assert_eq!(
        stored.spec, embedded.spec,
        "supportgate creates the embedded default"
    );
    let created_by = stored.metadata.annotations.clone().unwrap_or_default();
    assert!(
        created_by["supportgate.dev/created-by"].contains("had no SupportPolicy"),
        "{created_by:?}\n{}",
        op.logs()
    );
}

/// A webhook configuration of the chart's rules, as `supportgate webhook-config` writes it,
/// pointing at `op`; deleted when the guard drops.
fn register_direct_webhook<'a>(
    cp: &'a ControlPlane,
    op: &Operator,
    certs: &CertFiles,
) -> Deleted<'a> {
    let ca = certs.dir.path().join("ca.crt");
    std::fs::write(&ca, &certs.generated.ca_pem).unwrap();
    let vwc = stdout(
        &Command::new(env!("CARGO_BIN_EXE_supportgate"))
            .args(["webhook-config", "--name=sgup-direct", "--url", &op.url()])
            .arg("--ca-file")
            .arg(&ca)
            .output()
            .unwrap(),
    );
    let guard = Deleted {
        cp,
        what: vec!["validatingwebhookconfiguration/sgup-direct".into()],
    };
    cp.kubectl_ok(&["create", "-f", "-"], Some(&vwc));
    cp.create_namespace(CLUSTERS);
    guard
}

/// With another policy in place, a start with --create-default-policy leaves a deleted
/// `default` deleted: only a cluster with no SupportPolicy at all gets one.
async fn a_deleted_default_stays_deleted(cp: &ControlPlane) {
    let other = DEFAULT_POLICY_YAML.replace("\n  name: default\n", "\n  name: sgup-other\n");
    assert_ne!(other, DEFAULT_POLICY_YAML);
    cp.kubectl_ok(&["create", "-f", "-"], Some(&other));
    cp.kubectl_ok(&["delete", "supportpolicy", "default"], None);
    let certs = CertFiles::new();
    // Ready means the policies were listed; a create would follow within milliseconds.
    let op = Operator::ready_as(cp, (NS, FULLNAME), &certs, &run_args()).await;
    holds_for(Duration::from_secs(2), || async {
        let o = cp.kubectl(&["get", "supportpolicy", "default"]);
        assert!(
            stderr(&o).contains("NotFound"),
            "default was re-created next to another policy: {}\n{}",
            stderr(&o),
            op.logs()
        );
    })
    .await;
    assert!(
        op.logs().contains("SupportPolicies synced"),
        "{}",
        op.logs()
    );
    assert!(
        !op.logs().contains('\u{1b}'),
        "text logs written to a file carry terminal colour codes: {}",
        op.logs()
    );
    drop(op);
    cp.kubectl_ok(&["delete", "supportpolicy", "sgup-other"], None);
}

/// Whether an event in `default` says `default` lacks Konvoy 1.8.
fn newer_vendor_policy_event_raised(cp: &ControlPlane) -> bool {
    let events = get_json(cp, &["-n", "default", "events"]);
    events["items"].as_array().into_iter().flatten().any(|e| {
        e["reason"] == "NewerVendorPolicy"
            && e["involvedObject"]["kind"] == "SupportPolicy"
            && e["involvedObject"]["name"] == "default"
            && e["message"].as_str().unwrap_or("").contains("Konvoy 1.8")
    })
}

/// `supportgate default-policy --diff` against the test cluster: (exit code, stdout).
fn diff_with_cluster(cp: &ControlPlane) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .args(["default-policy", "--diff"])
        .env("KUBECONFIG", &cp.kubeconfig)
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), stdout(&o) + &stderr(&o))
}

/// A `default` an older supportgate seeded (it did not know Konvoy 1.8 yet): the running one
/// says so in a condition and an event, `--diff` shows the entry, and nobody writes the spec.
async fn vendor_update_is_reported_not_applied(cp: &ControlPlane, op: &Operator) {
    wait_vendor_condition(cp, "False", op).await;
    let older = replace_default(cp, |p| p.retain(|r| r["version"] != "1.8"));
    let generation = get_json(cp, &["supportpolicy", "default"])["metadata"]["generation"].clone();
    wait_vendor_condition(cp, "True", op).await;
    let (_, message) = vendor_condition(cp);
    assert!(
        message.contains("knows Konvoy 1.8, which this policy lacks"),
        "{message}"
    );

    eventually_explained(
        Duration::from_secs(30),
        "a NewerVendorPolicy event",
        || {
            format!(
                "{}\n{}",
                get_json(cp, &["-n", "default", "events"]),
                op.logs()
            )
        },
        || async { newer_vendor_policy_event_raised(cp).then_some(()) },
    )
    .await;

    let (code, text) = diff_with_cluster(cp);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("--- supportpolicy/default (cluster)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "+ product 1.8: only in the vendor's policy; the entry to add:\n+   - version: '1.8'\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("The embedded default knows 1.8, which this policy lacks."),
        "{text}"
    );

    // Changes nothing: the spec and its generation are the user's.
    let now = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(now["spec"], older, "supportgate wrote the policy's spec");
    assert_eq!(now["metadata"]["generation"], generation);
}

/// The team takes 1.8 from the vendor and adds Konvoy 1.9 themselves; a 1.9 cluster is then
/// admitted and Supported. Returns what must survive: uid, generation and spec.
async fn add_konvoy_1_9(cp: &ControlPlane, clusters: &str, op: &Operator) -> Value {
    let embedded: Value = serde_norway::from_str(DEFAULT_POLICY_YAML).unwrap();
    replace_default(cp, |p| {
        *p = embedded["spec"]["product"].as_array().unwrap().clone();
        p.insert(0, serde_json::from_str(KONVOY_1_9).unwrap());
    });
    wait_vendor_condition(cp, "False", op).await;
    let (code, text) = diff_with_cluster(cp);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("- product 1.9: only in this policy (a local addition)\n"),
        "{text}"
    );
    assert!(
        text.contains("knows no release this policy lacks"),
        "{text}"
    );

    let edge = konvoy_cluster_paired("edge-19", "v1.9.0", "1.21.4", "1.5.0");
    let refusal = std::cell::RefCell::new(String::new());
    eventually_explained(
        Duration::from_secs(30),
        "1.9 to be admitted",
        || format!("{}\n{}", refusal.borrow(), op.logs()),
        || async {
            let o = cp.apply_in(clusters, &edge);
            *refusal.borrow_mut() = stderr(&o);
            o.status.success().then_some(())
        },
    )
    .await;
    eventually_explained(
        Duration::from_secs(30),
        "edge-19 to be Supported",
        || op.logs(),
        || async { (supported(cp, clusters, "edge-19") == "True").then_some(()) },
    )
    .await;
    let sp = get_json(cp, &["supportpolicy", "default"]);
    json!({"uid": sp["metadata"]["uid"], "generation": sp["metadata"]["generation"], "spec": sp["spec"]})
}

/// The env value of RUST_LOG and the replicas of the chart's Deployment.
fn deployment_settings(cp: &ControlPlane, ns: &str, fullname: &str) -> (String, i64) {
    let d = get_json(cp, &["-n", ns, "deployment", fullname]);
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "RUST_LOG")
        .and_then(|e| e["value"].as_str())
        .unwrap_or("")
        .to_string();
    (env, d["spec"]["replicas"].as_i64().unwrap_or(-1))
}

/// upgrade (a changed value), rollback, upgrade again: each takes effect, the edit stays.
fn helm_history_keeps_the_edit(
    cp: &ControlPlane,
    release: &str,
    ns: &str,
    fullname: &str,
    clusters: &str,
    want: &Value,
) {
    assert_users_policy_holds(cp, "after the edit", want, clusters);

    let out = helm_ok(
        cp,
        &[
            "upgrade",
            release,
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "logLevel=debug",
        ],
    );
    assert!(out.contains("REVISION: 2"), "{out}");
    assert_eq!(deployment_settings(cp, ns, fullname).0, "debug");
    assert_users_policy_holds(cp, "helm upgrade --set logLevel=debug", want, clusters);

    let out = helm_ok(cp, &["rollback", release, "1", "-n", ns]);
    assert!(out.contains("Rollback was a success"), "{out}");
    assert_eq!(deployment_settings(cp, ns, fullname).0, "info");
    assert_users_policy_holds(cp, "helm rollback 1", want, clusters);

    let out = helm_ok(
        cp,
        &[
            "upgrade",
            release,
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "replicaCount=3",
        ],
    );
    assert!(out.contains("REVISION: 4"), "{out}");
    assert_eq!(
        deployment_settings(cp, ns, fullname),
        ("info".to_string(), 3)
    );
    assert_users_policy_holds(cp, "helm upgrade --set replicaCount=3", want, clusters);
}

/// Every SupportPolicy's spec by name.
fn policy_specs(cp: &ControlPlane) -> BTreeMap<String, Value> {
    get_json(cp, &["supportpolicies"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["spec"].clone(),
            )
        })
        .collect()
}

/// A chart whose CRD gained an optional field (`spec.contact`): `helm upgrade` applies it, no
/// object loses a field, and the new field is stored. Then uninstall and install again: the
/// kept `default` is not re-created.
fn crd_upgrade_keeps_every_field(cp: &ControlPlane, release: &str, ns: &str, want: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("cp")
        .args(["-R", CHART])
        .arg(dir.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let chart = dir.path().join("supportgate");
    let crd = chart.join("templates/crds/supportgate.dev_supportpolicies.yaml");
    let text = std::fs::read_to_string(&crd).unwrap();
    let field = "              contact:\n                description: Who answers for this policy.\n                type: string\n";
    let changed = text.replacen(
        "              alwaysWritePolicyReports:\n",
        &format!("{field}              alwaysWritePolicyReports:\n"),
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&crd, changed).unwrap();

    let probe = DEFAULT_POLICY_YAML
        .replace("name: default", "name: sgup-crd-probe")
        .replace(
            "  productName: Konvoy\n",
            "  productName: Konvoy\n  contact: platform-team\n",
        );
    let o = cp.kubectl_in(&["create", "-f", "-"], Some(&probe));
    assert!(
        stderr(&o).contains("unknown field \"spec.contact\""),
        "before the upgrade: {}",
        stderr(&o)
    );

    let before = policy_specs(cp);
    let out = helm_ok(
        cp,
        &[
            "upgrade",
            release,
            chart.to_str().unwrap(),
            "-n",
            ns,
            "--reuse-values",
        ],
    );
    assert!(out.contains("REVISION: 5"), "{out}");
    let schema = get_json(cp, &[CRD_NAME]);
    assert_eq!(
        schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["contact"]["type"],
        "string",
        "the CRD was not upgraded"
    );
    assert_eq!(
        policy_specs(cp),
        before,
        "a policy lost a field in the CRD upgrade"
    );
    let sp = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(
        (&sp["metadata"]["uid"], &sp["spec"]),
        (&want["uid"], &want["spec"])
    );
    cp.kubectl_ok(&["create", "-f", "-"], Some(&probe));
    let stored = get_json(cp, &["supportpolicy", "sgup-crd-probe"]);
    assert_eq!(stored["spec"]["contact"], "platform-team");
    cp.kubectl_ok(&["delete", "supportpolicy", "sgup-crd-probe"], None);

    // Uninstall keeps `default`; a new install finds it and leaves it alone.
    helm_ok(cp, &["uninstall", release, "-n", ns, "--wait"]);
    helm_ok(cp, &["install", release, CHART, "-n", ns]);
    let sp = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(
        sp["metadata"]["uid"], want["uid"],
        "helm install re-created default"
    );
    assert_eq!(sp["spec"], want["spec"], "helm install overwrote default");
}
