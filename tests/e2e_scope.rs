//! End to end: the webhook's scope follows the policies. The chart is installed on a real
//! kube-apiserver, `supportgate run` runs with the chart's arguments as the chart's
//! ServiceAccount, and a kube-controller-manager runs only its ClusterRole aggregation
//! controller. A SupportPolicy that targets a new CRD kind, plus an aggregated ClusterRole for
//! it, gets a violating object of that kind refused by `kubectl apply` within seconds, with no
//! `helm upgrade`; removing the target admits it. The webhook configuration's other fields
//! (caBundle, failurePolicy, namespaceSelector) survive every rules write.

mod support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::chart::{CHART, Release, container_args, get_json, helm, point_webhook_at};
use support::operator::{CertFiles, Operator, wait_webhook_effective};
use support::{ControlPlane, free_port, holds_for, stderr, stdout};
use supportgate::engine::policy::DEFAULT_POLICY_YAML;

const RELEASE: &str = "sgscope";
const NS: &str = "sgscope";
const FULLNAME: &str = "sgscope-supportgate";
const WIDGETS_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.scope.example.dev}
spec:
  group: scope.example.dev
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              conditions:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [type]
                items:
                  type: object
                  required: [type]
                  x-kubernetes-preserve-unknown-fields: true
                  properties: {type: {type: string}, status: {type: string}}
";
/// The RBAC for the new kind, granted to supportgate through the aggregation label alone.
const WIDGETS_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: supportgate-widgets
  labels: {supportgate.dev/aggregate-to-supportgate: \"true\"}
rules:
- apiGroups: [scope.example.dev]
  resources: [widgets]
  verbs: [get, list, watch]
- apiGroups: [scope.example.dev]
  resources: [widgets/status]
  verbs: [get, patch]
";

fn widget(name: &str, konvoy: &str, kubernetes: &str) -> String {
    format!(
        "apiVersion: scope.example.dev/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {{konvoyVersion: {konvoy}, kubernetesVersion: {kubernetes}}}\n"
    )
}

fn konvoy_cluster(name: &str, konvoy: &str) -> String {
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: 1.17.17}}\n"
    )
}

/// The embedded default policy under another name, optionally with its own targets.
fn policy(name: &str, targets: Option<Value>) -> String {
    let mut doc: Value = serde_norway::from_str(DEFAULT_POLICY_YAML).expect("default policy");
    doc["metadata"]["name"] = name.into();
    if let Some(t) = targets {
        doc["spec"]["targets"] = t;
    }
    doc.to_string()
}

/// A kube-controller-manager running only the ClusterRole aggregation controller, recorded in
/// the control plane's pids file so that `down` stops it if this process is killed.
struct Aggregator {
    child: Child,
    log: std::path::PathBuf,
}

