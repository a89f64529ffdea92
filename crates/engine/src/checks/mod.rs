//! The checks, one module per rule family. Each reads the fields it needs through a [`Scope`],
//! which records which of the target's fields resolved, and writes to the collector.

mod addons;
mod consistency;
mod entries;
mod kubernetes;
mod kudo;
mod missing;
mod product;
mod refs;
mod upgrades;

use std::ops::ControlFlow;

use serde_json::Value;

use crate::collect::{Out, is_set};
use crate::fix::{Change, Plan};
use crate::policy::Policy;
use crate::targets::{CompiledTarget, FieldKind, FieldMask, Located};
use crate::verdict::Context;

/// One object under one target of one policy.
pub(crate) struct Scope<'a> {
    pub policy: &'a Policy,
    pub target: &'a CompiledTarget,
    pub ctx: &'a Context,
    pub object: &'a Value,
    /// The target's fields that selected a set value in this object.
    pub resolved: FieldMask,
    /// The one combination every message points at, built as the checks run.
    pub plan: Plan<'a>,
}

impl<'a> Scope<'a> {
    /// The first set value of a field.
    pub fn first(&mut self, k: FieldKind) -> Option<Located<'a>> {
        let found = self.target.path(k)?.first_where(self.object, is_set);
        if found.is_some() {
            self.resolved.insert(k);
        }
        found
    }

    /// Every set value of a field.
    pub fn all(&mut self, k: FieldKind) -> Selected<'a> {
        let mut found = Selected::default();
        let Some(path) = self.target.path(k) else {
            return found;
        };
        let _ = path.visit(self.object, &mut |l| {
            if is_set(l.value) {
                found.push(l);
            }
            ControlFlow::Continue(())
        });
        if !found.is_empty() {
            self.resolved.insert(k);
        }
        found
    }
}

/// The set values of a field in document order; one (the usual case) takes no allocation.
#[derive(Debug, Default)]
pub(crate) struct Selected<'a> {
    first: Option<Located<'a>>,
    rest: Vec<Located<'a>>,
}

impl<'a> Selected<'a> {
    fn push(&mut self, l: Located<'a>) {
        match self.first {
            None => self.first = Some(l),
            Some(_) => self.rest.push(l),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub fn first(&self) -> Option<&Located<'a>> {
        self.first.as_ref()
    }

    /// Every value, in document order.
    pub fn iter(&self) -> impl Iterator<Item = &Located<'a>> {
        self.first.iter().chain(&self.rest)
    }

    /// Every value after the first.
    pub fn rest(&self) -> &[Located<'a>] {
        &self.rest
    }
}

impl<'a> IntoIterator for Selected<'a> {
    type Item = Located<'a>;
    type IntoIter =
        std::iter::Chain<std::option::IntoIter<Located<'a>>, std::vec::IntoIter<Located<'a>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

/// Runs every rule family of one target over one object: what it found, which fields resolved,
/// and the fields the suggested combination changes.
pub(crate) fn run(
    policy: &Policy,
    target: &CompiledTarget,
    object: &Value,
    ctx: &Context,
) -> (Out, FieldMask, Vec<Change>) {
    let mut s = Scope {
        policy,
        target,
        ctx,
        object,
        resolved: FieldMask::default(),
        plan: Plan::default(),
    };
    let mut out = Out::default();
    // Every set product version, read once: the first is judged, the rest must agree with it.
    let versions = s.all(FieldKind::ProductVersion);
    let release = product::check(&mut s, &mut out, versions.first());
    consistency::check_within(&s, &mut out, &versions);
    let k8s = kubernetes::check(&mut s, &mut out, release);
    refs::check_kba(&mut s, &mut out, k8s.as_ref());
    refs::check_kommander(&mut s, &mut out, release, k8s.as_ref());
    entries::check(&mut s, &mut out, release, k8s.as_ref());
    addons::check_enabled(&mut s, &mut out, release);
    addons::check_range(&mut s, &mut out, k8s.as_ref());
    kudo::check(&mut s, &mut out);
    missing::check(&s, &mut out);
    (out, s.resolved, s.plan.into_changes())
}

/// The rules that judge the object beside a second one: its previous revision on an UPDATE
/// (`upgrade-skips-minor`, `downgrade`), and, offline, an object of another kind that describes
/// the same cluster (`konvoy-version-mismatch`).
pub(crate) fn run_related(
    policy: &Policy,
    target: &CompiledTarget,
    object: &Value,
    old: Option<&Value>,
    paired: Option<&Value>,
    out: &mut Out,
) {
    if let Some(old) = old {
        upgrades::check(policy, target, old, object, out);
    }
    if let Some(paired) = paired {
        consistency::check_paired(policy, target, object, paired, out);
    }
}
