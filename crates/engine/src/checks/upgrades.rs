//! `upgrade-skips-minor` and `downgrade`: an UPDATE judged on the change itself, old version to
//! new, against the policy's `spec.upgrades`. Konvoy documents upgrades from the previous minor
//! only, and a Kubernetes control plane upgrades one minor at a time.
//!
//! `version-removed` closes the way around them: an UPDATE that unsets a version the object had
//! is denied, so "unset, then set two minors up" is refused at its first step. An old object
//! that never named a version is not newly denied (nothing was removed).
//!
//! These rules exist only for a pair of revisions, so the old object can never carry them:
//! ratcheting must leave them alone ([`crate::rules::Rule::compares_revisions`]).

use serde_json::Value;

use crate::collect::{Out, is_set};
use crate::messages;
use crate::policy::Policy;
use crate::rules::{Rule, Severity};
use crate::targets::{CompiledTarget, FieldKind, Located};
use crate::version::{Minor, Version};

/// One version field in both revisions, parsed.
struct Change<'a> {
    at: Located<'a>,
    from: Version,
    to: Version,
}

/// What an UPDATE does to one version field. The upgrade rules compare with the last version the
/// object had, so every way of losing it is named: none of them passes silently.
enum Step<'a> {
    /// Both revisions name a version: the step is judged.
    Change(Change<'a>),
    /// The old revision named one (valid or not) and the new one names none: `version-removed`.
    Removed(Located<'a>),
    /// The old value (first) is not a version, the new one (second) is: the step cannot be
    /// judged, which is said (a warning).
    FromInvalid(Located<'a>, Located<'a>, Version),
    /// Nothing to compare: unset before (`version-missing` spoke then), or the new value is not
    /// a version (`version-invalid` denies it).
    Nothing,
}

fn step<'a>(target: &CompiledTarget, kind: FieldKind, old: &'a Value, new: &'a Value) -> Step<'a> {
    let Some(path) = target.path(kind) else {
        return Step::Nothing;
    };
    let parse = |v: &Value| v.as_str()?.parse::<Version>().ok();
    let Some(before) = path.first_where(old, is_set) else {
        return Step::Nothing;
    };
    let Some(at) = path.first_where(new, is_set) else {
        return Step::Removed(before);
    };
    match (parse(before.value), parse(at.value)) {
        (Some(from), Some(to)) => Step::Change(Change { at, from, to }),
        (None, Some(to)) => Step::FromInvalid(before, at, to),
        (_, None) => Step::Nothing,
    }
}

/// Judges the update `old` → `new` of an object of `target`'s kind.
pub(crate) fn check(
    policy: &Policy,
    target: &CompiledTarget,
    old: &Value,
    new: &Value,
    out: &mut Out,
) {
    let product = policy.product_name.as_str();
    match step(target, FieldKind::ProductVersion, old, new) {
        Step::Change(c) => product_change(policy, &c, out),
        other => lost(out, other, &messages::product_version(product)),
    }
    match step(target, FieldKind::KubernetesVersion, old, new) {
        Step::Change(c) => kubernetes_change(policy, &c, out),
        other => lost(out, other, messages::KUBERNETES_VERSION),
    }
}

fn product_change(policy: &Policy, c: &Change, out: &mut Out) {
    let product = policy.product_name.as_str();
    if downgraded(policy, out, c, product) {
        return;
    }
    let known: Vec<Minor> = policy.releases().iter().map(|r| r.minor).collect();
    let step = minor_step(c.from.minor(), c.to.minor(), &known);
    let max = policy.upgrades.max_minor_step;
    if step > max {
        let through = product_through(policy, c.from.minor(), &known);
        let msg = messages::product_skips_minor(product, &c.from, &c.to, step, max, &through);
        out.push(Rule::UpgradeSkipsMinor, Severity::Deny, &c.at, msg);
    }
}

fn kubernetes_change(policy: &Policy, c: &Change, out: &mut Out) {
    if downgraded(policy, out, c, "Kubernetes") {
        return;
    }
    let step = minor_step(c.from.minor(), c.to.minor(), &[]);
    let max = policy.upgrades.max_minor_step;
    if step > max {
        let through = kubernetes_through(policy, c.from.minor(), max);
        let msg = messages::kubernetes_skips_minor(&c.from, &c.to, step, max, &through);
        out.push(Rule::UpgradeSkipsMinor, Severity::Deny, &c.at, msg);
    }
}

/// Reports a step whose old version is gone or was never a version.
fn lost(out: &mut Out, step: Step, what: &str) {
    match step {
        Step::Removed(before) => {
            // The new revision has nothing at the field: named by where the old value was.
            let msg = messages::version_removed(what, before.value);
            out.push_absent(Rule::VersionRemoved, Severity::Deny, &before.field(), msg);
        }
        Step::FromInvalid(before, at, to) => {
            // Located at the new value, which is what the user is setting.
            let msg = messages::upgrade_from_invalid(what, before.value, &to);
            out.push(Rule::UpgradeSkipsMinor, Severity::Warn, &at, msg);
        }
        Step::Change(_) | Step::Nothing => {}
    }
}

/// Reports a lowered version (unless the policy allows it); `true` when the version went down.
fn downgraded(policy: &Policy, out: &mut Out, c: &Change, what: &str) -> bool {
    if c.to >= c.from {
        return false;
    }
    if !policy.upgrades.allow_downgrade {
        let msg = messages::downgrade(what, &c.from, &c.to);
        out.push(Rule::Downgrade, Severity::Deny, &c.at, msg);
    }
    true
}

/// How many minors `from` → `to` moves up: within a major the difference of the minors; across
/// majors (Konvoy 1.8 → 2.0) the releases the policy knows on the way, at least one.
fn minor_step(from: Minor, to: Minor, known: &[Minor]) -> u64 {
    if to <= from {
        0
    } else if to.major == from.major {
        to.minor - from.minor
    } else {
        (known.iter().filter(|m| **m > from && **m <= to).count() as u64).max(1)
    }
}

/// The furthest release an upgrade from `from` may reach in one step, as a message: the
/// furthest the policy knows within the step, else the minor the step reaches by number.
fn product_through(policy: &Policy, from: Minor, known: &[Minor]) -> String {
    let max = policy.upgrades.max_minor_step;
    let minor = known
        .iter()
        .copied()
        .filter(|m| *m > from && minor_step(from, *m, known) <= max)
        .max()
        .unwrap_or_else(|| Minor::new(from.major, from.minor.saturating_add(max)));
    let release = policy.release(minor);
    messages::through_release(
        minor,
        release.and_then(|r| r.latest_patch.as_ref()),
        release.and_then(|r| r.kubernetes_default.as_ref()),
    )
}

/// The furthest Kubernetes minor a control plane may reach in one step, with a release of the
/// policy whose default Kubernetes version is on it, if any.
fn kubernetes_through(policy: &Policy, from: Minor, max: u64) -> String {
    let minor = Minor::new(from.major, from.minor.saturating_add(max));
    let example = policy.releases().iter().find_map(|r| {
        let k = r.kubernetes_default.as_ref()?;
        (k.minor() == minor).then_some((k, policy.product_name.as_str(), r.minor))
    });
    messages::through_kubernetes(minor, example)
}

#[cfg(test)]
#[path = "upgrades_tests.rs"]
mod tests;
