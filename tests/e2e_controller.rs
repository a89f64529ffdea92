//! End to end: the controller keeps a `Supported` condition on every cluster object as the policy
//! changes, never touches other owners' conditions, falls back to PolicyReports where a CRD
//! cannot hold a condition, and recovers from an API server restart.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::events::v1::Event as K8sEvent;

use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use support::operator::{CertFiles, Operator};
use support::{ControlPlane, eventually, holds_for, stderr};
use supportgate::api::SupportPolicy;
use supportgate::engine::policy::DEFAULT_POLICY_YAML;

const NS: &str = "controller-e2e";
const WAIT: Duration = Duration::from_secs(45);

fn konvoy_cluster(name: &str, konvoy: &str, k8s: &str, kommander: &str) -> String {
    let minor = k8s.rsplit_once('.').map(|(m, _)| m).unwrap_or(k8s);
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {k8s}}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-{minor}-4.4.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-{minor}-{kommander}\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

/// An experimental addon: denied. Its CRD has no conditions, so its verdict goes to a PolicyReport.
fn addon(name: &str) -> String {
    format!(
        "apiVersion: kubeaddons.mesosphere.io/v1beta2\nkind: Addon\nmetadata:\n  name: {name}\n  namespace: {NS}\n  labels: {{kubeaddons.mesosphere.io/name: istio, environment: production}}\n  annotations: {{catalog.kubeaddons.mesosphere.io/origin-repository-version: stable-1.36-4.4.0}}\nspec:\n  kubernetes: {{minSupportedVersion: v1.17.0}}\n  chartReference: {{chart: istio, version: 1.9.1}}\n"
    )
}

fn kc_api(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters",
    );
    Api::namespaced_with(client, NS, &ar)
}

fn condition(obj: &DynamicObject, type_: &str) -> Option<Value> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

async fn wait_condition(api: &Api<DynamicObject>, name: &str, status: &str, reason: &str) -> Value {
    eventually(
        WAIT,
        &format!("{name} to be Supported={status} ({reason})"),
        || async {
            let o = api.get(name).await.ok()?;
            let c = condition(&o, "Supported")?;
            (c["status"] == status && c["reason"] == reason).then_some(c)
        },
    )
    .await
}

fn policy_with_19() -> String {
    DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x, default: 1.21.2}\n    kommander: \"1.5\"\n",
    )
}

fn events_for(cp: &ControlPlane, name: &str) -> String {
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
}

#[tokio::test]
async fn conditions_follow_the_policy_and_survive_restarts() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.install_crd_files("tests/fixtures/crds-policyreport/");
    cp.create_namespace(NS);
    let client = cp.client().await;
    let api = kc_api(client.clone());
    let sp_api: Api<SupportPolicy> = Api::all(client.clone());
    seed_clusters(cp, &api).await;

    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &["--no-leader-election"]);
    op.wait_ready().await;
    first_conditions(&api).await;
    first_policy_status(&sp_api).await;
    konvoy_19_comes_and_goes(cp, &api, &sp_api).await;
    an_addon_gets_a_policy_report(cp).await;
    an_invalid_policy_is_reported(cp, &sp_api).await;
    an_api_server_restart_is_survived(cp, &api, &mut op).await;
    a_path_with_a_typo_is_reported(cp, &sp_api).await;
}

