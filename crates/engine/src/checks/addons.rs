//! Enabled addons (experimental ones, and the secondary-support note) and an in-cluster addon's
//! own Kubernetes range against the hosting cluster.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::checks::Scope;
use crate::collect::Out;
use crate::messages;
use crate::policy::{Policy, Release};
use crate::rules::{Rule, Severity};
use crate::targets::{FieldKind, Located};
use crate::version::Version;

pub(crate) fn check_enabled(s: &mut Scope, out: &mut Out, release: Option<&Release>) {
    let selected = s.all(FieldKind::EnabledAddons);
    // Borrowed, not collected: a location is a few hundred bytes to copy.
    let addons = || {
        selected
            .iter()
            .filter_map(|at| at.value.as_str().map(|n| (at, n)))
    };
    let Some((first, _)) = addons().next() else {
        return;
    };
    check_experimental(s, out, release, addons());
    if s.policy.secondary_addons {
        let mut names: Vec<&str> = addons().map(|(_, n)| n).collect();
        names.sort_unstable();
        names.dedup();
        let msg = messages::secondary_addons(&names);
        out.push(Rule::SecondarySupport, Severity::Info, first, msg);
    }
}

/// The names experimental in `release`; without a product version (in-cluster Addons), in any
/// supported release: the addon is experimental in whatever the cluster runs.
fn experimental_names<'p>(
    policy: &'p Policy,
    s: &Scope,
    release: Option<&'p Release>,
) -> BTreeSet<&'p str> {
    match release {
        Some(r) => r.experimental_addons.iter().map(String::as_str).collect(),
        None => policy
            .releases()
            .iter()
            .filter(|r| policy.support_of(r, s.ctx.today).is_supported())
            .flat_map(|r| r.experimental_addons.iter().map(String::as_str))
            .collect(),
    }
}

fn check_experimental<'a>(
    s: &Scope,
    out: &mut Out,
    release: Option<&Release>,
    addons: impl Iterator<Item = (&'a Located<'a>, &'a str)>,
) {
    let policy = s.policy;
    // Built on the first name that could be experimental at all, not for every cluster.
    let mut experimental: Option<BTreeSet<&str>> = None;
    let mut production: Option<bool> = None;
    for (at, name) in addons {
        let key = name.trim();
        let lower;
        let key = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = key.to_ascii_lowercase();
            lower.as_str()
        } else {
            key
        };
        let is_experimental = match release {
            Some(r) => r.experimental_addons.contains(key),
            None => experimental
                .get_or_insert_with(|| experimental_names(policy, s, release))
                .contains(key),
        };
        if !is_experimental {
            continue;
        }
        let in_production =
            *production.get_or_insert_with(|| policy.is_production(&object_labels(s.object)));
        let in_release = messages::in_release(&policy.product_name, release.map(|r| r.minor));
        if in_production {
            let msg =
                messages::experimental_in_production(name, &in_release, policy.production_text());
            out.push(Rule::ExperimentalComponent, Severity::Deny, at, msg);
        } else {
            let msg = messages::experimental_elsewhere(name, &in_release);
            out.push(Rule::ExperimentalComponent, Severity::Warn, at, msg);
        }
    }
}

pub(crate) fn check_range(s: &mut Scope, out: &mut Out, hosting: Option<&Version>) {
    let min = s.first(FieldKind::AddonMinKubernetes);
    let max = s.first(FieldKind::AddonMaxKubernetes);
    let min = min.and_then(|at| out.bound(&at, "1.16.0").map(|b| (at, b)));
    let max = max.and_then(|at| out.bound(&at, "1.16.0").map(|b| (at, b)));
    let Some(k) = hosting else { return };
    if min.is_none() && max.is_none() {
        return;
    }
    let name = s
        .object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("this addon");
    if let Some((at, b)) = &min
        && !b.admits_as_min(k)
    {
        let msg = messages::addon_needs_newer(name, b, k);
        out.push(Rule::AddonKubernetesIncompatible, Severity::Deny, at, msg);
    }
    if let Some((at, b)) = &max
        && !b.admits_as_max(k)
    {
        let msg = messages::addon_needs_older(name, b, k);
        out.push(Rule::AddonKubernetesIncompatible, Severity::Deny, at, msg);
    }
}

pub(crate) fn object_labels(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
