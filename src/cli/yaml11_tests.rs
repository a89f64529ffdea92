use super::*;
use serde_json::json;

fn one(text: &str) -> Document {
    let (mut docs, errors) = decode(text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 1, "{docs:?}");
    docs.remove(0)
}

#[test]
fn yaml_1_1_booleans_as_kubectl_reads_them() {
    for t in [
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True",
    ] {
        assert_eq!(resolve_plain(t), Ok(json!(true)), "{t}");
    }
    for f in [
        "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "FALSE",
    ] {
        assert_eq!(resolve_plain(f), Ok(json!(false)), "{f}");
    }
    // go-yaml v2's table has three spellings per word, not every case.
    for s in ["yEs", "oN", "nO", "tRUE", "Yes!", "yes please"] {
        assert_eq!(resolve_plain(s), Ok(json!(s)), "{s}");
    }
}

#[test]
fn numbers_as_go_yaml_resolves_them() {
    let cases = [
        ("1.20", json!(1.2)),
        ("1.2.0", json!("1.2.0")),
        ("v1.20", json!("v1.20")),
        ("0755", json!(493)),
        ("0x1F", json!(31)),
        ("0o17", json!(15)),
        ("0b101", json!(5)),
        ("-0b101", json!(-5)),
        ("1_000", json!(1000)),
        ("+12", json!(12)),
        ("09", json!(9)),
        ("1e3", json!(1000)),
        ("3.0", json!(3)),
        (".5", json!(0.5)),
        ("5.", json!(5)),
        ("1e999", json!("1e999")),
        ("18446744073709551615", json!(18446744073709551615u64)),
        ("2024-1-2", json!("2024-1-2")),
        ("-", json!("-")),
        ("+", json!("+")),
        (".", json!(".")),
        ("1.20-rc.1", json!("1.20-rc.1")),
    ];
    for (text, want) in cases {
        assert_eq!(resolve_plain(text), Ok(want), "{text}");
    }
    assert!(resolve_plain(".nan").is_err());
    assert!(resolve_plain("-.Inf").is_err());
}

#[test]
fn quoted_and_tagged_scalars_keep_their_text() {
    let d = one("a: 'yes'\nb: \"1.20\"\nc: !!str on\nd: |\n  yes\ne: !!int 12\nf: !!float 1\n");
    assert_eq!(
        d.value,
        json!({"a": "yes", "b": "1.20", "c": "on", "d": "yes\n", "e": 12, "f": 1})
    );
    assert!(d.coercions.is_empty(), "{:?}", d.coercions);
    let (_, errors) = decode("a: !!int yes\n");
    assert_eq!(errors.len(), 1);
    let (_, errors) = decode("a: !custom x\n");
    assert!(errors[0].message.contains("unsupported tag"), "{errors:?}");
}

#[test]
fn coercions_carry_the_engine_field_path() {
    let d = one(
        "spec:\n  version: 1.20\n  addons:\n  - {name: istio, enabled: yes}\n  labels:\n    a/b: on\n",
    );
    assert_eq!(d.value["spec"]["addons"][0]["enabled"], json!(true));
    let got: Vec<_> = d
        .coercions
        .iter()
        .map(|c| (c.field.as_str(), c.text.as_str(), c.value.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("spec.version", "1.20", json!(1.2)),
            ("spec.addons[0].enabled", "yes", json!(true)),
            ("spec.labels['a/b']", "on", json!(true)),
        ]
    );
}

#[test]
fn keys_anchors_merges_and_documents() {
    // As kubectl does: `on` and `y` as keys are the key "true".
    let d = one("on: 1\nbase: &b {p: 1, q: 2}\nuse:\n  <<: *b\n  q: 3\n");
    assert_eq!(
        d.value,
        json!({"true": 1, "base": {"p": 1, "q": 2}, "use": {"p": 1, "q": 3}})
    );
    let (docs, errors) = decode("---\na: 1\n---\n---\nb: 2\n");
    assert!(errors.is_empty());
    let idx: Vec<_> = docs.iter().map(|d| (d.index, d.value.is_null())).collect();
    assert_eq!(idx, [(1, false), (2, true), (3, false)]);
}

#[test]
fn bad_documents_are_reported_with_a_line() {
    let (docs, errors) = decode("a: 1\n---\na: 1\na: 2\n---\nb: 3\n");
    assert_eq!(docs.len(), 2, "the good documents still count");
    assert_eq!((errors[0].document, errors[0].line), (2, 4), "{errors:?}");
    assert!(errors[0].message.contains("duplicate"), "{errors:?}");
    let (docs, errors) = decode("a: 1\n---\nb: [unclosed\n");
    assert_eq!(docs.len(), 1);
    assert!(errors[0].line >= 3, "{errors:?}");
}

#[test]
fn alias_expansion_is_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let (docs, errors) = decode(&text);
    assert!(docs.is_empty());
    assert!(errors[0].message.contains("refusing"), "{errors:?}");
}

#[test]
fn nesting_is_bounded() {
    // The parser stops far nesting itself; between its limit and ours, ours does.
    let far = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let (docs, errors) = decode(&far);
    assert!(docs.is_empty() && !errors.is_empty());
    let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
    let (docs, errors) = decode(&deep);
    assert!(docs.is_empty());
    assert!(errors[0].message.contains("deeper"), "{errors:?}");
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(decode(&ok).0.len(), 1);
}
