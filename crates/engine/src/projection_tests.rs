use serde_json::{Value, json};

use super::*;
use crate::Context;
use crate::policy::Policy;
use crate::policyset::PolicySet;
use crate::targets::CompiledTarget;

fn target(fields: Value) -> CompiledTarget {
    let spec = serde_json::from_value(json!({
        "apiGroup": "example.com", "kind": "X", "resource": "xs", "fields": fields
    }))
    .expect("target");
    CompiledTarget::compile(&spec).expect("compiles")
}

fn objects() -> Vec<Value> {
    crate::query::tests::corpus()
}

#[test]
fn a_walk_keeps_the_names_it_walks_and_everything_below_its_first_other_step() {
    let keep = Keep::for_targets([&target(json!({
        "productVersion": "$.spec['provisioner','cluster'].version",
        "kbaRef": "$.spec.cluster.addons[?@.configRepository == 'x'].configVersion",
        "kubernetesVersion": "$.metadata.annotations['example.com/k8s']",
    }))]);
    let mut obj = json!({
        "apiVersion": "example.com/v1", "kind": "X",
        "metadata": {"name": "a", "namespace": "n", "uid": "u", "labels": {"env": "prod"},
            "annotations": {"example.com/k8s": "1.20.1", "kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
        "spec": {
            "provisioner": {"version": "v1.6.3", "provider": "aws", "nodePools": [{"name": "worker"}]},
            "cluster": {"version": "v1.6.3", "addons": [{"configRepository": "x", "configVersion": "t", "addonsList": [1]}]},
            "other": {"big": true}
        },
        "status": {"phase": "Provisioned"}
    });
    keep.apply(&mut obj);
    assert_eq!(
        obj,
        json!({
            "apiVersion": "example.com/v1", "kind": "X",
            "metadata": {"name": "a", "namespace": "n", "labels": {"env": "prod"},
                "annotations": {"example.com/k8s": "1.20.1"}},
            "spec": {
                "provisioner": {"version": "v1.6.3"},
                "cluster": {"version": "v1.6.3", "addons": [{"configRepository": "x", "configVersion": "t", "addonsList": [1]}]}
            }
        })
    );
}

#[test]
fn a_query_that_is_not_a_walk_keeps_everything() {
    let keep = Keep::for_targets([&target(json!({"productVersion": "$..version"}))]);
    assert!(keep.is_all());
    let mut obj = json!({"spec": {"a": 1}, "status": {"b": 2}});
    let before = obj.clone();
    keep.apply(&mut obj);
    assert_eq!(obj, before);
}

#[test]
fn projections_compare_equal_when_they_keep_the_same() {
    let a = Keep::for_targets([&target(
        json!({"productVersion": "$.spec.version", "kbaRef": "$.spec"}),
    )]);
    let b = Keep::for_targets([&target(json!({"productVersion": "$.spec"}))]);
    assert_eq!(a, b);
    assert_eq!(a.get("spec"), Some(&Keep::everything()));
    assert!(a.get("status").is_none());
}

#[test]
fn a_pruned_object_gets_exactly_the_verdict_of_the_whole_one() {
    let history = Policy::from_yaml(include_str!(
        "../../../examples/policies/konvoy-1x-history.yaml"
    ))
    .expect("history policy");
    let ctx = Context::new(jiff::civil::date(2026, 12, 4));
    let mut compared = 0;
    for policy in [Policy::embedded_default(), history] {
        let set = PolicySet::from_policies(vec![std::sync::Arc::new(policy)]);
        let keep = Keep::for_targets(set.targets());
        assert!(!keep.is_all(), "the built-in targets are all walks");
        for obj in objects() {
            let mut pruned = obj.clone();
            keep.apply(&mut pruned);
            let whole = set.assess(&obj, &ctx).map(|a| format!("{a:?}"));
            let part = set.assess(&pruned, &ctx).map(|a| format!("{a:?}"));
            assert_eq!(whole, part, "{obj}");
            compared += usize::from(whole.is_some());
        }
    }
    assert!(compared > 50, "the corpus is evaluated: {compared}");
}
