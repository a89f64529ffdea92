//! Which targeted kinds exist, from their CRDs: a kind whose CRD appears later is picked up, one
//! whose CRD goes away (or whose schema changes the sink, or whose targets read other fields) is
//! restarted or stopped. Also where each kind's
//! verdicts go, decided from its schema.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::Store;
use tokio::task::JoinHandle;

use crate::controller::cache::keep_for;
use crate::controller::kind_watch::{Kind, run_kind};
use crate::controller::ledger::{KindKey, Sink};
use crate::controller::session::Session;
use crate::engine::policyset::PolicySet;
use crate::engine::targets::CompiledTarget;

/// The controllers running, one per kind.
pub type Running = HashMap<KindKey, (Kind, JoinHandle<()>)>;

/// Decides from a CRD version's schema whether a `Supported` condition can be written safely.
pub fn sink_for(crd: &CustomResourceDefinition, version: &str) -> Sink {
    let Some(v) = crd.spec.versions.iter().find(|v| v.name == version) else {
        return Sink::PolicyReport(format!("version {version} is not served"));
    };
    if v.subresources
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .is_none()
    {
        return Sink::PolicyReport("the CRD has no status subresource".into());
    }
    let schema = v
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    let status = schema.and_then(|s| prop(s, "status"));
    let conditions = status.and_then(|s| prop(s, "conditions"));
    match conditions {
        None => Sink::PolicyReport(
            "the CRD's status schema has no `conditions`, so a condition would be pruned".into(),
        ),
        Some(c)
            if c.x_kubernetes_list_type.as_deref() == Some("map")
                && c.x_kubernetes_list_map_keys.as_deref() == Some(&["type".to_string()][..]) =>
        {
            Sink::Conditions
        }
        Some(_) => Sink::PolicyReport(
            "status.conditions is not a list-map keyed by `type`, so writing one condition would replace the others".into(),
        ),
    }
}

/// CRDs per page of the initial list: a page is decoded whole, and a CRD can be a megabyte.
pub const CRD_PAGE: u32 = 20;

/// Strips a CRD down to what [`wanted_kinds`] and [`sink_for`] read: group, names, scope, and per
/// version its name, flags, subresources and the `status.conditions` schema. Without this the
/// controller cached every CRD of the cluster whole (schemas, managedFields, the last-applied
/// annotation): a few hundred large CRDs are hundreds of MiB against the pod's 256 MiB limit.
pub fn slim_crd(crd: &mut CustomResourceDefinition) {
    crd.metadata.managed_fields = None;
    crd.metadata.annotations = None;
    crd.metadata.labels = None;
    crd.status = None;
    crd.spec.conversion = None;
    for v in &mut crd.spec.versions {
        v.additional_printer_columns = None;
        v.selectable_fields = None;
        let Some(schema) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let conditions = prop(schema, "status")
            .and_then(|s| prop(s, "conditions"))
            .map(|c| JSONSchemaProps {
                type_: c.type_.clone(),
                x_kubernetes_list_type: c.x_kubernetes_list_type.clone(),
                x_kubernetes_list_map_keys: c.x_kubernetes_list_map_keys.clone(),
                ..JSONSchemaProps::default()
            });
        let has_status = prop(schema, "status").is_some();
        *schema = JSONSchemaProps::default();
        if has_status {
            let status = JSONSchemaProps {
                properties: conditions.map(|c| [("conditions".to_string(), c)].into()),
                ..JSONSchemaProps::default()
            };
            schema.properties = Some([("status".to_string(), status)].into());
        }
    }
}

fn prop<'a>(s: &'a JSONSchemaProps, name: &str) -> Option<&'a JSONSchemaProps> {
    s.properties.as_ref().and_then(|p| p.get(name))
}

/// The kinds the policies target whose CRDs exist, at the version to watch.
pub fn wanted_kinds(
    policies: &PolicySet,
    crds: &[Arc<CustomResourceDefinition>],
) -> HashMap<KindKey, Kind> {
    let mut wanted = HashMap::new();
    for t in policies.targets() {
        let Some(crd) = crds
            .iter()
            .find(|c| c.spec.group == t.spec.api_group && c.spec.names.kind == t.spec.kind)
        else {
            continue;
        };
        let Some(version) = version_to_watch(t, crd) else {
            continue;
        };
        let gvk = GroupVersionKind::gvk(&t.spec.api_group, &version, &t.spec.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural);
        let kind = Kind {
            keep: keep_for(policies, &ar),
            ar,
            namespaced: crd.spec.scope == "Namespaced",
            sink: sink_for(crd, &version),
        };
        wanted.insert(
            KindKey::new(t.spec.api_group.clone(), version, t.spec.kind.clone()),
            kind,
        );
    }
    wanted
}

/// The target's first served version, or the storage version when the target names none.
fn version_to_watch(t: &CompiledTarget, crd: &CustomResourceDefinition) -> Option<String> {
    if t.spec.versions.is_empty() {
        return crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.clone());
    }
    let served: Vec<&str> = crd
        .spec
        .versions
        .iter()
        .filter(|v| v.served)
        .map(|v| v.name.as_str())
        .collect();
    t.spec
        .versions
        .iter()
        .find(|v| served.contains(&v.as_str()))
        .cloned()
}

