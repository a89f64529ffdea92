//! Offline pairing for `konvoy-version-mismatch`: Konvoy's `cluster.yaml` holds a
//! ClusterProvisioner and a ClusterConfiguration of the same name, and both name the Konvoy
//! version. In one `check` run, a ClusterConfiguration is judged beside the ClusterProvisioner
//! with its name and namespace (the comparison itself is the engine's: the `paired` object of a
//! [`crate::engine::policyset::Subject`]); the mismatch is reported on the ClusterConfiguration.
//! In a cluster neither kind normally exists, so only `check` pairs them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cli::identity::{Key, key_of};
use crate::cli::input::Loaded;

const GROUP: &str = "konvoy.mesosphere.io";
const CONFIGURATION: &str = "ClusterConfiguration";
const PROVISIONER: &str = "ClusterProvisioner";

/// The ClusterProvisioners of one run, by namespace and name.
#[derive(Debug, Default)]
pub struct Provisioners<'a> {
    by_key: BTreeMap<Key, &'a Value>,
}

impl<'a> Provisioners<'a> {
    /// Indexes every ClusterProvisioner in `objects`; of two with one identity, the first.
    pub fn index(objects: &'a [Loaded]) -> Self {
        let mut by_key = BTreeMap::new();
        for l in objects {
            let o = &l.object.object;
            if let Some(key) = key_of(o).filter(|k| k.0 == GROUP && k.1 == PROVISIONER) {
                by_key.entry(key).or_insert(o);
            }
        }
        Provisioners { by_key }
    }

    /// The ClusterProvisioner paired with `object`, when it is a ClusterConfiguration that has
    /// one.
    pub fn paired_with(&self, object: &Value) -> Option<&'a Value> {
        let (group, kind, namespace, name) = key_of(object)?;
        if group != GROUP || kind != CONFIGURATION {
            return None;
        }
        let key = (group, PROVISIONER.to_string(), namespace, name);
        self.by_key.get(&key).copied()
    }
}

#[cfg(test)]
#[path = "pairs_tests.rs"]
mod tests;
