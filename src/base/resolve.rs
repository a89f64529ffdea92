//! Targets resolve against API discovery. A SupportPolicy target names a group, a kind and a
//! plural resource by hand; a typo in any of them (`resource: konvoycluster`, `kind:
//! Konvoycluster`) would otherwise write a webhook rule that matches nothing, or a rule whose
//! objects match no target, and the kind would be admitted unchecked. A policy whose targets do
//! not resolve is reported (`Ready=False`, reason `TargetsUnresolved`) and does not replace the
//! generation in force before it (see [`crate::base::policies`]).

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::discovery::{Discovery, Scope};

use crate::engine::targets::CompiledTarget;

/// One resource the API server serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Served {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

/// What discovery said, for the groups the targets name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    Served(Vec<Served>),
    /// Discovery failed: nothing can be said, so no new generation is promoted on it.
    Unknown(String),
}

/// Why a target does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Neither the kind nor the resource is served (or nothing of the group is): the API may
    /// simply not be installed yet (the built-in presets name kinds most clusters lack), so this
    /// alone does not hold a policy back.
    NotInstalled(String),
    /// Part of the target matches what is served and part does not: a resource served as
    /// another kind, a kind served as another resource, a version or scope that is not served.
    /// Always a mistake.
    Disagrees(String),
}

impl Problem {
    pub fn message(&self) -> &str {
        match self {
            Problem::NotInstalled(m) | Problem::Disagrees(m) => m,
        }
    }
}

/// Why one target does not resolve, or `None` when it does.
pub fn check_target(t: &CompiledTarget, served: &[Served]) -> Option<Problem> {
    let spec = &t.spec;
    let partial = served
        .iter()
        .any(|s| s.group == spec.api_group && (s.kind == spec.kind || s.plural == spec.resource));
    check_served(t, served).map(|why| {
        if partial {
            Problem::Disagrees(why)
        } else {
            Problem::NotInstalled(why)
        }
    })
}

fn check_served(t: &CompiledTarget, served: &[Served]) -> Option<String> {
    let spec = &t.spec;
    let group = &spec.api_group;
    let shown = shown(group);
    let in_group: Vec<&Served> = served.iter().filter(|s| &s.group == group).collect();
    if in_group.is_empty() {
        return Some(format!("API group {shown} is not served"));
    }
    let by_resource: Vec<&&Served> = in_group
        .iter()
        .filter(|s| s.plural == spec.resource)
        .collect();
    if by_resource.is_empty() {
        let plurals: BTreeSet<&str> = in_group
            .iter()
            .filter(|s| s.kind == spec.kind)
            .map(|s| s.plural.as_str())
            .collect();
        return Some(match plurals.first() {
            Some(p) => format!(
                "resource {} is not served in {shown}; kind {} is served as resource {p}",
                spec.resource, spec.kind
            ),
            None => format!(
                "neither resource {} nor kind {} is served in {shown}",
                spec.resource, spec.kind
            ),
        });
    }
    if let Some(other) = by_resource.iter().find(|s| s.kind != spec.kind) {
        return Some(format!(
            "resource {} in {shown} is of kind {}, not {}",
            spec.resource, other.kind, spec.kind
        ));
    }
    let versions: BTreeSet<&str> = by_resource.iter().map(|s| s.version.as_str()).collect();
    if !spec.versions.is_empty() && !spec.versions.iter().any(|v| versions.contains(v.as_str())) {
        return Some(format!(
            "{}.{shown} is served in {}, not in {}",
            spec.resource,
            versions.into_iter().collect::<Vec<_>>().join(", "),
            spec.versions.join(", ")
        ));
    }
    let namespaced = by_resource[0].namespaced;
    if namespaced != spec.namespaced {
        let scope = |n: bool| if n { "namespaced" } else { "cluster-scoped" };
        return Some(format!(
            "{}.{shown} is {}, the target says {}",
            spec.resource,
            scope(namespaced),
            scope(spec.namespaced)
        ));
    }
    None
}