/// Starts a controller for every targeted kind whose CRD exists, stops those that went away.
pub(crate) fn reconcile_kinds(
    session: &Arc<Session>,
    crds: &Store<CustomResourceDefinition>,
    running: &mut Running,
) {
    let policies = session.shared.policies.load_full();
    let wanted = wanted_kinds(&policies, &crds.state());
    running.retain(|key, (kind, handle)| {
        let keep = wanted.get(key) == Some(kind);
        if !keep {
            tracing::info!(kind = %key.kind, group = %key.group, "stopping the controller for a kind that is gone or changed");
            handle.abort();
            session.stores.lock().remove(key);
            session.forbidden.lock().remove(key);
        }
        keep
    });
    for (key, kind) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        tracing::info!(kind = %key.kind, group = %key.group, version = %key.version, sink = ?kind.sink, "watching a targeted kind");
        let handle = session.shared.controller_tasks.spawn(run_kind(
            session.clone(),
            key.clone(),
            kind.clone(),
        ));
        running.insert(key, (kind, handle));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::Policy;
    use serde_json::{Value, json};

    fn crd(status: Value, subresource: bool) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "xs.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "X", "plural": "xs"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": if subresource { json!({"status": {}}) } else { json!({}) },
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"status": status}}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn sinks_follow_the_schema() {
        let map = json!({"type": "object", "properties": {"conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}}});
        assert_eq!(sink_for(&crd(map.clone(), true), "v1"), Sink::Conditions);
        assert!(
            matches!(sink_for(&crd(map, false), "v1"), Sink::PolicyReport(r) if r.contains("subresource"))
        );
        let atomic = json!({"type": "object", "properties": {"conditions": {"type": "array", "items": {"type": "object"}}}});
        assert!(
            matches!(sink_for(&crd(atomic, true), "v1"), Sink::PolicyReport(r) if r.contains("list-map"))
        );
        let none = json!({"type": "object", "properties": {"phase": {"type": "string"}}});
        assert!(
            matches!(sink_for(&crd(none, true), "v1"), Sink::PolicyReport(r) if r.contains("pruned"))
        );
        assert!(matches!(
            sink_for(&crd(json!({}), true), "v2"),
            Sink::PolicyReport(_)
        ));
    }

    #[test]
    fn a_slimmed_crd_gives_the_same_sink_and_kind_at_a_fraction_of_the_size() {
        let map = json!({"type": "object", "properties": {"phase": {"type": "string"}, "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object", "properties": {"type": {"type": "string"}}}}}});
        let atomic = json!({"type": "object", "properties": {"conditions": {"type": "array", "items": {"type": "object"}}}});
        let none = json!({"type": "object", "properties": {"phase": {"type": "string"}}});
        for (status, sub) in [
            (map, true),
            (map_copy(), false),
            (atomic, true),
            (none, true),
        ] {
            let full = crd(status, sub);
            let mut slim = full.clone();
            slim_crd(&mut slim);
            assert_eq!(sink_for(&slim, "v1"), sink_for(&full, "v1"));
            assert_eq!(slim.spec.names, full.spec.names);
            assert_eq!(slim.spec.scope, full.spec.scope);
        }
        // A large schema (and its last-applied copy) is dropped; the decision stays the same.
        let mut big = crd(map_copy(), true);
        let props: serde_json::Map<String, Value> = (0..2000)
            .map(|i| {
                (
                    format!("field{i}"),
                    json!({"type": "string", "description": "x".repeat(100)}),
                )
            })
            .collect();
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}, "status": map_copy()}});
        big.spec.versions[0].schema =
            Some(serde_json::from_value(json!({"openAPIV3Schema": schema})).unwrap());
        big.metadata.annotations = Some(
            [(
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "y".repeat(200_000),
            )]
            .into(),
        );
        let mut slim = big.clone();
        slim_crd(&mut slim);
        let size = |c: &CustomResourceDefinition| serde_json::to_vec(c).unwrap().len();
        assert!(size(&slim) < 2_000, "{} of {}", size(&slim), size(&big));
        assert_eq!(sink_for(&slim, "v1"), Sink::Conditions);
        // The fixture (the real KonvoyCluster shape) decides the same slimmed.
        let file = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/crds/kommander.mesosphere.io_konvoyclusters.yaml"
        ))
        .unwrap();
        let full: CustomResourceDefinition = serde_norway::from_str(&file).unwrap();
        let mut slim = full.clone();
        slim_crd(&mut slim);
        for v in &full.spec.versions {
            assert_eq!(
                sink_for(&slim, &v.name),
                sink_for(&full, &v.name),
                "{}",
                v.name
            );
        }
    }

    fn map_copy() -> Value {
        json!({"type": "object", "properties": {"conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}}})
    }

    #[test]
    fn only_targeted_kinds_with_a_crd_are_wanted() {
        let policy = PolicySet::from_policies(vec![Arc::new(Policy::embedded_default())]);
        let file = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/crds/kubeaddons.mesosphere.io_addons.yaml"
        ))
        .unwrap();
        // The file holds Addon, then ClusterAddon: only the first is installed here.
        let first = file.split("\n---").next().unwrap();
        let addon: CustomResourceDefinition = serde_norway::from_str(first).unwrap();
        let untargeted = crd(json!({}), true);
        let wanted = wanted_kinds(&policy, &[Arc::new(addon), Arc::new(untargeted)]);
        assert_eq!(wanted.len(), 1, "{wanted:?}");
        let (key, kind) = wanted.into_iter().next().unwrap();
        assert_eq!(key.group, "kubeaddons.mesosphere.io");
        assert_eq!(key.kind, "Addon");
        assert!(kind.namespaced);
        assert!(
            matches!(kind.sink, Sink::PolicyReport(_)),
            "{:?}",
            kind.sink
        );
        assert!(wanted_kinds(&policy, &[]).is_empty());
    }
}
