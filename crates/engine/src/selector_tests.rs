use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn selector(v: serde_json::Value) -> Result<Selector, SelectorError> {
    let s: LabelSelector = serde_json::from_value(v).expect("a LabelSelector");
    Selector::try_from(s)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn match_labels_and_expressions_are_anded() {
    let s = selector(json!({
        "matchLabels": {"environment": "production"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "zone", "operator": "NotIn", "values": ["x"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]
    }))
    .unwrap();
    let ok = [
        ("environment", "production"),
        ("tier", "a"),
        ("owner", "acme"),
    ];
    assert!(s.matches(&labels(&ok)));
    // Every requirement, one at a time, on its failing side.
    let cases: [(&str, &[(&str, &str)]); 6] = [
        (
            "wrong value",
            &[("environment", "staging"), ("tier", "a"), ("owner", "o")],
        ),
        ("missing label", &[("tier", "a"), ("owner", "o")]),
        (
            "In, value not listed",
            &[("environment", "production"), ("tier", "c"), ("owner", "o")],
        ),
        (
            "In, label absent",
            &[("environment", "production"), ("owner", "o")],
        ),
        (
            "NotIn, value listed",
            &[
                ("environment", "production"),
                ("tier", "a"),
                ("owner", "o"),
                ("zone", "x"),
            ],
        ),
        (
            "DoesNotExist, present",
            &[
                ("environment", "production"),
                ("tier", "b"),
                ("owner", "o"),
                ("legacy", ""),
            ],
        ),
    ];
    for (why, l) in cases {
        assert!(!s.matches(&labels(l)), "{why}");
    }
    // NotIn holds when the label is absent or has another value; Exists needs only the key.
    assert!(s.matches(&labels(&[
        ("environment", "production"),
        ("tier", "b"),
        ("owner", ""),
        ("zone", "y"),
    ])));
    assert!(!s.matches(&labels(&[("environment", "production"), ("tier", "b")])));
}

#[test]
fn it_reads_as_kubectl_takes_it() {
    let s = selector(json!({
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "t", "operator": "In", "values": ["y", "x"]},
            {"key": "z", "operator": "NotIn", "values": ["q"]},
            {"key": "o", "operator": "Exists"},
            {"key": "l", "operator": "DoesNotExist"},
        ]
    }))
    .unwrap();
    assert_eq!(s.to_string(), "a=1,b=2,t in (x,y),z notin (q),o,!l");
}

#[test]
fn empty_selects_all_and_bad_requirements_are_refused() {
    assert!(selector(json!({})).unwrap().selects_all());
    assert!(
        selector(json!({"matchLabels": {}}))
            .unwrap()
            .matches(&labels(&[]))
    );
    assert!(
        !selector(json!({"matchLabels": {"a": "1"}}))
            .unwrap()
            .selects_all()
    );
    for (v, text) in [
        (
            json!({"key": "a", "operator": "In"}),
            "failed to parse value as expression: Expected values for In operator, got none",
        ),
        (
            json!({"key": "a", "operator": "NotIn"}),
            "failed to parse value as expression: Expected values for In operator, got none",
        ),
        (
            json!({"key": "a", "operator": "Equals", "values": ["b"]}),
            "failed to parse value as expression: Invalid expression operator",
        ),
    ] {
        let e = selector(json!({"matchExpressions": [v]})).unwrap_err();
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn the_wire_format_is_kubernetes_own() {
    // Unknown fields are ignored and absent key/operator read as empty, as k8s-openapi does.
    let s: LabelSelector = serde_json::from_value(json!({
        "matchExpressions": [{"operator": "Exists", "extra": 1}],
        "other": true
    }))
    .unwrap();
    let r = &s.match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (r.key.as_str(), r.operator.as_str(), &r.values),
        ("", "Exists", &None)
    );
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({"matchExpressions": [{"key": "", "operator": "Exists"}]})
    );
    assert_eq!(
        serde_json::to_value(LabelSelector::default()).unwrap(),
        json!({})
    );
    let s: LabelSelector = serde_json::from_value(json!({
        "matchLabels": null,
        "matchExpressions": [{"key": null, "operator": null, "values": null}]
    }))
    .unwrap();
    assert_eq!(s.match_labels, None);
    assert_eq!(
        s.match_expressions.unwrap()[0],
        LabelSelectorRequirement::default()
    );
    // Errors name the types as Kubernetes' decoder does.
    let e = serde_json::from_value::<LabelSelector>(json!("env=prod")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid type: string \"env=prod\", expected LabelSelector"
    );
}
