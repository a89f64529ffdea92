//! `konvoy-version-mismatch`: the places that must name the same product version agree. Within
//! one object, every value the target's product version query selects (the KonvoyCluster preset
//! reads `spec.provisioner.version` and `spec.cluster.version`); across two objects (offline, a
//! ClusterConfiguration and the ClusterProvisioner of the same name), their product versions.

use serde_json::Value;

use crate::checks::{Scope, Selected};
use crate::collect::{Out, is_set};
use crate::messages;
use crate::policy::Policy;
use crate::rules::{Rule, Severity};
use crate::targets::{CompiledTarget, FieldKind, Located, select};
use crate::version::Version;

/// Every further product version in the object (`versions`: every set value of the target's
/// query) must equal the first, which the other rules judge; each one that does not is reported
/// where it stands.
pub(crate) fn check_within(s: &Scope, out: &mut Out, versions: &Selected) {
    let (Some(first), rest) = (versions.first(), versions.rest()) else {
        return;
    };
    if rest.is_empty() {
        return;
    }
    let parse = |v: &Value| v.as_str()?.parse::<Version>().ok();
    let Some(reference) = parse(first.value) else {
        return; // version-invalid speaks for it
    };
    let product = &s.policy.product_name;
    let what = format!("the {}", messages::product_version(product));
    for at in rest {
        let Some(v) = out.version(at, &what, "v1.8.5") else {
            continue;
        };
        if v != reference {
            let there = format!("`{}`", first.field());
            let msg = messages::version_mismatch(product, &v, &there, &reference);
            out.push(Rule::KonvoyVersionMismatch, Severity::Deny, at, msg);
        }
    }
}

/// The object's product version must equal the one `paired` (an object of another kind that
/// names the same cluster) names under the policy's target for it. Nothing is reported when
/// either names none, or one that does not parse: the object's own rules report those.
pub(crate) fn check_paired(
    policy: &Policy,
    target: &CompiledTarget,
    object: &Value,
    paired: &Value,
    out: &mut Out,
) {
    let api_version = paired.get("apiVersion").and_then(Value::as_str);
    let kind = paired.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return;
    };
    let Some(paired_target) = policy.target_for(api_version, kind) else {
        return;
    };
    let (Some((at, here)), Some((there_at, there))) = (
        first_version(target, object),
        first_version(paired_target, paired),
    ) else {
        return;
    };
    if here == there {
        return;
    }
    let name = paired
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let where_ = format!("{kind} {name} (`{}`)", there_at.field());
    let msg = messages::version_mismatch(&policy.product_name, &here, &where_, &there);
    out.push(Rule::KonvoyVersionMismatch, Severity::Deny, &at, msg);
}

/// The first set product version of an object under a target, parsed.
fn first_version<'v>(t: &CompiledTarget, o: &'v Value) -> Option<(Located<'v>, Version)> {
    let path = t.path(FieldKind::ProductVersion)?;
    let at = select(path, o).into_iter().find(|l| is_set(l.value))?;
    let v = at.value.as_str()?.parse::<Version>().ok()?;
    Some((at, v))
}