impl Aggregator {
    fn start(cp: &ControlPlane) -> Aggregator {
        let dir = cp.dir.join("scope-kcm");
        std::fs::create_dir_all(&dir).expect("kcm dir");
        let log = dir.join("kube-controller-manager.log");
        let kc = cp.kubeconfig.display().to_string();
        let child = Command::new(cp.tool("kube-controller-manager"))
            .args([
                format!("--kubeconfig={kc}"),
                format!("--authentication-kubeconfig={kc}"),
                format!("--authorization-kubeconfig={kc}"),
                "--bind-address=127.0.0.1".to_string(),
                format!("--secure-port={}", free_port()),
                format!("--cert-dir={}", dir.display()),
                "--leader-elect=false".to_string(),
                "--controllers=clusterrole-aggregation".to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("kcm log"))
            .spawn()
            .expect("start kube-controller-manager");
        let pids = cp.dir.join("pids");
        let mut text = std::fs::read_to_string(&pids).unwrap_or_default();
        text.push_str(&format!("kube-controller-manager {}\n", child.id()));
        std::fs::write(&pids, text).expect("record the kcm pid");
        Aggregator { child, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 200 ms until it returns true or `limit` passes; returns how long it took.
async fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The fields of the webhook that are not the rules, which no rules write may change.
fn others(vwc: &Value) -> Value {
    let w = &vwc["webhooks"][0];
    json!({
        "caBundle": w["clientConfig"]["caBundle"],
        "url": w["clientConfig"]["url"],
        "failurePolicy": w["failurePolicy"],
        "namespaceSelector": w["namespaceSelector"],
        "sideEffects": w["sideEffects"],
        "timeoutSeconds": w["timeoutSeconds"],
    })
}

fn resources(vwc: &Value) -> Vec<String> {
    vwc["webhooks"][0]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            let group = r["apiGroups"][0].as_str().unwrap_or("").to_string();
            r["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |res| format!("{}.{group}", res.as_str().unwrap_or("")))
        })
        .collect()
}

const APPS: &str = "scope-apps";

/// What the phases of the test share. Fields drop in order: the operator, then the release
/// (uninstalled), then the aggregation controller.
struct Scene<'a> {
    cp: &'a ControlPlane,
    op: Operator,
    args: Vec<String>,
    kubeconfig: std::path::PathBuf,
    /// The operator's certificate files (kept until it stops).
    _certs: CertFiles,
    _release: Release<'a>,
    kcm: Aggregator,
    /// The webhook configuration before any policy changed its rules.
    before: Value,
}

fn apply(cp: &ControlPlane, doc: &str) -> Output {
    cp.kubectl_in(&["-n", APPS, "apply", "-f", "-"], Some(doc))
}

/// Asks admission about a create of `doc` without storing it. A retry loop must not use
/// `apply`: once an early attempt lands (before the rules reach kube-apiserver), every later
/// `apply` of the same object is a no-op that never reaches admission.
fn probe_create(cp: &ControlPlane, doc: &str) -> Output {
    cp.kubectl_in(
        &["-n", APPS, "create", "--dry-run=server", "-f", "-"],
        Some(doc),
    )
}

fn violating() -> String {
    widget("w1", "v1.5.6", "1.17.17")
}

fn kinds_watched(cp: &ControlPlane, want: &str) -> bool {
    let o = cp.kubectl(&[
        "get",
        "supportpolicy",
        "scope-widgets",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"KindsWatched\")].reason}",
    ]);
    stdout(&o).trim() == want
}

#[test]
fn the_webhook_scope_follows_the_policies_with_no_helm_upgrade() {
    let cp = ControlPlane::shared();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut scene = install(cp).await;
            a_new_kind_is_refused_within_seconds(&scene).await;
            forbidden_until_granted(&mut scene).await;
            let last = removing_the_target_admits(&scene).await;
            // Rules are written only when they change (the chart's initial rules are already
            // the default policy's: no write for them).
            assert_eq!(
                rules_writes(cp),
                3,
                "rules writes: two policy changes and one heal"
            );
            only_the_leader_writes(&mut scene, &last).await;
            for name in ["scope-widgets", "scope-default"] {
                cp.kubectl_ok(&["delete", "supportpolicy", name], None);
            }
            cp.kubectl_ok(&["delete", "clusterrole", "supportgate-widgets"], None);
        });
}

/// The chart installed, the operator running as its ServiceAccount with its arguments, the
/// webhook configuration pointed at it and effective.
async fn install(cp: &ControlPlane) -> Scene<'_> {
    install_the_kinds(cp);
    let kcm = Aggregator::start(cp);
    cp.create_namespace(NS);
    let o = helm(
        cp,
        &[
            "install",
            RELEASE,
            CHART,
            "-n",
            NS,
            "--set",
            "crds.install=false",
            "--set",
            "policy.create=false",
        ],
    );
    assert!(o.status.success(), "helm install: {}", stderr(&o));
    let release = Release::new(cp, RELEASE, NS);
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy("scope-default", None)));

    // The chart's own arguments, as the kubelet expands them; addresses and files the test's.
    let mut args = container_args(cp, NS, FULLNAME);
    assert!(
        args.contains(&"--sync-webhook-rules".to_string()),
        "{args:?}"
    );
    args.push("--cert-extra-name=127.0.0.1".to_string());
    let certs = CertFiles::new();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = Operator::ready_as(cp, (NS, FULLNAME), &certs, &arg_refs).await;
    let kubeconfig = certs.dir.path().join("sa-kubeconfig");
    point_webhook_at(cp, FULLNAME, &op.url());
    cp.create_namespace(APPS);
    wait_webhook_effective(cp, APPS, &konvoy_cluster("old", "v1.5.6")).await;
    let before = get_json(cp, &["validatingwebhookconfiguration", FULLNAME]);
    assert!(
        before["webhooks"][0]["clientConfig"]["caBundle"].is_string(),
        "the self-managed caBundle is in place: {before}"
    );
    assert!(!resources(&before).contains(&"widgets.scope.example.dev".to_string()));

    Scene {
        cp,
        op,
        args,
        kubeconfig,
        _certs: certs,
        _release: release,
        kcm,
        before,
    }
}

/// The project's CRDs, the fixtures and the Widget CRD, established.
fn install_the_kinds(cp: &ControlPlane) {
    cp.kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "crds/"],
        None,
    );
    cp.install_crd_files("tests/fixtures/crds/");
    cp.kubectl_ok(&["apply", "-f", "-"], Some(WIDGETS_CRD));
    cp.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/widgets.scope.example.dev",
            "crd/supportpolicies.supportgate.dev",
        ],
        None,
    );
}

