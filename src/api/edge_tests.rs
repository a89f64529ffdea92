//! The edge between the custom resources and the engine: an object read as the API server
//! serves it compiles exactly as the engine's own document of the same text.

use serde_json::{Value, json};

use crate::api::{SupportException, SupportPolicy};
use crate::engine::exceptions::CompiledException;
use crate::engine::policy::{DEFAULT_POLICY_YAML, Policy};
use crate::engine::spec::{ExceptionDocument, PolicyDocument};

#[test]
fn a_support_policy_compiles_as_the_engine_document_does() {
    let text = DEFAULT_POLICY_YAML.replace(
        "    matchLabels:\n      environment: production\n",
        "    matchLabels:\n      environment: production\n    matchExpressions:\n    - {key: tier, operator: In, values: [prod]}\n",
    );
    let object: SupportPolicy = serde_norway::from_str(&text).unwrap();
    let document: PolicyDocument = serde_norway::from_str(&text).unwrap();
    assert_eq!(*object.spec, document.spec);
    let (a, b) = (
        Policy::compile(&object).unwrap(),
        Policy::compile(&document).unwrap(),
    );
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.name, "default");
    assert_eq!(a.production_text(), "environment=production,tier in (prod)");
}

fn exception() -> Value {
    json!({
        "apiVersion": "supportgate.dev/v1alpha1",
        "kind": "SupportException",
        "metadata": {"name": "legacy-west", "namespace": "supportgate",
                     "creationTimestamp": "2026-11-20T10:00:00Z"},
        "spec": {"reason": "DR cluster", "expires": "2027-01-31", "rules": ["konvoy-unsupported"],
                 "match": {"namespaces": ["kommander"], "selector": {"matchLabels": {"team": "acme"}}}},
    })
}

#[test]
fn a_support_exception_compiles_as_the_engine_document_does() {
    let object: SupportException = serde_json::from_value(exception()).unwrap();
    let document: ExceptionDocument = serde_json::from_value(exception()).unwrap();
    assert_eq!(*object.spec, document.spec);
    let (a, b) = (
        CompiledException::compile(&object).unwrap(),
        CompiledException::compile(&document).unwrap(),
    );
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(a.key, "supportgate/legacy-west");
    assert_eq!(
        a.created.map(|d| d.to_string()).as_deref(),
        Some("2026-11-20")
    );
    // Wire format unchanged: the object serializes its spec as it was written.
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(back["spec"], exception()["spec"]);
}
