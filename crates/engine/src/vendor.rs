//! Vendor updates of the default policy, without taking the user's policy away.
//!
//! Once the `default` SupportPolicy exists it is the user's: neither the chart nor the operator
//! writes its spec again. A newer supportgate embeds a newer default (say, one that knows Konvoy
//! 1.9); this module compares a policy's spec with that embedded one, so that the controller can
//! say so in a `NewerVendorPolicy` condition and `supportgate default-policy --diff` can show
//! what taking the update would change. Pure: the condition itself (a Kubernetes type, with its
//! time) is built by the main crate's `api::vendor` from [`newer_vendor`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::spec::{PolicyDocument, ProductRelease, SupportPolicySpec};
use crate::version::Minor;

/// The condition a SupportPolicy named [`VENDOR_POLICY_NAME`] carries.
pub const CONDITION_TYPE: &str = "NewerVendorPolicy";
/// The policy the chart seeds from the embedded default; the only one compared with it (other
/// policies are the user's own additions and are not expected to list every release).
pub const VENDOR_POLICY_NAME: &str = "default";
/// The reason of the event, and of the condition while it is True.
pub const REASON_NEWER: &str = "NewerVendorPolicy";
pub const REASON_UP_TO_DATE: &str = "UpToDate";

/// The spec of the policy this build embeds (`supportgate default-policy`), parsed once.
pub fn embedded_spec() -> &'static SupportPolicySpec {
    static SPEC: std::sync::LazyLock<SupportPolicySpec> = std::sync::LazyLock::new(|| {
        serde_norway::from_str::<PolicyDocument>(crate::policy::DEFAULT_POLICY_YAML)
            .map(|p| p.spec)
            // A unit test parses it; a build whose embedded policy does not parse never ships.
            .expect("the embedded default policy parses")
    });
    &SPEC
}

/// How a policy's spec differs from the vendor's (embedded) one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorDiff {
    /// Releases the vendor's policy knows and this one lacks, newest first.
    pub missing: Vec<String>,
    /// Releases both know, with different entries, newest first.
    pub changed: Vec<String>,
    /// Releases only this policy knows (local additions), newest first.
    pub local_only: Vec<String>,
    /// Fields outside `product` whose values differ (`supportWindow`, `secondarySupport.addons`).
    pub settings: Vec<String>,
    /// The human diff: `-` lines are this policy's, `+` lines the vendor's.
    pub lines: Vec<String>,
}

impl VendorDiff {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The diff as text, one line each, ending in a newline (empty when there is no difference).
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// A release's key: its minor when it parses (so `v1.8` and `1.8` are the same release), else
/// the text as written (an invalid policy is still compared, never refused here).
fn key(r: &ProductRelease) -> (Option<Minor>, String) {
    match r.version.parse::<Minor>() {
        Ok(m) => (Some(m), m.to_string()),
        Err(_) => (None, r.version.clone()),
    }
}

fn by_version(spec: &SupportPolicySpec) -> BTreeMap<(Option<Minor>, String), &ProductRelease> {
    spec.product.iter().map(|r| (key(r), r)).collect()
}

/// Compares `local` (the cluster's policy) with `vendor` (the embedded default).
pub fn diff(local: &SupportPolicySpec, vendor: &SupportPolicySpec) -> VendorDiff {
    let mine = by_version(local);
    let theirs = by_version(vendor);
    let mut d = VendorDiff::default();
    let all: BTreeSet<_> = mine.keys().chain(theirs.keys()).cloned().collect();
    // Newest first, as the default policy lists them.
    for k in all.into_iter().rev() {
        let name = k.1.clone();
        match (mine.get(&k), theirs.get(&k)) {
            (None, Some(v)) => {
                d.lines.push(format!(
                    "+ product {name}: only in the vendor's policy; the entry to add:"
                ));
                d.lines.extend(yaml_entry(v).map(|l| format!("+   {l}")));
                d.missing.push(name);
            }
            (Some(_), None) => {
                d.lines.push(format!(
                    "- product {name}: only in this policy (a local addition)"
                ));
                d.local_only.push(name);
            }
            (Some(m), Some(v)) if m != v => {
                d.lines.push(format!("~ product {name}:"));
                d.lines
                    .extend(field_lines(&to_value(*m), &to_value(*v), "  "));
                d.changed.push(name);
            }
            _ => {}
        }
    }
    let (mut l, mut v) = (to_value(local), to_value(vendor));
    for o in [&mut l, &mut v] {
        if let Value::Object(map) = o {
            map.remove("product");
        }
    }
    let settings = field_lines(&l, &v, "");
    d.settings = changed_paths(&l, &v);
    d.lines.extend(settings);
    d
}

/// A release as the YAML list item to paste under `spec.product` (`kubectl edit`).
fn yaml_entry(r: &ProductRelease) -> impl Iterator<Item = String> {
    // Serializing this plain struct cannot fail; an empty entry keeps the diff total regardless.
    let text = serde_norway::to_string(&[r]).unwrap_or_default();
    text.lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
        .into_iter()
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    // Serializing these plain structs cannot fail; Null keeps the comparison total regardless.
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// `-`/`+` lines for every path whose value differs between `mine` and `theirs`.
fn field_lines(mine: &Value, theirs: &Value, indent: &str) -> Vec<String> {
    let (m, t) = (flatten(mine), flatten(theirs));
    let mut out = Vec::new();
    for path in changed_paths(mine, theirs) {
        if let Some(val) = m.get(&path) {
            out.push(format!("- {indent}{path}: {val}"));
        }
        if let Some(val) = t.get(&path) {
            out.push(format!("+ {indent}{path}: {val}"));
        }
    }
    out
}

fn changed_paths(mine: &Value, theirs: &Value) -> Vec<String> {
    let (m, t) = (flatten(mine), flatten(theirs));
    let paths: BTreeSet<&String> = m.keys().chain(t.keys()).collect();
    paths
        .into_iter()
        .filter(|p| m.get(*p) != t.get(*p))
        .cloned()
        .collect()
}

/// Leaf paths (`kubernetes.max`, `experimentalAddons`) and their values as one line of text.
/// Lists of scalars stay one leaf, so a changed addon list reads as one line.
fn flatten(v: &Value) -> BTreeMap<String, String> {
    fn walk(v: &Value, path: &str, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(child, &p, out);
                }
            }
            Value::Array(items) if items.iter().any(|i| i.is_object()) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), out);
                }
            }
            Value::String(s) => {
                out.insert(path.to_string(), s.clone());
            }
            other => {
                out.insert(path.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, "", &mut out);
    out
}

