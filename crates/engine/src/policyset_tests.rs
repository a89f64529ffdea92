use super::*;
use crate::policy::DEFAULT_POLICY_YAML;
use jiff::civil::date;
use serde_json::json;

#[test]
fn policies_merge_and_the_strictest_wins() {
    let strict =
        Policy::from_yaml(&DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: 2"))
            .unwrap();
    let set =
        PolicySet::from_policies(vec![Arc::new(Policy::embedded_default()), Arc::new(strict)]);
    assert!(!set.is_embedded_default());
    let obj = json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner", "spec": {"version": "v1.6.3"}});
    let e = set
        .assess(&obj, &Context::new(date(2026, 11, 24)))
        .unwrap()
        .evaluation;
    assert_eq!(e.verdict, Verdict::Denied);
    assert_eq!(
        e.violations.len(),
        2,
        "a warning from one policy, a denial from the other: {:#?}",
        e.violations
    );
    assert!(
        set.assess(
            &json!({"apiVersion": "v1", "kind": "Pod"}),
            &Context::new(date(2026, 11, 24))
        )
        .is_none()
    );
    assert!(PolicySet::from_policies(vec![]).is_embedded_default());
}

#[test]
fn merging_many_policies_stays_bounded_and_lists_each_violation_once() {
    let set = PolicySet::from_policies(
        (0..5)
            .map(|_| Arc::new(Policy::embedded_default()))
            .collect(),
    );
    let addons: Vec<_> = (0..20_000)
        .map(|i| json!({"name": if i % 2 == 0 { "istio".to_string() } else { format!("a{i}") }, "enabled": true}))
        .collect();
    let obj = json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
        "metadata": {"name": "c", "labels": {"environment": "production"}},
        "spec": {"provisioner": {"version": "v1.5.6"}, "cluster": {"kubernetes": {"version": "1.17.17"},
            "addons": [{"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
                "configVersion": "stable-1.17-3.0.0", "addonsList": addons}]}}});
    let a = set.assess(&obj, &Context::new(date(2026, 11, 24))).unwrap();
    let e = &a.evaluation;
    assert_eq!(e.verdict, Verdict::Denied);
    assert_eq!(a.per_policy.len(), 5);
    assert!(e.violations.len() <= crate::MAX_VIOLATIONS);
    let unique: std::collections::HashSet<_> = e.violations.iter().collect();
    assert_eq!(unique.len(), e.violations.len(), "each violation once");
    assert_eq!(
        e.violations
            .iter()
            .filter(|v| v.message.contains("more violations not listed"))
            .count(),
        1
    );
    // The same five policies agree on a plain object: one listing, not five.
    let plain = json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner", "spec": {"version": "v1.5.6"}});
    let e = set
        .assess(&plain, &Context::new(date(2026, 11, 24)))
        .unwrap()
        .evaluation;
    assert_eq!(e.violations.len(), 1, "{:#?}", e.violations);
}