/// The targets of a new generation that keep it from replacing `in_force` (the generation
/// enforced before it, if any), as `Kind.group: why`, in target order. A target that disagrees
/// with what is served always does. One that is not installed does only when the new generation
/// also stops naming a kind that the generation in force targets and that is served: a kind
/// that moved to a group or name that does not exist is a typo (`kommander.mesosphere.com`),
/// not an API yet to be installed.
pub fn blocking<'a>(
    targets: impl IntoIterator<Item = &'a CompiledTarget> + Clone,
    in_force: Option<&[CompiledTarget]>,
    served: &[Served],
) -> Vec<String> {
    let named = |group: &str, kind: &str| {
        targets
            .clone()
            .into_iter()
            .any(|t| t.spec.api_group == group && t.spec.kind == kind)
    };
    let dropped: Vec<String> = in_force
        .unwrap_or_default()
        .iter()
        .filter(|old| {
            served
                .iter()
                .any(|s| s.group == old.spec.api_group && s.kind == old.spec.kind)
        })
        .filter(|old| !named(&old.spec.api_group, &old.spec.kind))
        .map(|old| format!("{}.{}", old.spec.kind, shown(&old.spec.api_group)))
        .collect();
    // Only a target the generation in force did not have can be what a dropped kind became.
    let is_new = |t: &CompiledTarget| {
        !in_force
            .unwrap_or_default()
            .iter()
            .any(|old| old.spec.api_group == t.spec.api_group && old.spec.kind == t.spec.kind)
    };
    targets
        .into_iter()
        .filter_map(|t| {
            let why = match check_target(t, served)? {
                Problem::Disagrees(m) => m,
                Problem::NotInstalled(m) if !dropped.is_empty() && is_new(t) => format!(
                    "{m}, and {} is served but no longer targeted (a typo?)",
                    dropped.join(", ")
                ),
                Problem::NotInstalled(_) => return None,
            };
            Some(format!(
                "{}.{}: {why}",
                t.spec.kind,
                shown(&t.spec.api_group)
            ))
        })
        .collect()
}

fn shown(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}

