//! What the controller keeps of each watched object between reconciles: what the policies'
//! targets read ([`Keep`]), the metadata that names, selects and versions it, and the one
//! condition it owns. At 10,000 objects the cache of whole objects was most of the process's
//! memory; none of the rest is ever read.
//!
//! What is kept is held as [`Cached`]: the projection's JSON text, not a tree of `serde_json`
//! values. A `Value` tree costs a B-tree node (~600 bytes) per JSON object however few keys it
//! has, and a `String` per key and value, about 7 KB for a projected KonvoyCluster; its text is
//! about a kilobyte. A reconcile decodes it again, a few microseconds against a status write.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject};
use kube::core::DynamicResourceScope;
use kube::runtime::watcher;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::controller::condition::CONDITION_TYPE;
use crate::engine::policyset::PolicySet;
use crate::engine::projection::Keep;

/// What to keep of objects of `ar`'s kind: the union over every policy's targets for it.
pub fn keep_for(policies: &PolicySet, ar: &ApiResource) -> Keep {
    Keep::for_targets(
        policies
            .targets()
            .filter(|t| t.spec.api_group == ar.group && t.spec.kind == ar.kind),
    )
}

/// Prunes a watched object, in place, to what a reconcile reads.
pub fn project(keep: &Keep, obj: &mut DynamicObject) {
    let status_kept = keep
        .get("status")
        .and_then(|s| s.get("conditions"))
        .is_some_and(Keep::is_all);
    let supported = if status_kept {
        None
    } else {
        take_supported(&mut obj.data)
    };
    keep.apply(&mut obj.data);
    project_metadata(keep.get("metadata"), &mut obj.metadata);
    if let Some(c) = supported
        && let Value::Object(data) = &mut obj.data
    {
        let status = data
            .entry("status")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(status) = status {
            status.insert("conditions".into(), Value::Array(vec![c]));
        }
    }
}

/// A watched object as the cache keeps it: what names it, for the reflector's store and the
/// controller's queue, and the rest as the JSON text of its projection.
#[derive(Clone, Debug)]
pub struct Cached {
    meta: ObjectMeta,
    body: Box<[u8]>,
}

impl Cached {
    /// Keeps `obj` (already projected) as it is.
    pub fn new(obj: &DynamicObject) -> Cached {
        let m = &obj.metadata;
        let meta = ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            generation: m.generation,
            ..ObjectMeta::default()
        };
        // A DynamicObject decoded from JSON always encodes again; were it ever not to, the empty
        // body fails every reconcile of the object (`object`), logged, rather than pass it.
        let body = serde_json::to_vec(obj)
            .unwrap_or_else(|e| {
                tracing::error!(object = ?meta.name, error = %e, "cannot keep a watched object");
                Vec::new()
            })
            .into_boxed_slice();
        Cached { meta, body }
    }

    /// The object as it was kept.
    pub fn object(&self) -> Result<DynamicObject, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The bytes its text takes.
    pub fn text_len(&self) -> usize {
        self.body.len()
    }
}

/// The controller's store needs it; what it decodes is kept whole (nothing to project by).
impl<'de> Deserialize<'de> for Cached {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DynamicObject::deserialize(d).map(|o| Cached::new(&o))
    }
}

