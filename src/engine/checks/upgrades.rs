//! `upgrade-skips-minor` and `downgrade`: an UPDATE judged on the change itself, old version to
//! new, against the policy's `spec.upgrades`. Konvoy documents upgrades from the previous minor
//! only, and a Kubernetes control plane upgrades one minor at a time.
//!
//! These rules exist only for a pair of revisions, so the old object can never carry them:
//! ratcheting must leave them alone ([`crate::engine::rules::Rule::compares_revisions`]).

use serde_json::Value;

use crate::engine::collect::{Out, is_set};
use crate::engine::messages;
use crate::engine::policy::Policy;
use crate::engine::rules::{Rule, Severity};
use crate::engine::targets::{CompiledTarget, FieldKind, Located, select};
use crate::engine::version::{Minor, Version};

/// One version field in both revisions, parsed. A field that is unset or unparseable in either
/// is no change to judge: `version-missing` and `version-invalid` already speak for it.
struct Change<'a> {
    at: Located<'a>,
    from: Version,
    to: Version,
}

fn change<'a>(
    target: &CompiledTarget,
    kind: FieldKind,
    old: &Value,
    new: &'a Value,
) -> Option<Change<'a>> {
    let path = target.path(kind)?;
    let parse = |v: &Value| v.as_str()?.parse::<Version>().ok();
    let before = select(path, old).into_iter().find(|l| is_set(l.value))?;
    let at = select(path, new).into_iter().find(|l| is_set(l.value))?;
    Some(Change {
        from: parse(before.value)?,
        to: parse(at.value)?,
        at,
    })
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
    if let Some(c) = change(target, FieldKind::ProductVersion, old, new)
        && !downgraded(policy, out, &c, product)
    {
        let known: Vec<Minor> = policy.releases().iter().map(|r| r.minor).collect();
        let step = minor_step(c.from.minor(), c.to.minor(), &known);
        let max = policy.upgrades.max_minor_step;
        if step > max {
            let through = product_through(policy, c.from.minor(), &known);
            let msg = messages::product_skips_minor(product, &c.from, &c.to, step, max, &through);
            out.push(Rule::UpgradeSkipsMinor, Severity::Deny, &c.at, msg);
        }
    }
    if let Some(c) = change(target, FieldKind::KubernetesVersion, old, new)
        && !downgraded(policy, out, &c, "Kubernetes")
    {
        let step = minor_step(c.from.minor(), c.to.minor(), &[]);
        let max = policy.upgrades.max_minor_step;
        if step > max {
            let through = kubernetes_through(policy, c.from.minor(), max);
            let msg = messages::kubernetes_skips_minor(&c.from, &c.to, step, max, &through);
            out.push(Rule::UpgradeSkipsMinor, Severity::Deny, &c.at, msg);
        }
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
