//! The identity the webhook sees an object by: `--previous` matches revisions by it, and
//! [`crate::cli::pairs`] pairs a ClusterConfiguration with its ClusterProvisioner by it.

use serde_json::Value;

/// API group, kind, namespace (as written; absent is not `default`) and name.
pub type Key = (String, String, Option<String>, String);

/// The identity the webhook sees: the group without its version, since an object keeps its
/// identity across API versions.
pub fn key_of(object: &Value) -> Option<Key> {
    let s = |p: &str| object.pointer(p).and_then(Value::as_str);
    let api_version = s("/apiVersion")?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some((
        group.to_string(),
        s("/kind")?.to_string(),
        s("/metadata/namespace").map(str::to_string),
        s("/metadata/name")?.to_string(),
    ))
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