/// What the `NewerVendorPolicy` condition of a policy with spec `local` says: True (`newer`)
/// while the vendor's policy knows releases this one lacks; the spec is never changed (taking
/// the update is the user's decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewerVendor {
    pub newer: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Compares `local` with `vendor` for the `NewerVendorPolicy` condition.
pub fn newer_vendor(local: &SupportPolicySpec, vendor: &SupportPolicySpec) -> NewerVendor {
    let d = diff(local, vendor);
    if d.missing.is_empty() {
        NewerVendor {
            newer: false,
            reason: REASON_UP_TO_DATE,
            message: "supportgate's embedded default policy knows no release this policy lacks"
                .to_string(),
        }
    } else {
        NewerVendor {
            newer: true,
            reason: REASON_NEWER,
            message: newer_message(&d, &vendor.product_name),
        }
    }
}

fn newer_message(d: &VendorDiff, product: &str) -> String {
    let mut m = format!(
        "supportgate's embedded default policy knows {product} {}, which this policy lacks",
        d.missing.join(", ")
    );
    if !d.changed.is_empty() {
        m.push_str(&format!("; it also differs on {}", d.changed.join(", ")));
    }
    let them = if d.missing.len() == 1 { "it" } else { "them" };
    m.push_str(&format!(
        ". Nothing was changed: `supportgate default-policy --diff` shows the difference, and \
         adding {them} (`kubectl edit supportpolicy default`) is your decision."
    ));
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY_YAML;

    fn spec(yaml: &str) -> PolicyDocument {
        serde_norway::from_str(yaml).unwrap()
    }

    fn embedded() -> PolicyDocument {
        let sp = spec(DEFAULT_POLICY_YAML);
        assert_eq!(&sp.spec, embedded_spec());
        sp
    }

    const NEW_RELEASE: &str = "  - version: \"1.9\"\n    releaseDate: \"2021-09-01\"\n    kubernetes: {min: 1.19.x, max: 1.21.x, default: 1.21.4}\n    kommander: \"1.5\"\n";

    fn with_1_9() -> PolicyDocument {
        spec(&DEFAULT_POLICY_YAML.replace("  product:\n", &format!("  product:\n{NEW_RELEASE}")))
    }

    #[test]
    fn the_embedded_default_does_not_differ_from_itself() {
        let d = diff(&embedded().spec, &embedded().spec);
        assert!(d.is_empty(), "{}", d.text());
        assert_eq!(d, VendorDiff::default());
    }

    #[test]
    fn a_release_the_vendor_knows_is_missing_and_shown_whole() {
        let d = diff(&embedded().spec, &with_1_9().spec);
        assert_eq!(d.missing, ["1.9"]);
        assert!(d.changed.is_empty() && d.local_only.is_empty() && d.settings.is_empty());
        let text = d.text();
        assert!(
            text.starts_with("+ product 1.9: only in the vendor's policy; the entry to add:\n"),
            "{text}"
        );
        // The entry is YAML to paste under spec.product, and it reads back as the release.
        let entry: String = text
            .lines()
            .skip(1)
            .map(|l| format!("{}\n", l.strip_prefix("+   ").unwrap()))
            .collect();
        let parsed: Vec<ProductRelease> = serde_norway::from_str(&entry).unwrap();
        assert_eq!(parsed, [with_1_9().spec.product[0].clone()]);
        assert!(entry.starts_with("- version: '1.9'\n"), "{entry}");
    }

    #[test]
    fn a_local_addition_is_not_missing_and_shows_as_local() {
        let d = diff(&with_1_9().spec, &embedded().spec);
        assert!(d.missing.is_empty());
        assert_eq!(d.local_only, ["1.9"]);
        assert_eq!(
            d.text(),
            "- product 1.9: only in this policy (a local addition)\n"
        );
    }

    #[test]
    fn changed_entries_and_settings_show_both_values() {
        let local = spec(
            &DEFAULT_POLICY_YAML
                .replace("supportWindow: 3", "supportWindow: 4")
                .replace(
                    "max: 1.20.x, default: 1.20.6",
                    "max: 1.21.x, default: 1.20.6",
                )
                .replace("version: \"1.7\"", "version: \"v1.7\""),
        );
        let d = diff(&local.spec, &embedded().spec);
        assert!(d.missing.is_empty() && d.local_only.is_empty(), "{d:?}");
        // `v1.7` is the same release; only its spelling differs.
        assert_eq!(d.changed, ["1.8", "1.7"]);
        assert_eq!(d.settings, ["supportWindow"]);
        let text = d.text();
        for line in [
            "~ product 1.8:\n-   kubernetes.max: 1.21.x\n+   kubernetes.max: 1.20.x\n",
            "~ product 1.7:\n-   version: v1.7\n+   version: 1.7\n",
            "- supportWindow: 4\n+ supportWindow: 3\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in:\n{text}");
        }
    }
}
