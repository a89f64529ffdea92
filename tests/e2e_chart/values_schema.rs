//! The chart's values: `helm lint` passes in both certificate modes, and the values schema
//! closes every object, so a typo fails `helm template` and `helm install` with a schema error.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::chart::{CHART, helm, helm_ok};
use crate::support::{ControlPlane, repo, stderr, stdout};

/// Every optional part of the chart switched on.
pub const EVERYTHING: &[&str] = &[
    "certManager.enabled=true",
    "networkPolicy.enabled=true",
    "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
    "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/8",
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
    "image.pullSecrets={regcred}",
    "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "commonLabels.team=platform",
    "podLabels.tier=control",
    "podAnnotations.example\\.com/scrape=enabled",
    "tolerations[0].key=dedicated",
    "tolerations[0].operator=Equal",
    "tolerations[0].value=infra",
    "tolerations[0].effect=NoSchedule",
    "nodeSelector.kubernetes\\.io/os=linux",
    "priorityClassName=system-cluster-critical",
    "extraArgs={--hosting-kubernetes-version=1.20.13}",
    "webhook.failurePolicy=Ignore",
    "webhook.timeoutSeconds=10",
    "webhook.excludeNamespaces={kommander}",
    "webhook.objectSelector.matchExpressions[0].key=supportgate.dev/skip",
    "webhook.objectSelector.matchExpressions[0].operator=DoesNotExist",
    "serviceAccount.annotations.example\\.com/owner=platform",
    "replicaCount=3",
    "podDisruptionBudget.minAvailable=50%",
    "logLevel=info\\,supportgate=debug",
    "logFormat=text",
];

#[test]
fn helm_lint_passes_in_both_certificate_modes() {
    let cp = ControlPlane::shared();
    let mut everything = vec!["lint", "--strict", CHART];
    for s in EVERYTHING {
        everything.extend(["--set", s]);
    }
    for args in [
        vec!["lint", "--strict", CHART],
        vec![
            "lint",
            "--strict",
            CHART,
            "--set",
            "certManager.enabled=true",
        ],
        everything,
    ] {
        let out = helm_ok(cp, &args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{args:?}:\n{out}"
        );
        assert!(!out.contains("[WARNING]"), "{args:?}:\n{out}");
    }
}

#[test]
fn a_typo_in_values_fails_helm_template_and_install_with_a_schema_error() {
    let cp = ControlPlane::shared();
    let dir = tempfile::tempdir().unwrap();
    let values_file = dir.path().join("typo.yaml");
    std::fs::write(
        &values_file,
        "image:\n  repository: supportgate\n  tga: \"0.1.0\"\n",
    )
    .unwrap();
    let values_file = values_file.to_str().unwrap().to_string();
    for (extra, want) in &typo_cases(&values_file) {
        helm_template_refuses(cp, extra, want);
    }
    helm_install_refuses_before_anything_reaches_the_cluster(cp);
}

/// A misspelt value (as `--set` or in a values file) and the schema error it must raise.
fn typo_cases(values_file: &str) -> Vec<(Vec<&str>, &str)> {
    vec![
        (
            vec!["--set", "replicaCont=3"],
            "additional properties 'replicaCont' not allowed",
        ),
        (
            vec!["--set", "webhook.failurPolicy=Ignore"],
            "at '/webhook': additional properties 'failurPolicy' not allowed",
        ),
        (
            vec!["--set", "webhook.failurePolicy=ignore"],
            "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'",
        ),
        (
            vec!["--set", "metrics.serviceMonitor.enabeld=true"],
            "at '/metrics/serviceMonitor': additional properties 'enabeld' not allowed",
        ),
        (
            vec!["--set", "resources.requests.memroy=1Gi"],
            "at '/resources/requests': additional properties 'memroy' not allowed",
        ),
        (
            vec!["--set", "certManager.issuerRef.nmae=corp-ca"],
            "at '/certManager/issuerRef': additional properties 'nmae' not allowed",
        ),
        (
            vec![
                "--set",
                "networkPolicy.webhookFrom[0].podSelectr.matchLabels.a=b",
            ],
            "at '/networkPolicy/webhookFrom/0': additional properties 'podSelectr' not allowed",
        ),
        (
            vec!["--set", "targets[0].resource=konvoyclusters"],
            "additional properties 'resource' not allowed",
        ),
        (
            vec!["--set", "commonLabels.app\\.kubernetes\\.io/name=other"],
            "invalid propertyName 'app.kubernetes.io/name'",
        ),
        (
            vec!["-f", values_file],
            "at '/image': additional properties 'tga' not allowed",
        ),
    ]
}

