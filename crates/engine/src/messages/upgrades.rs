//! The words of upgrade paths and consistent versions (updates, paired objects).

use serde_json::Value;

use crate::version::{Minor, Version};

use super::raw_value;

// ---- upgrade paths and consistent versions (updates, paired objects) ------------------------

/// `upgrade-skips-minor` on the product version. `through` says which release to go through
/// (see [`through_release`]).
pub fn product_skips_minor(
    product: &str,
    from: &Version,
    to: &Version,
    step: u64,
    max_step: u64,
    through: &str,
) -> String {
    format!(
        "the update moves {product} from {from} to {to}, {step} minors up, but {product} upgrades go {} (spec.upgrades.maxMinorStep: {max_step}): {through}",
        at_a_time(max_step)
    )
}

/// `upgrade-skips-minor` on the Kubernetes version.
pub fn kubernetes_skips_minor(
    from: &Version,
    to: &Version,
    step: u64,
    max_step: u64,
    through: &str,
) -> String {
    format!(
        "the update moves Kubernetes from {from} to {to}, {step} minors up, but a control plane upgrades {} (spec.upgrades.maxMinorStep: {max_step}): {through}",
        at_a_time(max_step)
    )
}

fn at_a_time(max_step: u64) -> String {
    if max_step == 1 {
        "one minor at a time".to_string()
    } else {
        format!("at most {max_step} minors at a time")
    }
}

/// `upgrade to 1.7 first (1.7.5 with Kubernetes 1.19.15)`: the release an upgrade goes through,
/// by its newest known patch (else `1.7.x`) and its default Kubernetes version.
pub fn through_release(
    minor: Minor,
    patch: Option<&Version>,
    kubernetes: Option<&Version>,
) -> String {
    let patch = patch.map_or_else(|| format!("{minor}.x"), ToString::to_string);
    let kubernetes = kubernetes
        .map(|k| format!(" with Kubernetes {k}"))
        .unwrap_or_default();
    format!("upgrade to {minor} first ({patch}{kubernetes})")
}

/// `upgrade to Kubernetes 1.19 first (e.g. 1.19.15, the default of Konvoy 1.7)`.
pub fn through_kubernetes(minor: Minor, example: Option<(&Version, &str, Minor)>) -> String {
    match example {
        Some((k, product, release)) => format!(
            "upgrade to Kubernetes {minor} first (e.g. {k}, the default of {product} {release})"
        ),
        None => format!("upgrade to Kubernetes {minor} first ({minor}.x)"),
    }
}

/// `downgrade`: `what` is `Konvoy` or `Kubernetes`.
pub fn downgrade(what: &str, from: &Version, to: &Version) -> String {
    format!(
        "the update lowers {what} from {from} to {to}; downgrades are not supported (spec.upgrades.allowDowngrade: false): keep {from} or move up"
    )
}

/// `konvoy-version-mismatch`: this field names `here`, `there` (a field of the same object, or
/// another object) names `other`.
pub fn version_mismatch(product: &str, here: &Version, there: &str, other: &Version) -> String {
    format!(
        "names {product} {here}, but {there} names {other}; {product} reads its version from both the ClusterProvisioner and the ClusterConfiguration, and they must agree: set both to the same version"
    )
}

/// `version-removed`: `before` is what the old revision's field held.
pub fn version_removed(what: &str, before: &Value) -> String {
    format!(
        "the update removes the {what} ({}); the upgrade rules compare the next version with the last one the object had, so a version that was set must stay set: restore the version, then change it along the upgrade path",
        raw_value(before)
    )
}

/// The step from an old value that is not a version cannot be judged: said, not passed silently.
pub fn upgrade_from_invalid(what: &str, before: &Value, to: &Version) -> String {
    format!(
        "the previous revision's {what} {} is not a version, so the step to {to} cannot be checked against spec.upgrades (one minor at a time, no downgrades): make sure it follows the upgrade path",
        raw_value(before)
    )
}
