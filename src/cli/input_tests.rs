use super::*;
use serde_json::json;

#[test]
fn list_items_get_their_own_coercions() {
    let text = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: A, x: yes}\n- {apiVersion: v1, kind: B, z: [1.20]}\n";
    let (objs, errs) = parse("l.yaml", text);
    assert!(errs.is_empty(), "{errs:?}");
    let got: Vec<_> = objs
        .iter()
        .map(|l| {
            let c: Vec<_> = l.coercions.iter().map(|c| c.field.as_str()).collect();
            (l.object.object["kind"].clone(), c.join(","))
        })
        .collect();
    assert_eq!(got, [(json!("A"), "x".into()), (json!("B"), "z[0]".into())]);
}

#[test]
fn json_streams_are_read_whole() {
    let (objs, errs) = parse(
        "s.json",
        "{\"apiVersion\":\"v1\",\"kind\":\"A\"}\n{\"apiVersion\":\"v1\",\"kind\":\"B\",\"x\":\"yes\"}",
    );
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[1].object.document, 2);
    assert_eq!(objs[1].object.object["x"], json!("yes"), "JSON is not YAML");
}

#[test]
fn multi_document_yaml_with_lists_and_blanks() {
    let text = "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\n";
    let (objs, errs) = parse_objects("x.yaml", text);
    assert!(errs.is_empty(), "{errs:?}");
    let names: Vec<_> = objs
        .iter()
        .map(|o| (o.document, o.object["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [(1, "a"), (1, "b"), (3, "c")]);
}

#[test]
fn syntax_errors_carry_a_line() {
    let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: [unclosed\n";
    let (objs, errs) = parse_objects("bad.yaml", text);
    assert_eq!(objs.len(), 1, "the good document still counts");
    let msg = errs[0].to_string();
    assert!(msg.starts_with("bad.yaml:"), "{msg}");
    assert!(
        matches!(errs[0], InputError::Parse { location: Some((l, _)), .. } if l >= 5),
        "{msg}"
    );
}

#[test]
fn json_and_non_objects() {
    let (objs, errs) = parse_objects("a.json", r#"{"apiVersion":"v1","kind":"ConfigMap"}"#);
    assert_eq!((objs.len(), errs.len()), (1, 0));
    let (_, errs) = parse_objects("a.json", r#"{"apiVersion":"v1","#);
    assert!(matches!(
        errs[0],
        InputError::Parse {
            location: Some(_),
            ..
        }
    ));
    let (_, errs) = parse_objects("s.yaml", "just a string\n");
    assert!(matches!(
        errs[0],
        InputError::NotAnObject { document: 1, .. }
    ));
}
