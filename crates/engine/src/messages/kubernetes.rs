//! The words of `kubernetes-out-of-range` and of the Kubernetes fix.

use crate::version::{Minor, Version};

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