/// A policy adds a target for a new kind: a violating object is refused within seconds, and
/// only the rules of the configuration changed (and stay the policies').
async fn a_new_kind_is_refused_within_seconds(s: &Scene<'_>) {
    let (cp, op, before) = (s.cp, &s.op, &s.before);
    // With no policy targeting Widgets, the API server never asks the webhook about them.
    let o = apply(cp, &widget("w0", "v1.5.6", "1.17.17"));
    assert!(o.status.success(), "{}", stderr(&o));
    cp.kubectl_ok(&["-n", APPS, "delete", "widget", "w0"], None);

    // A new kind: its target in a policy (its RBAC comes after, through the aggregation label).
    let widgets_target = json!([{
        "apiGroup": "scope.example.dev", "versions": ["v1"], "kind": "Widget",
        "resource": "widgets", "namespaced": true,
        "fields": {"productVersion": "$.spec.konvoyVersion", "kubernetesVersion": "$.spec.kubernetesVersion"}
    }]);
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&policy("scope-widgets", Some(widgets_target))),
    );
    let refused = within(Duration::from_secs(20), || {
        let o = probe_create(cp, &violating());
        !o.status.success() && stderr(&o).contains("[konvoy-unsupported]")
    })
    .await;
    let after = get_json(
        cp,
        &[
            "validatingwebhookconfiguration",
            FULLNAME,
            "--show-managed-fields",
        ],
    );
    assert!(
        refused.is_some(),
        "a Widget of an unsupported Konvoy was not refused within 20 s; rules {:?}\n{}",
        resources(&after),
        op.logs()
    );
    eprintln!("refused after {refused:?} once the policy gained the target");
    assert!(resources(&after).contains(&"widgets.scope.example.dev".to_string()));
    assert!(
        resources(&after).contains(&"konvoyclusters.kommander.mesosphere.io".to_string()),
        "the union keeps the other policy's targets: {:?}",
        resources(&after)
    );
    assert_eq!(others(&after), others(before), "only the rules changed");
    let owner = after["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["manager"] == "supportgate-webhook-scope")
        .unwrap_or_else(|| panic!("no fields of supportgate-webhook-scope: {after}"));
    assert_eq!(owner["operation"], "Apply");
    let owned = owner["fieldsV1"].to_string();
    assert!(
        owned.contains("f:rules")
            && !owned.contains("caBundle")
            && !owned.contains("f:failurePolicy"),
        "the scope owns the rules and nothing else: {owned}"
    );

    // Someone puts the chart's initial rules back (as a `helm upgrade` does): healed at once.
    let initial = json!([{"op": "replace", "path": "/webhooks/0/rules", "value": before["webhooks"][0]["rules"]}]);
    cp.kubectl_ok(
        &[
            "patch",
            "validatingwebhookconfiguration",
            FULLNAME,
            "--type=json",
            "-p",
            &initial.to_string(),
        ],
        None,
    );
    let healed = within(Duration::from_secs(10), || {
        let vwc = get_json(cp, &["validatingwebhookconfiguration", FULLNAME]);
        resources(&vwc).contains(&"widgets.scope.example.dev".to_string())
    })
    .await;
    assert!(
        healed.is_some(),
        "the rules were not put back:\n{}",
        op.logs()
    );
    eprintln!("rules reset to the chart's: healed after {healed:?}");
}

/// Until its RBAC is granted through the aggregation label, the policy says the kind cannot be
/// watched; no crash, no retry storm; then the controller watches it.
async fn forbidden_until_granted(s: &mut Scene<'_>) {
    let cp = s.cp;
    // Admission needs no RBAC for the kind; the controller does, and until it has it the
    // policy's status says so.
    let reported = within(Duration::from_secs(30), || kinds_watched(cp, "Forbidden")).await;
    eprintln!("KindsWatched=Forbidden after {reported:?}");
    assert!(
        reported.is_some(),
        "no KindsWatched=Forbidden condition on the policy:\n{}",
        s.op.logs()
    );
    let message = cp.kubectl_ok(
        &[
            "get",
            "supportpolicy",
            "scope-widgets",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"KindsWatched\")].message}",
        ],
        None,
    );
    assert!(
        message.contains("Widget.scope.example.dev/v1")
            && message.contains("supportgate.dev/aggregate-to-supportgate"),
        "{message}"
    );
    assert!(
        s.op.child.try_wait().expect("operator status").is_none(),
        "no crash on 403"
    );
    // No retry storm: the refused lists and watches back off (at most ~1 every 800 ms at the
    // start, doubling to 30 s).
    let refused_calls = || {
        cp.audit_log()
            .lines()
            .filter(|l| l.contains("\"code\":403") && l.contains("\"resource\":\"widgets\""))
            .count()
    };
    let first = refused_calls();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let more = refused_calls() - first;
    assert!(
        more <= 6,
        "{more} refused widget requests in 5 s: a retry storm"
    );
    eprintln!("{more} refused widget requests in 5 s while forbidden");

    // The RBAC, granted through the aggregation label alone.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(WIDGETS_ROLE));
    let aggregated = within(Duration::from_secs(30), || {
        let role = get_json(cp, &["clusterrole", &format!("{FULLNAME}-aggregated")]);
        role["rules"].to_string().contains("widgets")
    })
    .await;
    assert!(aggregated.is_some(), "no aggregation:\n{}", s.kcm.logs());
    let compliant = widget("w2", "v1.8.5", "1.20.13");
    let o = apply(cp, &compliant);
    assert!(o.status.success(), "{}", stderr(&o));
    let watched = within(Duration::from_secs(60), || {
        let o = cp.kubectl(&[
            "-n",
            APPS,
            "get",
            "widget",
            "w2",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Supported\")].status}",
        ]);
        !stdout(&o).trim().is_empty()
    })
    .await;
    assert!(
        watched.is_some(),
        "the controller wrote no Supported condition on a Widget (RBAC via aggregation):\n{}",
        s.op.logs()
    );
    let cleared = within(Duration::from_secs(30), || kinds_watched(cp, "Watching")).await;
    assert!(
        cleared.is_some(),
        "KindsWatched stayed False:\n{}",
        s.op.logs()
    );
    eprintln!("KindsWatched=Watching {cleared:?} after the Supported condition");
}