/// Issue #18, reproduction 2: a valid JSONPath with a typo matches nothing in any cluster. The
/// policy raises `TargetFieldUnresolved` naming the field, with an event, instead of passing
/// everything silently.
async fn a_path_with_a_typo_is_reported(cp: &ControlPlane, sp_api: &Api<SupportPolicy>) {
    let typo = format!(
        "{}  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields:\n      productVersion: $.spec.provisioner.verison\n      kubernetesVersion: $.spec.cluster.kubernetes.version\n",
        DEFAULT_POLICY_YAML.replace("name: default", "name: typo")
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&typo));
    let raised = eventually(
        WAIT,
        "TargetFieldUnresolved=True on the typo policy",
        || async {
            let st = sp_api.get("typo").await.ok()?.status?;
            st.conditions
                .into_iter()
                .find(|c| c.type_ == "TargetFieldUnresolved" && c.status == "True")
        },
    )
    .await;
    assert_eq!(raised.reason, "FieldMatchesNothing");
    assert!(
        raised
            .message
            .contains("productVersion `$.spec.provisioner.verison`"),
        "{}",
        raised.message
    );
    let events = eventually(WAIT, "a TargetFieldUnresolved event", || async {
        let out = cp.kubectl_ok(
            &[
                "get",
                "events",
                "-A",
                "--field-selector",
                "involvedObject.name=typo,reason=TargetFieldUnresolved",
                "-o",
                "name",
            ],
            None,
        );
        (!out.trim().is_empty()).then_some(out)
    })
    .await;
    assert_eq!(events.trim().lines().count(), 1, "one event: {events}");
    // The default policy's KonvoyCluster paths resolve: its condition (raised, if at all, for
    // optional Addon fields the one test Addon lacks) never names them.
    let default = sp_api.get("default").await.unwrap().status.unwrap();
    let named = default
        .conditions
        .iter()
        .find(|c| c.type_ == "TargetFieldUnresolved")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(!named.contains("KonvoyCluster"), "{named}");
    cp.kubectl_ok(&["delete", "supportpolicy", "typo"], None);
}

/// c18, c17 and c16, with a condition another controller owns on c16; the default policy.
async fn seed_clusters(cp: &ControlPlane, api: &Api<DynamicObject>) {
    for (name, konvoy, k8s, kommander) in [
        ("c18", "v1.8.5", "1.20.13", "1.4.4"),
        ("c17", "v1.7.5", "1.19.15", "1.3.4"),
        ("c16", "v1.6.3", "1.18.13", "1.2.2"),
    ] {
        cp.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&konvoy_cluster(name, konvoy, k8s, kommander)),
        );
    }
    // Another controller owns a condition of its own on c16 before supportgate starts.
    let other = json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
        "status": {"phase": "Provisioned", "conditions": [{"type": "Provisioned", "status": "True", "reason": "Done",
            "message": "provisioned by kommander", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    api.patch_status(
        "c16",
        &PatchParams::apply("kommander-controller"),
        &Patch::Apply(&other),
    )
    .await
    .expect("other manager");
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
}

/// Whether the condition another controller owns on c16 is intact.
fn other_kept(o: &DynamicObject) -> bool {
    condition(o, "Provisioned").is_some_and(|c| c["message"] == "provisioned by kommander")
}

/// Every cluster gets its condition; the other manager keeps its own.
async fn first_conditions(api: &Api<DynamicObject>) {
    wait_condition(api, "c18", "True", "Supported").await;
    wait_condition(api, "c17", "True", "Supported").await;
    let c16 = wait_condition(api, "c16", "True", "KonvoyNearingEnd").await;
    assert!(
        c16["message"]
            .as_str()
            .unwrap()
            .contains("oldest supported minor"),
        "{c16}"
    );
    assert_eq!(c16["observedGeneration"], 1);
    assert!(
        other_kept(&api.get("c16").await.unwrap()),
        "another manager's condition was lost"
    );
    let managers: Vec<String> = api
        .get("c16")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"supportgate".to_string())
            && managers.contains(&"kommander-controller".to_string()),
        "{managers:?}"
    );
}

/// The policy status reports the window and the counts.
async fn first_policy_status(sp_api: &Api<SupportPolicy>) {
    eventually(WAIT, "the SupportPolicy status", || async {
        let sp = sp_api.get("default").await.ok()?;
        let st = sp.status?;
        let objects = st.objects?;
        (st.supported.as_deref() == Some("1.8, 1.7, 1.6")
            && objects.allowed == 2
            && objects.warned == 1
            && objects.denied == 0)
            .then_some(())
    })
    .await;
}

