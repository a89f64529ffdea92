//! Every message a violation carries, built in one place.
//!
//! A message says what is wrong, what is supported and how to fix it. It never starts with the
//! field: every surface (admission denial, `check`, the PolicyReport) prints the field beside the
//! message already, so repeating it here would read `spec.version: spec.version: ...`.

use std::fmt::Display;

use jiff::civil::Date;
use serde_json::Value;

use crate::version::{Minor, Version};

mod addons;
mod kubernetes;
mod refs;
mod upgrades;

pub use addons::*;
pub use kubernetes::*;
pub use refs::*;
pub use upgrades::*;

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

/// A field's old value as written: a string as itself, anything else as JSON, cut short.
fn raw_value(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("`{}`", crate::collect::cut(text, 80))
}
