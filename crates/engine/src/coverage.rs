//! Which target fields resolve in the objects a policy sees: how authoring mistakes in a policy
//! (a path with a typo selects nothing, a valid JSONPath that matches nothing) surface instead of
//! quietly switching rules off. Pure: `check` counts the files it reads, the controller counts
//! the objects it watches, and both ask [`unresolved_fields`] what to report.

use std::collections::BTreeMap;

use crate::messages;
use crate::policy::Policy;
use crate::policyset::Assessment;
use crate::targets::{FieldKind, FieldMask};
use strum::EnumCount;

/// For one target of one policy: how many objects of its kind were seen, and in how many each
/// field resolved (selected a set value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCoverage {
    pub objects: u64,
    resolved: [u64; FieldKind::COUNT],
}

impl TargetCoverage {
    pub fn record(&mut self, resolved: FieldMask) {
        self.objects += 1;
        for k in resolved.iter() {
            self.resolved[k as usize] += 1;
        }
    }

    /// In how many of the objects the field resolved.
    pub fn resolved(&self, k: FieldKind) -> u64 {
        self.resolved[k as usize]
    }
}

/// Per policy (by name), per target index: what resolved where.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    per_target: BTreeMap<(String, usize), TargetCoverage>,
}

impl Coverage {
    /// Counts one assessed object for every policy that targeted it.
    pub fn record(&mut self, a: &Assessment) {
        for p in &a.per_policy {
            self.per_target
                .entry((p.policy.clone(), p.target))
                .or_default()
                .record(p.resolved);
        }
    }

    /// What was counted for one policy, by target index.
    pub fn of_policy(&self, policy: &str) -> BTreeMap<usize, TargetCoverage> {
        self.per_target
            .iter()
            .filter(|((name, _), _)| name == policy)
            .map(|((_, i), c)| (*i, c.clone()))
            .collect()
    }
}

/// A target field that resolved in none of at least one object of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedField {
    pub policy: String,
    /// `KonvoyCluster.kommander.mesosphere.io`.
    pub target: String,
    /// The field's name in the spec (`productVersion`).
    pub field: &'static str,
    pub query: String,
    /// How many objects of the kind were seen.
    pub objects: u64,
    pub message: String,
}

/// The fields of `policy`'s targets that resolved in none of the objects counted for them
/// (`counts` by target index). A target with no objects counted says nothing: a field is only
/// unresolved when there was something to resolve it in. A field that resolved in some objects
/// but not all is not reported here; the counts say so.
pub fn unresolved_fields(
    policy: &Policy,
    counts: &BTreeMap<usize, TargetCoverage>,
) -> Vec<UnresolvedField> {
    let mut out = Vec::new();
    for (i, target) in policy.targets().iter().enumerate() {
        let Some(c) = counts.get(&i).filter(|c| c.objects > 0) else {
            continue;
        };
        for k in target.configured().iter() {
            if c.resolved(k) > 0 {
                continue;
            }
            let query = target.query(k).unwrap_or_default().to_string();
            out.push(UnresolvedField {
                policy: policy.name.clone(),
                target: target.display_name(),
                field: k.spec_name(),
                message: messages::field_unresolved(
                    k.spec_name(),
                    &query,
                    c.objects,
                    &target.spec.kind,
                ),
                query,
                objects: c.objects,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY_YAML;
    use crate::policyset::PolicySet;
    use crate::{Context, Verdict};
    use jiff::civil::date;
    use serde_json::json;
    use std::sync::Arc;

    fn typo_policy(missing: &str) -> Policy {
        let yaml = format!(
            "{DEFAULT_POLICY_YAML}  missingVersion: {missing}\n  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields:\n      productVersion: $.spec.provisioner.verison\n      kubernetesVersion: $.spec.cluster.kubernetes.version\n"
        );
        Policy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn cluster(v: &str) -> serde_json::Value {
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
            "metadata": {"name": "c", "namespace": "kommander"},
            "spec": {"provisioner": {"version": v}, "cluster": {"kubernetes": {"version": "1.17.17"}}}})
    }

    #[test]
    fn a_path_with_a_typo_is_reported_and_its_objects_are_not_silently_allowed() {
        let ctx = Context::new(date(2026, 11, 24));
        for (missing, verdict) in [("Warn", Verdict::Warned), ("Deny", Verdict::Denied)] {
            let set = PolicySet::from_policies(vec![Arc::new(typo_policy(missing))]);
            let mut coverage = Coverage::default();
            for v in ["v1.5.6", "v1.8.5"] {
                let a = set.assess(&cluster(v), &ctx).unwrap();
                assert_eq!(a.evaluation.verdict, verdict, "{missing}: {a:#?}");
                assert!(a.evaluation.has_rule(crate::rules::Rule::VersionMissing));
                coverage.record(&a);
            }
            let p = &set.policies()[0];
            let counts = coverage.of_policy(&p.name);
            assert_eq!(counts[&0].objects, 2);
            assert_eq!(counts[&0].resolved(FieldKind::KubernetesVersion), 2);
            let u = unresolved_fields(p, &counts);
            assert_eq!(u.len(), 1, "{u:#?}");
            assert_eq!(u[0].field, "productVersion");
            assert_eq!(u[0].query, "$.spec.provisioner.verison");
            assert_eq!(u[0].target, "KonvoyCluster.kommander.mesosphere.io");
            assert!(
                u[0].message.contains("2 KonvoyCluster objects"),
                "{}",
                u[0].message
            );
        }
    }

    #[test]
    fn partly_resolved_and_unseen_fields_raise_nothing() {
        let p = Policy::embedded_default();
        let mut c = TargetCoverage::default();
        let mut some = FieldMask::default();
        for &k in FieldKind::ALL {
            some.insert(k);
        }
        c.record(some);
        c.record(FieldMask::default());
        let counts = BTreeMap::from([(0, c)]);
        assert!(unresolved_fields(&p, &counts).is_empty());
        assert!(unresolved_fields(&p, &BTreeMap::new()).is_empty());
        let none = BTreeMap::from([(0, TargetCoverage::default())]);
        assert!(
            unresolved_fields(&p, &none).is_empty(),
            "no objects: nothing to say"
        );
    }
}