/// Asks discovery about `groups` only (the core group as ""). A group that is not served is
/// simply absent from the answer.
pub async fn discover(client: &Client, groups: &BTreeSet<String>) -> Discovered {
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let run = Discovery::new(client.clone()).filter(&names).run().await;
    let discovery = match run {
        Ok(d) => d,
        Err(e) => return Discovered::Unknown(e.to_string()),
    };
    let mut served = BTreeMap::new();
    for group in discovery.groups() {
        for version in group.versions() {
            for (ar, caps) in group.versioned_resources(version) {
                let s = Served {
                    group: ar.group.clone(),
                    version: ar.version.clone(),
                    kind: ar.kind.clone(),
                    plural: ar.plural.clone(),
                    namespaced: caps.scope == Scope::Namespaced,
                };
                served.insert((s.group.clone(), s.version.clone(), s.plural.clone()), s);
            }
        }
    }
    Discovered::Served(served.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Target;

    fn target(group: &str, kind: &str, resource: &str, versions: &[&str]) -> CompiledTarget {
        let spec = Target {
            api_group: group.into(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            kind: kind.into(),
            resource: resource.into(),
            namespaced: true,
            fields: Default::default(),
        };
        CompiledTarget::compile(&spec).expect("a target without fields compiles")
    }

    fn served() -> Vec<Served> {
        let s = |group: &str, version: &str, kind: &str, plural: &str, namespaced| Served {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        };
        vec![
            s(
                "kommander.mesosphere.io",
                "v1beta1",
                "KonvoyCluster",
                "konvoyclusters",
                true,
            ),
            s(
                "kommander.mesosphere.io",
                "v1beta1",
                "VirtualGroup",
                "virtualgroups",
                false,
            ),
            s("", "v1", "ConfigMap", "configmaps", true),
        ]
    }

    const G: &str = "kommander.mesosphere.io";

    #[test]
    fn the_real_shape_resolves() {
        assert_eq!(
            check_target(
                &target(G, "KonvoyCluster", "konvoyclusters", &[]),
                &served()
            ),
            None
        );
        assert_eq!(
            check_target(
                &target(
                    G,
                    "KonvoyCluster",
                    "konvoyclusters",
                    &["v1alpha1", "v1beta1"]
                ),
                &served()
            ),
            None
        );
        assert_eq!(
            check_target(&target("", "ConfigMap", "configmaps", &["v1"]), &served()),
            None
        );
    }

    #[test]
    fn each_typo_is_named() {
        let why = |t| match check_target(&t, &served()).expect("unresolved") {
            Problem::Disagrees(m) | Problem::NotInstalled(m) => m,
        };
        assert_eq!(
            why(target(G, "KonvoyCluster", "konvoycluster", &[])),
            "resource konvoycluster is not served in kommander.mesosphere.io; kind KonvoyCluster is served as resource konvoyclusters"
        );
        assert_eq!(
            why(target(G, "Konvoycluster", "konvoyclusters", &[])),
            "resource konvoyclusters in kommander.mesosphere.io is of kind KonvoyCluster, not Konvoycluster"
        );
        assert_eq!(
            why(target(
                "kommander.mesosphere.com",
                "KonvoyCluster",
                "konvoyclusters",
                &[]
            )),
            "API group kommander.mesosphere.com is not served"
        );
        assert_eq!(
            why(target(G, "Widget", "widgets", &[])),
            "neither resource widgets nor kind Widget is served in kommander.mesosphere.io"
        );
        assert_eq!(
            why(target(G, "KonvoyCluster", "konvoyclusters", &["v1"])),
            "konvoyclusters.kommander.mesosphere.io is served in v1beta1, not in v1"
        );
        assert_eq!(
            why(target(G, "VirtualGroup", "virtualgroups", &[])),
            "virtualgroups.kommander.mesosphere.io is cluster-scoped, the target says namespaced"
        );
        assert_eq!(
            why(target("", "ConfigMap", "configmap", &[])),
            "resource configmap is not served in core; kind ConfigMap is served as resource configmaps"
        );
    }

    #[test]
    fn disagreements_always_block_and_a_missing_api_only_when_a_served_kind_was_dropped() {
        let ts = [
            target(G, "KonvoyCluster", "konvoycluster", &[]),
            target(G, "Widget", "widgets", &[]),
            target("kudo.dev", "Instance", "instances", &[]),
        ];
        let list = blocking(ts.iter(), None, &served());
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(
            list[0].starts_with("KonvoyCluster.kommander.mesosphere.io: resource konvoycluster")
        );
        // The group of a kind that is served today, misspelt in the new generation.
        let before = [target(G, "KonvoyCluster", "konvoyclusters", &[])];
        let moved = [target(
            "kommander.mesosphere.com",
            "KonvoyCluster",
            "konvoyclusters",
            &[],
        )];
        assert_eq!(
            blocking(moved.iter(), Some(&before), &served()),
            [
                "KonvoyCluster.kommander.mesosphere.com: API group kommander.mesosphere.com is not served, and KonvoyCluster.kommander.mesosphere.io is served but no longer targeted (a typo?)"
            ]
        );
        // Both names misspelt: nothing of it is served, and the served kind is gone.
        let both = [target(G, "KonvoyClustr", "konvoyclustrs", &[])];
        assert_eq!(blocking(both.iter(), Some(&before), &served()).len(), 1);
        // One that was there before is not blamed for a kind misspelt elsewhere.
        let before_kudo = [
            before[0].clone(),
            target("kudo.dev", "Instance", "instances", &[]),
        ];
        let typo = [
            target(G, "Konvoycluster", "konvoyclusters", &[]),
            before_kudo[1].clone(),
        ];
        let list = blocking(typo.iter(), Some(&before_kudo), &served());
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(list[0].starts_with("Konvoycluster."), "{list:?}");
        // A target added for an API still to be installed holds nothing back.
        let added = [
            before[0].clone(),
            target("kudo.dev", "Instance", "instances", &[]),
        ];
        assert!(blocking(added.iter(), Some(&before), &served()).is_empty());
        assert!(blocking(before.iter(), Some(&before), &served()).is_empty());
    }

    #[test]
    fn an_uninstalled_kind_in_a_served_group_is_not_a_disagreement() {
        let t = target(G, "Widget", "widgets", &[]);
        assert!(matches!(
            check_target(&t, &served()),
            Some(Problem::NotInstalled(_))
        ));
        let t = target("x.io", "Thing", "things", &[]);
        assert!(matches!(
            check_target(&t, &served()),
            Some(Problem::NotInstalled(_))
        ));
        let t = target(G, "Konvoycluster", "konvoyclusters", &[]);
        assert!(matches!(
            check_target(&t, &served()),
            Some(Problem::Disagrees(_))
        ));
    }
}
