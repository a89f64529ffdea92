//! The RBAC the chart must grant, and what the API server's authorizer answers for an account.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use supportgate::api::webhook_configuration::rules_for;
use supportgate::engine::policyset::PolicySet;

use crate::render::strs;
use crate::support::ControlPlane;

/// RBAC rules as comparable lines: `groups | resources | resourceNames | verbs`, each sorted.
pub fn rule_lines(rules: &Value) -> BTreeSet<String> {
    rules
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            let field = |k: &str| {
                let mut v = if r[k].is_null() { vec![] } else { strs(&r[k]) };
                v.sort();
                v.join(",")
            };
            format!(
                "{} | {} | {} | {}",
                field("apiGroups"),
                field("resources"),
                field("resourceNames"),
                field("verbs")
            )
        })
        .collect()
}

/// The kinds the embedded default policy targets, as `(group, resources)`: what the chart's
/// webhook rules and ClusterRole must cover.
pub fn default_targets() -> Vec<(String, Vec<String>)> {
    let set = PolicySet::embedded_default();
    rules_for(set.targets())
        .into_iter()
        .map(|r| (r.api_groups.unwrap()[0].clone(), r.resources.unwrap()))
        .collect()
}

/// The ClusterRole and Role rules the chart must render for `fullname`: exactly what
/// `supportgate run` uses (the list of issue 6), nothing more.
pub fn expected_rbac(
    fullname: &str,
    self_managed: bool,
    creates_policy: bool,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut cluster = vec![
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportpolicies"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportpolicies/status"], "verbs": ["get", "patch", "update"]}),
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportexceptions"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportexceptions/status"], "verbs": ["get", "patch", "update"]}),
        json!({"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports", "clusterpolicyreports"], "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}),
        json!({"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}),
    ];
    if creates_policy {
        cluster.push(json!({"apiGroups": ["supportgate.dev"], "resources": ["supportpolicies"], "verbs": ["create"]}));
    }
    for (group, resources) in default_targets() {
        let status: Vec<String> = resources.iter().map(|r| format!("{r}/status")).collect();
        cluster.push(json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}));
        cluster.push(json!({"apiGroups": [group], "resources": status, "verbs": ["get", "patch"]}));
    }
    let mut ns = vec![
        json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}),
        json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [fullname], "verbs": ["get", "update"]}),
    ];
    // Its own webhook configuration: the rules follow the policies (watched by name, patched)
    // in both modes; the self-managed caBundle is written with an update.
    let webhook_verbs = if self_managed {
        json!(["get", "list", "watch", "patch", "update"])
    } else {
        json!(["get", "list", "watch", "patch"])
    };
    cluster.push(json!({"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "resourceNames": [fullname], "verbs": webhook_verbs}));
    if self_managed {
        ns.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}));
        ns.push(json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": [format!("{fullname}-tls")], "verbs": ["get", "list", "watch", "update", "patch"]}));
    }
    (rule_lines(&json!(cluster)), rule_lines(&json!(ns)))
}

/// Whether the ServiceAccount `ns/name` may `verb` on `resource` (`plural[.group][/subresource]`,
/// optionally `…:objectName`) in `namespace` ("" for cluster-wide), as the API server's
/// authorizer answers a SubjectAccessReview. (Not `kubectl auth can-i`: it needs the kind to
/// be served, and the targeted kinds are not installed here.)
pub fn allowed(
    cp: &ControlPlane,
    sa: (&str, &str),
    verb: &str,
    resource: &str,
    namespace: &str,
) -> bool {
    let (resource, name) = resource.split_once(':').unwrap_or((resource, ""));
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": format!("system:serviceaccount:{}:{}", sa.0, sa.1),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", sa.0), "system:authenticated"],
            "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource, "subresource": subresource,
                "namespace": namespace, "name": name,
            },
        },
    });
    let out = cp.kubectl_ok(
        &["create", "-f", "-", "-o", "jsonpath={.status.allowed}"],
        Some(&review.to_string()),
    );
    match out.trim() {
        "true" => true,
        "false" | "" => false,
        other => panic!("SubjectAccessReview {review}: {other}"),
    }
}
