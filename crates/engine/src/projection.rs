//! What of an object the engine can read, so that a cache can keep only that.
//!
//! The controller watches every targeted object and keeps it in memory between reconciles. Most
//! of a real object is never read: provider settings, node pools, status written by others, and
//! the `kubectl.kubernetes.io/last-applied-configuration` annotation that doubles an applied
//! object. A [`Keep`] is the tree of member names that the targets' queries walk down; pruning
//! an object to it leaves every query selecting exactly what it selected before (tested over
//! every example and fixture).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::targets::{CompiledTarget, FieldKind};

/// The members of a JSON object to keep, by name, down to where everything below is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keep {
    all: bool,
    children: BTreeMap<String, Keep>,
}

impl Keep {
    /// Keeps the whole value.
    pub fn everything() -> Keep {
        Keep {
            all: true,
            children: BTreeMap::new(),
        }
    }

    /// What the queries of `targets` read, plus the members every evaluation reads whatever
    /// the target: `apiVersion`, `kind`, and the metadata that names, selects and excepts an
    /// object.
    pub fn for_targets<'a>(targets: impl IntoIterator<Item = &'a CompiledTarget>) -> Keep {
        let mut keep = Keep::default();
        for t in targets {
            for &k in FieldKind::ALL {
                if let Some(q) = t.path(k) {
                    q.mark_read(&mut keep);
                }
            }
        }
        for path in [
            &["apiVersion"][..],
            &["kind"],
            &["metadata", "name"],
            &["metadata", "namespace"],
            &["metadata", "labels"],
        ] {
            keep.path(path).set_all();
        }
        keep.normalize();
        keep
    }

    pub fn is_all(&self) -> bool {
        self.all
    }

    /// The subtree kept under member `name`; `None` when it is dropped.
    pub fn get(&self, name: &str) -> Option<&Keep> {
        if self.all {
            return Some(self);
        }
        self.children.get(name)
    }

    /// The node for `names` below this one, created as "keep nothing yet" where missing.
    pub fn path(&mut self, names: &[&str]) -> &mut Keep {
        names
            .iter()
            .fold(self, |k, n| k.children.entry((*n).to_string()).or_default())
    }

    pub fn set_all(&mut self) {
        self.all = true;
        self.children.clear();
    }

    /// Forgets children under nodes that keep everything, so equal projections compare equal.
    fn normalize(&mut self) {
        if self.all {
            self.children.clear();
        }
        for c in self.children.values_mut() {
            c.normalize();
        }
    }

    /// Prunes `value` to what is kept. Only object members are dropped: a value of another
    /// type where a name is expected is kept whole, since no name selects from it anyway.
    pub fn apply(&self, value: &mut Value) {
        if self.all {
            return;
        }
        let Value::Object(map) = value else {
            return;
        };
        map.retain(|k, _| self.children.contains_key(k));
        for (name, keep) in &self.children {
            if let Some(v) = map.get_mut(name) {
                keep.apply(v);
            }
        }
    }
}

#[cfg(test)]
#[path = "projection_tests.rs"]
mod tests;
