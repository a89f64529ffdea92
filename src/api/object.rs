//! The one conversion from a Kubernetes object to the engine's input, shared by admission and the
//! controller so both evaluate exactly the same document.
//!
//! The controller has kube's `DynamicObject` ([`engine_value`]); the webhook decodes the
//! review's objects straight from its body ([`EngineObject`]), without a `DynamicObject` in
//! between. Both end in [`document`]: the object's members, its type, and its metadata as
//! `ObjectMeta` gives it.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The object as the engine reads it: its data with `apiVersion`, `kind` and `metadata` on top.
///
/// `resource` supplies `apiVersion` and `kind` where the object carries none of its own (objects
/// from a watch of a known resource); an AdmissionReview's objects carry their own.
pub fn engine_value(obj: DynamicObject, resource: Option<&ApiResource>) -> Value {
    let members = match obj.data {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let types = match (obj.types, resource) {
        (_, Some(ar)) => Some((ar.api_version.clone(), ar.kind.clone())),
        (Some(t), None) => Some((t.api_version, t.kind)),
        (None, None) => None,
    };
    document(members, types, &obj.metadata)
}

/// The engine's document: the object's other members, with `apiVersion` and `kind` (when given)
/// and `metadata` as `ObjectMeta` serializes it, so that both paths normalize it alike.
fn document(
    mut members: Map<String, Value>,
    types: Option<(String, String)>,
    metadata: &ObjectMeta,
) -> Value {
    if let Some((api_version, kind)) = types {
        members.insert("apiVersion".into(), Value::String(api_version));
        members.insert("kind".into(), Value::String(kind));
    }
    // ObjectMeta serializes infallibly (strings, maps and timestamps only).
    members.insert(
        "metadata".into(),
        serde_json::to_value(metadata).unwrap_or(Value::Null),
    );
    Value::Object(members)
}

/// An object decoded straight into the document [`engine_value`] gives for it, as an
/// AdmissionReview's `object` and `oldObject` are.
#[derive(Debug)]
pub struct EngineObject(pub Value);

impl<'de> Deserialize<'de> for EngineObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor)
    }
}

/// Reads an object's members as values, but its metadata straight into `ObjectMeta`: through a
/// `Value` first, every string of it was allocated twice.
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = EngineObject;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<EngineObject, A::Error> {
        let mut members = Map::new();
        // As `DynamicObject`: a missing metadata is the empty one; a malformed one is an error.
        // Every member is decoded as it comes, so a malformed one is an error even if the key
        // is repeated later; of two well-formed ones the last counts.
        let mut meta = None;
        while let Some(key) = m.next_key::<String>()? {
            if key == "metadata" {
                meta = Some(m.next_value::<ObjectMeta>()?);
            } else {
                members.insert(key, m.next_value::<Value>()?);
            }
        }
        // `apiVersion` and `kind` stay the members they were: `DynamicObject` drops them when
        // they are not a pair of strings (which ones depends on the order of the fields), and
        // the engine skips such an object either way.
        let meta = meta.unwrap_or_default();
        Ok(EngineObject(document(members, None, &meta)))
    }
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
