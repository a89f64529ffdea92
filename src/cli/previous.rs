//! `check --previous`: judge a change the way the webhook judges it.
//!
//! An object that the previous revision also has (same API group, kind, namespace and name) is
//! an UPDATE: it is evaluated, the old object is evaluated, and the engine's [`ratchet`] — the
//! function admission calls for updates — merges the two. Any other object is a CREATE. Objects
//! that only the previous revision has are listed as removed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::cli::check::{ObjectRef, Report};
use crate::cli::identity::{Key, key_of};
use crate::cli::input::{self, Loaded};
use crate::cli::pairs::Provisioners;
use crate::engine::Context;
use crate::engine::policyset::PolicySet;

/// The previous revision, indexed by identity.
#[derive(Debug, Default)]
pub struct Previous {
    objects: BTreeMap<Key, Loaded>,
    matched: BTreeSet<Key>,
}

impl Previous {
    /// Reads the `--previous` paths; an identity that appears twice is an input error, since
    /// which one the cluster holds cannot be known.
    pub fn load(paths: &[String]) -> (Previous, Vec<String>) {
        let (loaded, errors) = input::load(paths);
        let mut errors: Vec<String> = errors.iter().map(|e| format!("--previous: {e}")).collect();
        let mut objects = BTreeMap::new();
        for l in loaded {
            let Some(key) = key_of(&l.object.object) else {
                continue; // no name (generateName): nothing can match it
            };
            if let Some(first) = objects.get(&key) {
                let first: &Loaded = first;
                errors.push(format!(
                    "--previous: {} {} is in both {}#{} and {}#{}",
                    key.1,
                    key.3,
                    first.object.source,
                    first.object.document,
                    l.object.source,
                    l.object.document
                ));
                continue;
            }
            objects.insert(key, l);
        }
        (
            Previous {
                objects,
                matched: BTreeSet::new(),
            },
            errors,
        )
    }

    /// The previous revision of `object`, if there is one.
    pub fn find(&mut self, object: &Value) -> Option<&Value> {
        let key = key_of(object)?;
        let old = self.objects.get(&key)?;
        self.matched.insert(key);
        Some(&old.object.object)
    }

    /// Objects of the previous revision that nothing in the new one matched.
    pub fn removed(&self) -> Vec<ObjectRef> {
        self.objects
            .iter()
            .filter(|(k, _)| !self.matched.contains(*k))
            .map(|(_, l)| ObjectRef::of(&l.object))
            .collect()
    }
}

/// Checks every object of `paths`: one with a match in `previous` as the UPDATE from it
/// (ratcheting and all, by the engine call admission makes), the rest as CREATEs; objects only in
/// `previous` are listed as removed.
pub fn check_all(
    policies: &PolicySet,
    ctx: &Context,
    paths: &[String],
    previous: &[String],
) -> Report {
    let mut report = Report::default();
    let (objects, errors) = input::load(paths);
    report.errors.extend(errors.iter().map(ToString::to_string));
    let mut prev = (!previous.is_empty()).then(|| {
        let (p, errors) = Previous::load(previous);
        report.errors.extend(errors);
        p
    });
    let provisioners = Provisioners::index(&objects);
    for l in &objects {
        let new = &l.object.object;
        let old = prev.as_mut().and_then(|p| p.find(new)).cloned();
        let i = report.results.len();
        let paired = provisioners.paired_with(new);
        report.add_change(policies, ctx, &l.object, old.as_ref(), paired);
        let Some(r) = report.results.get_mut(i) else {
            continue; // skipped: no target
        };
        r.operation = match (&prev, &old) {
            (Some(_), Some(_)) => Some("update"),
            (Some(_), None) => Some("create"),
            (None, _) => None,
        };
        input::annotate(&l.coercions, &mut r.violations);
    }
    if let Some(p) = prev {
        report.removed = p.removed();
    }
    report
}