/// A release moves the window, its withdrawal moves it back: conditions, events and status follow.
async fn konvoy_19_comes_and_goes(
    cp: &ControlPlane,
    api: &Api<DynamicObject>,
    sp_api: &Api<SupportPolicy>,
) {
    // Konvoy 1.9 is released: 1.6 falls out of the window.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy_with_19()));
    let lost = wait_condition(api, "c16", "False", "KonvoyUnsupported").await;
    assert!(
        lost["message"]
            .as_str()
            .unwrap()
            .contains("upgrade to 1.7 or later"),
        "{lost}"
    );
    wait_condition(api, "c17", "True", "KonvoyNearingEnd").await;
    assert!(
        other_kept(&api.get("c16").await.unwrap()),
        "another manager's condition was lost"
    );
    eventually(WAIT, "a SupportLost event on c16", || async {
        events_for(cp, "c16").contains("SupportLost").then_some(())
    })
    .await;
    // One summary on the policy for the change, beside the objects' own events.
    let summary = eventually(WAIT, "a VerdictsChanged event on the policy", || async {
        let notes = cp.kubectl_ok(
            &[
                "-n",
                "default",
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=default,involvedObject.kind=SupportPolicy,reason=VerdictsChanged",
                "-o",
                "jsonpath={range .items[*]}{.type} {.message}{\"\\n\"}{end}",
            ],
            None,
        );
        (!notes.trim().is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(summary.trim().lines().count(), 1, "one summary: {summary}");
    assert!(
        summary.starts_with("Warning ") && summary.contains("changed verdict under this policy"),
        "{summary}"
    );
    let denied: usize = summary
        .split(" now denied")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(denied >= 1, "c16 at least is now denied: {summary}");
    eventually(WAIT, "the policy status to count the denial", || async {
        let st = sp_api.get("default").await.ok()?.status?;
        (st.objects?.denied == 1
            && st.denied_objects == vec![format!("{NS}/c16 (KonvoyCluster)")]
            && st.latest.as_deref() == Some("1.9"))
        .then_some(())
    })
    .await;

    // 1.9 is withdrawn: 1.6 is back.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    wait_condition(api, "c16", "True", "KonvoyNearingEnd").await;
    eventually(WAIT, "a SupportRestored event on c16", || async {
        events_for(cp, "c16")
            .contains("SupportRestored")
            .then_some(())
    })
    .await;
    assert!(
        other_kept(&api.get("c16").await.unwrap()),
        "another manager's condition was lost"
    );
}

/// A kind whose schema prunes conditions gets a PolicyReport instead.
async fn an_addon_gets_a_policy_report(cp: &ControlPlane) {
    // A kind whose schema prunes conditions (kubeaddons Addon) gets a PolicyReport instead.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&addon("istio")));
    let report = eventually(WAIT, "a PolicyReport for the Addon", || async {
        let out = cp.kubectl(&["-n", NS, "get", "policyreports", "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["items"]
            .as_array()?
            .iter()
            .find(|r| r["scope"]["name"] == "istio")
            .cloned()
    })
    .await;
    assert_eq!(report["scope"]["kind"], "Addon");
    assert_eq!(report["summary"]["fail"], 1, "{report:#}");
    let rules: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(rules.contains(&"experimental-component"), "{rules:?}");
    eventually(WAIT, "an event naming the PolicyReport", || async {
        events_for(cp, "istio")
            .contains("VerdictInPolicyReport")
            .then_some(())
    })
    .await;
}

/// An invalid policy is reported in its status, not enforced.
async fn an_invalid_policy_is_reported(cp: &ControlPlane, sp_api: &Api<SupportPolicy>) {
    // An invalid policy is reported, not enforced.
    let broken = DEFAULT_POLICY_YAML
        .replace("name: default", "name: broken")
        .replace(
            "{min: 1.18.x, max: 1.20.x, default: 1.20.6}",
            "{min: 1.18.x, max: 1.20.x, default: 1.21.0}",
        );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&broken));
    let ready = eventually(WAIT, "Ready=False on the broken policy", || async {
        let st = sp_api.get("broken").await.ok()?.status?;
        st.conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "False")
    })
    .await;
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("1.21.0 is outside"),
        "{}",
        ready.message
    );
    cp.kubectl_ok(&["delete", "supportpolicy", "broken"], None);
}

/// The API server restarts mid-test: the controller recovers on its own and converges.
async fn an_api_server_restart_is_survived(
    cp: &ControlPlane,
    api: &Api<DynamicObject>,
    op: &mut Operator,
) {
    // The API server restarts mid-test: the controller recovers on its own and converges.
    cp.restart_apiserver();
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&policy_with_19()));
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&konvoy_cluster("c15", "v1.5.6", "1.17.17", "1.1.4")),
    );
    wait_condition(api, "c16", "False", "KonvoyUnsupported").await;
    wait_condition(api, "c15", "False", "KonvoyUnsupported").await;
    let c16 = api.get("c16").await.unwrap();
    let supported: Vec<_> = c16.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "Supported")
        .collect();
    assert_eq!(supported.len(), 1, "no duplicated condition");
    assert!(other_kept(&c16));
    assert!(
        op.child.try_wait().unwrap().is_none(),
        "supportgate must survive the restart:\n{}",
        op.logs()
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    let o = cp.kubectl(&["-n", NS, "delete", "konvoycluster", "c15"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

const RESTART_NS: &str = "controller-restart-e2e";

/// How often each (object, reason) event was emitted in a namespace: one Event object per
/// process, and a series count for repeats within one.
async fn event_counts(client: kube::Client, ns: &str) -> BTreeMap<(String, String), i32> {
    let api: Api<K8sEvent> = Api::namespaced(client, ns);
    let mut counts = BTreeMap::new();
    for e in api
        .list(&Default::default())
        .await
        .expect("list events")
        .items
    {
        let name = e.regarding.and_then(|r| r.name).unwrap_or_default();
        let times = e.series.map_or(1, |s| s.count.max(1));
        *counts
            .entry((name, e.reason.unwrap_or_default()))
            .or_insert(0) += times;
    }
    counts
}

/// The span of the operator's `reconciled` log line for an object, if it logged one.
fn reconciled_span(op: &Operator, ns: &str, name: &str) -> Option<Value> {
    op.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "reconciled")
        .map(|l| l["span"].clone())
        .find(|s| s["namespace"] == ns && s["object"] == name)
}

fn pairs(list: &[(&str, &str)]) -> BTreeMap<(String, String), i32> {
    list.iter()
        .map(|(n, r)| ((n.to_string(), r.to_string()), 1))
        .collect()
}

#[tokio::test]
async fn a_restarted_controller_does_not_repeat_events() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.install_crd_files("tests/fixtures/crds-policyreport/");
    cp.create_namespace(RESTART_NS);
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    let client = cp.client().await;
    let objects = [
        konvoy_cluster("old", "v1.5.6", "1.17.17", "1.1.4"),
        konvoy_cluster("ending", "v1.6.3", "1.18.13", "1.2.2"),
        addon("istio"),
    ];
    for o in &objects {
        let o = o.replace(
            &format!("namespace: {NS}"),
            &format!("namespace: {RESTART_NS}"),
        );
        cp.kubectl_ok(&["apply", "-f", "-"], Some(&o));
    }
    // A conditions kind losing support, one nearing its end, and a PolicyReport kind (whose
    // verdict lives only in the report) losing support.
    let expected = pairs(&[
        ("old", "SupportLost"),
        ("ending", "SupportEndingSoon"),
        ("istio", "VerdictInPolicyReport"),
        ("istio", "SupportLost"),
    ]);

    let certs = CertFiles::new();
    let json_logs = ["--no-leader-election", "--log-format=json"];
    let mut first = Operator::start(cp, &certs, &json_logs);
    first.wait_ready().await;
    let converged = eventually(WAIT, "the first controller's events", || async {
        let counts = event_counts(client.clone(), RESTART_NS).await;
        expected
            .keys()
            .all(|k| counts.contains_key(k))
            .then_some(counts)
    })
    .await;
    assert_eq!(converged, expected, "one event per transition");
    drop(first);

    // A new process: nothing in memory, everything on the objects and in the reports.
    let mut second = Operator::start(cp, &certs, &json_logs);
    second.wait_ready().await;
    for name in ["old", "ending", "istio"] {
        let span = eventually(
            WAIT,
            &format!("the new controller to reconcile {name}"),
            || async { reconciled_span(&second, RESTART_NS, name) },
        )
        .await;
        let kind = if name == "istio" {
            "Addon"
        } else {
            "KonvoyCluster"
        };
        assert_eq!(span["kind"], kind, "{span}");
        let verdict = if name == "ending" { "warned" } else { "denied" };
        assert_eq!(span["verdict"], verdict, "{span}");
    }
    // Events are published before a reconcile logs `reconciled`: a straggler would come
    // within moments.
    holds_for(Duration::from_secs(2), || async {
        assert_eq!(
            event_counts(client.clone(), RESTART_NS).await,
            expected,
            "the restarted controller announced a verdict again:\n{}",
            second.logs()
        );
    })
    .await;
    drop(second);

    for what in ["konvoyclusters", "addons", "policyreports"] {
        cp.kubectl_ok(&["-n", RESTART_NS, "delete", what, "--all"], None);
    }
}