/// The same resource as the `DynamicObject` it was made from.
impl Resource for Cached {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::group(dt)
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::version(dt)
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::kind(dt)
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::api_version(dt)
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        DynamicObject::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// A watch event with its object projected by `keep` and kept as [`Cached`].
pub fn cache_event(keep: &Keep, ev: watcher::Event<DynamicObject>) -> watcher::Event<Cached> {
    let kept = |mut o: DynamicObject| {
        project(keep, &mut o);
        Cached::new(&o)
    };
    match ev {
        watcher::Event::Apply(o) => watcher::Event::Apply(kept(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(kept(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(kept(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// The object's own `Supported` condition: the last verdict, after a restart.
fn take_supported(data: &mut Value) -> Option<Value> {
    let conditions = data.pointer_mut("/status/conditions")?.as_array_mut()?;
    let at = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE))?;
    Some(conditions.swap_remove(at))
}

/// Keeps what names the object (name, namespace, uid), selects it (labels), versions it
/// (generation, resourceVersion), and the annotations a target reads. managedFields, most of an
/// object that server-side apply has touched, always go.
fn project_metadata(keep: Option<&Keep>, meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if keep.is_some_and(Keep::is_all) {
        return;
    }
    let annotations = match keep.and_then(|k| k.get("annotations")) {
        Some(k) if k.is_all() => meta.annotations.take(),
        Some(k) => meta.annotations.take().map(|mut a| {
            a.retain(|name, _| k.get(name).is_some());
            a
        }),
        None => None,
    };
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        labels: meta.labels.take(),
        generation: meta.generation.take(),
        resource_version: meta.resource_version.take(),
        annotations: annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::object::engine_value;
    use crate::engine::Context;
    use kube::api::GroupVersionKind;
    use serde_json::json;

    fn konvoy_cluster() -> (ApiResource, DynamicObject) {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
            "konvoyclusters",
        );
        let obj = serde_json::from_value(json!({
            "apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
            "metadata": {"name": "west", "namespace": "kommander", "uid": "u-1", "generation": 3,
                "resourceVersion": "42", "labels": {"environment": "production"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"a\": 1}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"provisioner": {"provider": "aws", "version": "v1.6.3",
                    "nodePools": [{"name": "worker", "count": 4}]},
                "cluster": {"kubernetes": {"version": "1.18.13", "networking": {"podSubnet": "x"}},
                    "addons": [{"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
                        "configVersion": "stable-1.18-3.3.0",
                        "addonsList": [{"name": "istio", "enabled": true}]}]}},
            "status": {"phase": "Provisioned", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Up", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Supported", "status": "True", "reason": "Supported", "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .expect("object");
        (ar, obj)
    }

    #[test]
    fn the_cache_keeps_what_reconciles_read_and_nothing_else() {
        let (ar, mut obj) = konvoy_cluster();
        let whole = obj.clone();
        let policies = PolicySet::embedded_default();
        project(&keep_for(&policies, &ar), &mut obj);

        let m = &obj.metadata;
        assert_eq!(m.name.as_deref(), Some("west"));
        assert_eq!(m.namespace.as_deref(), Some("kommander"));
        assert_eq!(m.uid.as_deref(), Some("u-1"));
        assert_eq!(m.generation, Some(3));
        assert_eq!(m.resource_version.as_deref(), Some("42"));
        assert_eq!(m.labels, whole.metadata.labels);
        assert!(m.annotations.is_none() && m.managed_fields.is_none());
        assert!(m.creation_timestamp.is_none());
        assert_eq!(
            obj.data["status"],
            json!({"conditions": [whole.data["status"]["conditions"][1]]}),
            "only the condition supportgate owns"
        );
        assert_eq!(
            obj.data["spec"]["provisioner"],
            json!({"version": "v1.6.3"})
        );
        assert!(
            obj.data["spec"]["cluster"]["kubernetes"]
                .get("networking")
                .is_none()
        );
        assert_eq!(
            obj.data["spec"]["cluster"]["addons"],
            whole.data["spec"]["cluster"]["addons"]
        );

        let ctx = Context::new(jiff::civil::date(2026, 12, 4));
        let verdict = |o: &DynamicObject| {
            let v = engine_value(o.clone(), Some(&ar));
            format!("{:?}", policies.assess(&v, &ctx))
        };
        assert_eq!(verdict(&obj), verdict(&whole));
    }

    #[test]
    fn a_cached_object_reads_back_as_its_projection_and_is_a_fraction_of_it() {
        let (ar, obj) = konvoy_cluster();
        let keep = keep_for(&PolicySet::embedded_default(), &ar);
        let mut projected = obj.clone();
        project(&keep, &mut projected);
        let ev = cache_event(&keep, watcher::Event::Apply(obj));
        let watcher::Event::Apply(cached) = ev else {
            panic!("an apply stays an apply: {ev:?}");
        };
        assert_eq!(cached.object().expect("decodes"), projected);
        assert_eq!(cached.meta().name.as_deref(), Some("west"));
        assert_eq!(cached.meta().namespace.as_deref(), Some("kommander"));
        assert_eq!(cached.meta().resource_version.as_deref(), Some("42"));
        assert!(
            cached.meta().labels.is_none(),
            "labels live in the text only"
        );
        let text = serde_json::to_string(&projected).expect("encodes");
        assert_eq!(cached.text_len(), text.len());
        let via_serde: Cached = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(via_serde.object().expect("decodes"), projected);
    }

    #[test]
    fn annotations_a_target_reads_stay() {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kubeaddons.mesosphere.io", "v1beta1", "Addon"),
            "addons",
        );
        let keep = keep_for(&PolicySet::embedded_default(), &ar);
        let read = "catalog.kubeaddons.mesosphere.io/origin-repository-version";
        let mut obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kubeaddons.mesosphere.io/v1beta1", "kind": "Addon",
            "metadata": {"name": "a", "annotations": {read: "stable-1.20-4.4.0", "other": "x"}},
            "spec": {"kubernetes": {"minSupportedVersion": "1.19.0"}, "chartReference": {"chart": "c"}}
        }))
        .expect("addon");
        project(&keep, &mut obj);
        let annotations = obj.metadata.annotations.expect("kept");
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations[read], "stable-1.20-4.4.0");
        assert!(obj.data["spec"].get("chartReference").is_none());
        assert_eq!(
            obj.data["spec"]["kubernetes"]["minSupportedVersion"],
            "1.19.0"
        );
        assert!(obj.data.get("status").is_none(), "no status is made up");
    }
}
