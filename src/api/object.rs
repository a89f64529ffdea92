//! The one conversion from a Kubernetes object to the engine's input, shared by admission and the
//! controller so both evaluate exactly the same document.

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Map, Value};

/// The object as the engine reads it: its data with `apiVersion`, `kind` and `metadata` on top.
///
/// `resource` supplies `apiVersion` and `kind` where the object carries none of its own (objects
/// from a watch of a known resource); an AdmissionReview's objects carry their own.
pub fn engine_value(obj: DynamicObject, resource: Option<&ApiResource>) -> Value {
    let mut map = match obj.data {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let (api_version, kind) = match (obj.types, resource) {
        (_, Some(ar)) => (Some(ar.api_version.clone()), Some(ar.kind.clone())),
        (Some(t), None) => (Some(t.api_version), Some(t.kind)),
        (None, None) => (None, None),
    };
    if let Some(v) = api_version {
        map.insert("apiVersion".into(), Value::String(v));
    }
    if let Some(k) = kind {
        map.insert("kind".into(), Value::String(k));
    }
    // ObjectMeta serializes infallibly (strings, maps and timestamps only).
    map.insert(
        "metadata".into(),
        serde_json::to_value(obj.metadata).unwrap_or(Value::Null),
    );
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::GroupVersionKind;
    use serde_json::json;

    fn obj() -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "kommander.mesosphere.io/v1beta1",
            "kind": "KonvoyCluster",
            "metadata": {"name": "a", "namespace": "ns", "labels": {"environment": "production"}},
            "spec": {"provisioner": {"version": "v1.8.3"}}
        }))
        .unwrap()
    }

    #[test]
    fn admission_and_watch_views_agree() {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
            "kommander.mesosphere.io",
            "v1beta1",
            "KonvoyCluster",
        ));
        let mut watched = obj();
        watched.types = None;
        assert_eq!(engine_value(obj(), None), engine_value(watched, Some(&ar)));
        let v = engine_value(obj(), None);
        assert_eq!(v["kind"], "KonvoyCluster");
        assert_eq!(v["metadata"]["labels"]["environment"], "production");
        assert_eq!(v["spec"]["provisioner"]["version"], "v1.8.3");
    }
}