/// `helm template` renders nothing and names the misspelt value in a schema error.
fn helm_template_refuses(cp: &ControlPlane, extra: &[&str], want: &str) {
    let mut args = vec!["template", "sg", CHART];
    args.extend_from_slice(extra);
    let o = helm(cp, &args);
    assert!(!o.status.success(), "{extra:?} rendered:\n{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("values don't meet the specifications of the schema"),
        "{extra:?}: {err}"
    );
    assert!(
        err.contains(want),
        "{extra:?}: expected {want:?} in:\n{err}"
    );
    assert!(stdout(&o).trim().is_empty(), "{extra:?}: {}", stdout(&o));
}

/// `helm install` refuses the same way, before anything reaches the cluster.
fn helm_install_refuses_before_anything_reaches_the_cluster(cp: &ControlPlane) {
    cp.create_namespace("chart-typo");
    let o = helm(
        cp,
        &[
            "install",
            "typo",
            CHART,
            "-n",
            "chart-typo",
            "--set",
            "webhook.timeoutSecond=3",
        ],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("at '/webhook': additional properties 'timeoutSecond' not allowed"),
        "{}",
        stderr(&o)
    );
    let o = helm(cp, &["status", "typo", "-n", "chart-typo"]);
    assert!(
        !o.status.success() && stderr(&o).contains("release: not found"),
        "{}",
        stderr(&o)
    );
    let vwcs = cp.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app.kubernetes.io/instance=typo",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(vwcs.trim(), "");
}

/// Every object in values.schema.json is closed (`additionalProperties: false`); only the free
/// maps (labels, annotations, nodeSelector) take any key, and they have no `properties`.
#[test]
fn the_values_schema_closes_every_object() {
    let text = std::fs::read_to_string(repo().join(CHART).join("values.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).expect("values.schema.json is JSON");
    fn walk(v: &Value, path: &str, closed: &mut usize, root: &Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("properties") {
                    assert_eq!(
                        m.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{path} has properties but is not closed"
                    );
                    *closed += 1;
                }
                if m.get("type") == Some(&json!("object")) && !m.contains_key("properties") {
                    // A free map: its values are typed.
                    assert!(
                        m.get("additionalProperties").is_some_and(Value::is_object),
                        "{path} is an object without properties or typed values"
                    );
                }
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let pointer = r.strip_prefix('#').expect("local $ref");
                    assert!(root.pointer(pointer).is_some(), "{path}: dangling $ref {r}");
                }
                for (k, child) in m {
                    walk(child, &format!("{path}/{k}"), closed, root);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"), closed, root);
                }
            }
            _ => {}
        }
    }
    let mut closed = 0;
    walk(&schema, "", &mut closed, &schema);
    assert_eq!(schema["additionalProperties"], json!(false));
    assert!(closed >= 15, "only {closed} closed objects");

    // Every top-level value the chart documents is declared, and nothing else.
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(repo().join(CHART).join("values.yaml")).unwrap(),
    )
    .unwrap();
    let in_values: BTreeSet<&String> = values.as_object().unwrap().keys().collect();
    let in_schema: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(in_values, in_schema);
}

// ------------------------------------------------------------------- server-side validation
