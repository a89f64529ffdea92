//! The words of the addon rules: experimental and secondary-support addons, KUDO operators.

use crate::version::{Bound, Version};

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
