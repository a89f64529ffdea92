//! Every message a violation carries, built in one place.
//!
//! A message says what is wrong, what is supported and how to fix it. It never starts with the
//! field: every surface (admission denial, `check`, the PolicyReport) prints the field beside the
//! message already, so repeating it here would read `spec.version: spec.version: ...`.

use std::fmt::Display;

use jiff::civil::Date;
use serde_json::Value;

use crate::tag::ReleaseTag;
use crate::version::{Bound, Minor, Version};

/// `1.8.x, 1.7.x, 1.6.x`, or `none`.
pub fn minors_list(minors: &[Minor]) -> String {
    if minors.is_empty() {
        return "none".to_string();
    }
    minors
        .iter()
        .map(|m| format!("{m}.x"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to do about an unsupported release: the next supported minor up, or the oldest one.
pub fn upgrade_hint(upgrade_to: Option<Minor>, oldest_supported: Option<Minor>) -> String {
    match (upgrade_to, oldest_supported) {
        (Some(m), _) => format!("upgrade to {m} or later"),
        (None, Some(m)) => format!("move to {m}"),
        (None, None) => "no release is supported today".to_string(),
    }
}

/// `Konvoy version`: what a product version field holds.
pub fn product_version(product: &str) -> String {
    format!("{product} version")
}

pub const KUBERNETES_VERSION: &str = "Kubernetes version";

/// ` in Konvoy 1.8`, or nothing without a release.
pub fn in_release(product: &str, minor: Option<Minor>) -> String {
    minor
        .map(|m| format!(" in {product} {m}"))
        .unwrap_or_default()
}

// ---- product window -------------------------------------------------------------------------

pub fn unknown_release(
    product: &str,
    v: &Version,
    known: &str,
    supported: &str,
    window: &str,
) -> String {
    format!(
        "{product} {v} is not a release this policy knows (known: {known}); supported are {supported} ({window}): use one of those, or add {} to the SupportPolicy if it has been released",
        v.minor()
    )
}

/// What the release a fix upgrades to needs: ` (Konvoy 1.6 supports Kubernetes 1.16.x to 1.18.x
/// and pairs with Kommander 1.2.x)`.
pub fn release_facts(product: &str, minor: Minor, range: &str, kommander: Option<Minor>) -> String {
    let kommander = kommander
        .map(|k| format!(" and pairs with Kommander {k}.x"))
        .unwrap_or_default();
    format!(" ({product} {minor} supports Kubernetes {range}{kommander})")
}

pub fn oldest_in_window(product: &str, v: &Version, window: &str, next: Option<Minor>) -> String {
    let next = next
        .map(|m| format!(" to {m} or later"))
        .unwrap_or_default();
    format!(
        "{product} {v} is the oldest supported minor ({window}) and leaves support when the next minor is released; plan the upgrade{next}"
    )
}

pub fn ending_on(product: &str, minor: Minor, d: Date, upgrade: &str) -> String {
    format!("{product} {minor} support ends on {d}; plan the upgrade before then ({upgrade})")
}

pub fn out_of_window(
    product: &str,
    v: &Version,
    supported: &str,
    window: &str,
    upgrade: &str,
) -> String {
    format!("{product} {v} is out of support: supported are {supported} ({window}); {upgrade}")
}

pub fn ended_on(product: &str, v: &Version, d: Date, supported: &str, upgrade: &str) -> String {
    format!(
        "{product} {v} is out of support: its support ended on {d}; supported are {supported}; {upgrade}"
    )
}

pub fn not_yet_released(product: &str, minor: Minor, d: Date) -> String {
    format!(
        "{product} {minor} is not released until {d}; until then it is a pre-release and not supported in production"
    )
}

pub fn prerelease_product(product: &str, v: &Version) -> String {
    format!(
        "{product} {v} is a pre-release; pre-releases are not supported in production, use a GA release"
    )
}

// ---- Kubernetes range -----------------------------------------------------------------------

pub fn prerelease_kubernetes(k: &Version) -> String {
    format!("Kubernetes {k} is a pre-release; use a GA Kubernetes release")
}

pub fn kubernetes_out_of_range(
    k: &Version,
    product: &str,
    minor: Minor,
    range: &str,
    instruction: &str,
) -> String {
    format!(
        "Kubernetes {k} is outside the range {product} {minor} supports ({range}); {instruction}"
    )
}

/// The suggested combination's Kubernetes version, for the out-of-range message.
pub struct KubernetesFix<'a> {
    pub field: &'a str,
    pub product: &'a str,
    /// The release the combination moves to (and its range), when it is not the object's own.
    pub moved_to: Option<(Minor, String)>,
    /// `1.19.15`, or `1.17.<patch>`.
    pub to: String,
    /// The combination keeps the object's version.
    pub kept: bool,
    pub is_default: bool,
    /// The combination's Kubernetes minor, when refs have to follow it to a new minor.
    pub retag: Option<Minor>,
}

pub fn kubernetes_fix(f: &KubernetesFix) -> String {
    let (field, product, to) = (f.field, f.product, &f.to);
    let set = if f.is_default {
        format!("set {field} to a version in that range, e.g. the default {to}")
    } else if let Some(m) = to.strip_suffix(".<patch>") {
        format!("set {field} to a {m} patch release ({to}), the nearest end of the range")
    } else {
        format!("set {field} to {to}, the nearest end of the range")
    };
    let mut out = match (&f.moved_to, f.kept) {
        (Some((t, range)), true) => format!(
            "{product} {t}, the nearest supported release, supports it ({range}): keep it and upgrade {product} to {t}"
        ),
        (Some((t, range)), false) => {
            format!("with {product} {t}, the nearest supported release ({range}), {set}")
        }
        // No supported release to move to: only the range itself can be named.
        (None, true) => format!("set {field} to a version in that range"),
        (None, false) => set,
    };
    if let Some(m) = f.retag {
        out.push_str(&format!(
            "; the KBA and Kommander refs must then be tagged for {m}"
        ));
    }
    out
}

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

// ---- addons ---------------------------------------------------------------------------------

pub fn experimental_in_production(name: &str, in_release: &str, selector: &str) -> String {
    format!(
        "addon {name} is Experimental{in_release} and must not be used in production clusters (selected by {selector}); disable it (enabled: false) or run it only on non-production clusters"
    )
}

pub fn experimental_elsewhere(name: &str, in_release: &str) -> String {
    format!(
        "addon {name} is Experimental{in_release}: limited, Severity 4 support only, and it may be discontinued without notice; never enable it on a production cluster"
    )
}

/// `names` sorted and without repeats.
pub fn secondary_addons(names: &[&str]) -> String {
    let (noun, verb) = if names.len() == 1 {
        ("addon", "is")
    } else {
        ("addons", "are")
    };
    let list = names.join(", ");
    format!(
        "{noun} {list} {verb} under secondary support: configuration guidance and failure assistance for their integration with the platform; base-technology issues go to their upstream"
    )
}

pub fn addon_needs_newer(name: &str, bound: &Bound, k: &Version) -> String {
    format!(
        "addon {name} needs Kubernetes {bound} or newer, but this cluster runs {k}; use the addon revision from the KBA release for Kubernetes {}",
        k.minor()
    )
}

pub fn addon_needs_older(name: &str, bound: &Bound, k: &Version) -> String {
    format!(
        "addon {name} supports Kubernetes up to {bound}, but this cluster runs {k}; use the addon revision from the KBA release for Kubernetes {}",
        k.minor()
    )
}

// ---- KUDO -----------------------------------------------------------------------------------

pub fn secondary_kudo(operator: &str) -> String {
    format!(
        "KUDO {operator} is under secondary support: its base technology and its KUDO operator are supported for their integration with the platform"
    )
}

// ---- values that are not what they should be ------------------------------------------------

/// A version field that holds something other than a non-empty string; `None` for a string.
pub fn not_a_version_string(raw: &Value, what: &str, example: &str) -> Option<String> {
    Some(match raw {
        Value::String(s) if s.trim().is_empty() => {
            format!("empty; set {what}, e.g. {example}")
        }
        Value::String(_) | Value::Null => return None,
        Value::Number(n) => format!(
            "the number {n}, not a version string; YAML reads an unquoted version such as 1.20 as a number: quote it, e.g. \"{example}\""
        ),
        Value::Bool(b) => {
            format!("the boolean {b}, not {what}; set it to a version string, e.g. \"{example}\"")
        }
        Value::Array(_) => {
            format!("a list, not {what}; set it to a version string, e.g. \"{example}\"")
        }
        Value::Object(_) => {
            format!("an object, not {what}; set it to a version string, e.g. \"{example}\"")
        }
    })
}

pub fn invalid_version(error: impl Display, what: &str, example: &str) -> String {
    format!("{error}; set {what} to an exact released version, e.g. {example}")
}

pub fn invalid_bound(error: impl Display) -> String {
    error.to_string()
}

/// `version-missing`: the object names no version where its target says one lives.
pub fn version_missing(what: &str, query: &str, severity_is_deny: bool) -> String {
    let consequence = if severity_is_deny {
        "the policy denies objects it cannot check (spec.missingVersion: Deny)"
    } else {
        "nothing about its support can be checked; set spec.missingVersion: Deny to refuse such objects"
    };
    format!(
        "names no {what} (the target reads it from `{query}`, which selects nothing here); {consequence}"
    )
}

// ---- ratcheting and bounds ------------------------------------------------------------------

pub fn ratcheted(message: &str) -> String {
    format!(
        "{message} (already so before this update: allowed, so the object can still be edited and upgraded)"
    )
}

pub fn more_not_listed(dropped: usize) -> String {
    format!(" ({dropped} more violations not listed)")
}

// ---- policy authoring -----------------------------------------------------------------------

/// A target field that resolved in none of the objects of its kind.
pub fn field_unresolved(field: &str, query: &str, objects: u64, kind: &str) -> String {
    let noun = if objects == 1 { "object" } else { "objects" };
    format!(
        "{field} `{query}` selects nothing in any of the {objects} {kind} {noun} checked; the rules that need it never run (a typo in the path?)"
    )
}

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

/// A field's old value as written: a string as itself, anything else as JSON, cut short.
fn raw_value(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("`{}`", crate::collect::cut(text, 80))
}
