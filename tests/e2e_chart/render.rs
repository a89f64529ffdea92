//! What `helm template` renders, as JSON documents to look into.

use serde::Deserialize as _;
use serde_json::Value;

use crate::support::ControlPlane;
use crate::support::chart::{CHART, helm_ok};

/// `helm template RELEASE charts/supportgate --namespace NS --set S...`
pub fn template(cp: &ControlPlane, release: &str, ns: &str, sets: &[&str]) -> String {
    let mut args = vec!["template", release, CHART, "--namespace", ns];
    for s in sets {
        args.extend(["--set", s]);
    }
    helm_ok(cp, &args)
}

/// The documents of a multi-document YAML stream, as JSON values (empty documents dropped).
pub fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The kinds of `docs`, sorted.
pub fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    k.sort();
    k
}

/// The document of `kind` named `name`.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", kinds(docs)))
}

/// The strings of a JSON array.
pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// The text of a YAML document from its `spec:` line to the end.
pub fn from_spec(text: &str) -> &str {
    let at = text
        .find("\nspec:\n")
        .unwrap_or_else(|| panic!("no spec in:\n{text}"));
    &text[at + 1..]
}