/// The target removed (the policy falls back to the presets): the object is admitted. Returns
/// the configuration then.
async fn removing_the_target_admits(s: &Scene<'_>) -> Value {
    let (cp, op, before) = (s.cp, &s.op, &s.before);
    // The target removed (the policy falls back to the presets): the object is admitted.
    cp.kubectl_ok(
        &[
            "patch",
            "supportpolicy",
            "scope-widgets",
            "--type=json",
            "-p",
            r#"[{"op": "remove", "path": "/spec/targets"}]"#,
        ],
        None,
    );
    let admitted = within(Duration::from_secs(20), || {
        probe_create(cp, &violating()).status.success()
    })
    .await;
    let last = get_json(cp, &["validatingwebhookconfiguration", FULLNAME]);
    assert!(
        admitted.is_some(),
        "the Widget was still refused 20 s after its target was removed; rules {:?}\n{}",
        resources(&last),
        op.logs()
    );
    eprintln!("admitted after {admitted:?} once the target was removed");
    assert!(!resources(&last).contains(&"widgets.scope.example.dev".to_string()));
    assert_eq!(others(&last), others(before), "only the rules changed");

    last
}

/// How many times the operator's account patched the configuration.
fn rules_writes(cp: &ControlPlane) -> usize {
    cp.audit_log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["verb"] == "patch"
                && e["stage"] == "ResponseComplete"
                && e["objectRef"]["resource"] == "validatingwebhookconfigurations"
                && e["user"]["username"] == format!("system:serviceaccount:{NS}:{FULLNAME}")
                && e["objectRef"]["name"] == FULLNAME
        })
        .count()
}

async fn only_the_leader_writes(s: &mut Scene<'_>, last: &Value) {
    let cp = s.cp;
    // Several replicas: only the leader writes. A second replica follows; the leader dies
    // without giving up its Lease; the rules are changed under them. The follower leaves them
    // alone until it has taken the Lease over, then puts the policies' rules back.
    let certs_b = CertFiles::new();
    let mut args_b: Vec<&str> = s.args.iter().map(String::as_str).collect();
    args_b.push("--identity=scope-b");
    let mut b = Operator::start_with_kubeconfig(cp, &s.kubeconfig, &certs_b, &args_b);
    b.wait_ready().await;
    s.op.child.kill().expect("kill the leader");
    let _ = s.op.child.wait();
    let mut changed = last["webhooks"][0]["rules"].clone();
    changed.as_array_mut().expect("rules").truncate(1);
    let reset = json!([{"op": "replace", "path": "/webhooks/0/rules", "value": changed}]);
    cp.kubectl_ok(
        &[
            "patch",
            "validatingwebhookconfiguration",
            FULLNAME,
            "--type=json",
            "-p",
            &reset.to_string(),
        ],
        None,
    );
    let rules_now = || {
        get_json(cp, &["validatingwebhookconfiguration", FULLNAME])["webhooks"][0]["rules"].clone()
    };
    holds_for(Duration::from_secs(3), || async {
        assert_eq!(
            rules_now(),
            changed,
            "a follower wrote the rules:\n{}",
            b.logs()
        );
    })
    .await;
    let took_over = within(Duration::from_secs(40), || {
        rules_now() == last["webhooks"][0]["rules"]
    })
    .await;
    assert!(
        took_over.is_some() && b.logs().contains("became the leader"),
        "the new leader did not put the rules back:\n{}",
        b.logs()
    );
    eprintln!(
        "the follower left the rules alone; as the new leader it healed them {took_over:?} later"
    );
    drop(b);
}
