//! The words of the ref rules: KBA and Kommander refs, and addons entries nothing checks.

use std::fmt::Display;

use serde_json::Value;

use crate::tag::ReleaseTag;
use crate::version::{Minor, Version};

use super::raw_value;

// ---- refs -----------------------------------------------------------------------------------

/// What to do about a ref built for another Kubernetes minor: move to the combination's tag
/// `to`, or, when the tag already matches the combination (whose Kubernetes version changes to
/// `kubernetes_to`), keep it.
fn retag(
    what: &str,
    to: Option<&str>,
    minor: Option<Minor>,
    kubernetes_to: Option<&str>,
) -> String {
    match (to, kubernetes_to) {
        (None, Some(k)) => format!(
            "keep it and set the Kubernetes version to {k} instead, the minor it is built for"
        ),
        (Some(to), Some(k)) => format!(
            "use a {what} release tagged for {} ({to}), the minor of the suggested Kubernetes {k}",
            minor.map(|m| m.to_string()).unwrap_or_default()
        ),
        (Some(to), None) => format!(
            "use a {what} release tagged for {} ({to})",
            minor.map(|m| m.to_string()).unwrap_or_default()
        ),
        (None, None) => format!("use a {what} release tagged for the cluster's Kubernetes minor"),
    }
}

/// `to` is the combination's KBA ref (`None`: keep this one), `kubernetes_to` the combination's
/// Kubernetes version when it differs from the cluster's.
pub fn kba_kubernetes_mismatch(
    tag: &ReleaseTag,
    k: &Version,
    to: Option<&str>,
    minor: Option<Minor>,
    kubernetes_to: Option<&str>,
) -> String {
    format!(
        "KBA {tag} is built for Kubernetes {}, but the cluster runs Kubernetes {k}; a KBA release deploys only on the Kubernetes minor in its tag: {}",
        tag.kubernetes,
        retag("KBA", to, minor, kubernetes_to)
    )
}

/// `to` is the combination's Kommander ref; `None` when this one pairs with `moved_to`, the
/// release the combination upgrades to.
pub fn kommander_unpaired(
    tag: &ReleaseTag,
    product: &str,
    product_minor: Minor,
    paired: Minor,
    to: Option<&str>,
    moved_to: Option<Minor>,
) -> String {
    let fix = match (to, moved_to) {
        (Some(to), None) => format!("set the Kommander configVersion to {to}"),
        (Some(to), Some(t)) => format!(
            "with {product} {t}, the nearest supported release, set the Kommander configVersion to {to}"
        ),
        (None, Some(t)) => format!(
            "it pairs with {product} {t}, the nearest supported release: keep it and upgrade {product} to {t}"
        ),
        (None, None) => "set the Kommander configVersion to the paired minor".to_string(),
    };
    format!(
        "Kommander {} ({tag}) does not pair with {product} {product_minor}: {product} {product_minor} requires Kommander {paired}.x, and mixing minors is prohibited; {fix}",
        tag.version
    )
}

pub fn kommander_kubernetes_mismatch(
    tag: &ReleaseTag,
    k: &Version,
    to: Option<&str>,
    minor: Option<Minor>,
    kubernetes_to: Option<&str>,
) -> String {
    format!(
        "Kommander {tag} is built for Kubernetes {}, but the cluster runs Kubernetes {k}; {}",
        tag.kubernetes,
        retag("Kommander", to, minor, kubernetes_to)
    )
}

pub fn prerelease_tag(what: &str, tag: &ReleaseTag) -> String {
    format!(
        "{what} {tag} is from the `{}` channel or a pre-release; use a `stable` release in production",
        tag.channel
    )
}

pub fn unrecognized_ref(what: &str, error: impl Display, example: &str) -> String {
    format!(
        "{what} ref {error}, so its Kubernetes minor cannot be checked; pin a release tag such as {example}"
    )
}

// ---- addons entries nothing checks (`ref-unidentified`) ---------------------------------------

fn unidentified_consequence(deny: bool) -> &'static str {
    if deny {
        "the policy refuses addons it cannot check on production clusters (spec.unidentifiedRefs: Deny)"
    } else {
        "set spec.unidentifiedRefs: Deny to refuse such entries on production clusters"
    }
}

/// An entry whose repository is neither KBA nor Kommander (or that names none).
pub fn repository_unidentified(
    repository: Option<&Value>,
    reference: Option<&Value>,
    deny: bool,
) -> String {
    let repo = match repository {
        Some(r) => format!("comes from {}", raw_value(r)),
        None => "names no configRepository".to_string(),
    };
    let reference = reference.map_or_else(
        || "its ref".to_string(),
        |r| format!("its ref {}", raw_value(r)),
    );
    format!(
        "this addons entry {repo}, which the policy does not identify as Kubernetes Base Addons or Kommander, so {reference} is checked by nothing on a production cluster; point it at the KBA or Kommander repository (any spelling of https://github.com/mesosphere/kubernetes-base-addons or …/kubeaddons-kommander), or {}",
        unidentified_consequence(deny)
    )
}

/// A KBA or Kommander entry with no ref anywhere: git deploys the default branch.
pub fn ref_missing(what: &str, reference_field: &str, example: &str, deny: bool) -> String {
    format!(
        "this {what} entry names no ref ({reference_field} is unset and the repository URL carries none), so the default branch is deployed and its Kubernetes minor cannot be checked; pin a release tag such as {example}, or {}",
        unidentified_consequence(deny)
    )
}

/// A ref in the repository URL that differs from the ref field (or a second one in the URL).
pub fn ref_conflict(what: &str, in_url: &str, other: &str, deny: bool) -> String {
    format!(
        "the {what} repository URL carries ref `{in_url}`, but the entry also names `{other}`; which one is deployed cannot be told, and only one is checked: drop the ref from the URL and keep the release tag in configVersion, or {}",
        unidentified_consequence(deny)
    )
}
