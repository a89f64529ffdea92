//! A policy's objects by verdict, counted from what the reconciles recorded (`Seen`), never
//! from a second evaluation.

use std::collections::{BTreeMap, HashMap};

use crate::api::ObjectCounts;
use crate::controller::ledger::Seen;
use crate::engine::Verdict;
use crate::engine::coverage::TargetCoverage;

/// A policy's objects by verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub counts: ObjectCounts,
    /// `namespace/name (Kind)` of every denied object.
    pub denied: Vec<String>,
    /// Per target index: in how many objects each target field resolved.
    pub coverage: BTreeMap<usize, TargetCoverage>,
}

impl Tally {
    pub fn add(&mut self, verdict: Verdict, display: &str) {
        match verdict {
            Verdict::Allowed => self.counts.allowed += 1,
            Verdict::Warned => self.counts.warned += 1,
            Verdict::Denied => {
                self.counts.denied += 1;
                self.denied.push(display.to_string());
            }
        }
    }
}

/// Per policy (by name), the tally of the recorded verdicts and of which target fields resolved.
pub fn per_policy<'a>(seen: impl Iterator<Item = &'a Seen>) -> HashMap<String, Tally> {
    let mut per: HashMap<String, Tally> = HashMap::new();
    for s in seen {
        for (policy, verdict) in &s.per_policy {
            per.entry(policy.clone())
                .or_default()
                .add(*verdict, &s.display);
        }
        for (policy, target, mask) in &s.resolved {
            per.entry(policy.clone())
                .or_default()
                .coverage
                .entry(*target)
                .or_default()
                .record(*mask);
        }
    }
    per
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::metrics::FleetLabels;
    use crate::engine::targets::{FieldKind, FieldMask};

    fn seen(display: &str, per_policy: &[(&str, Verdict)], resolved: &[(&str, usize)]) -> Seen {
        let mut mask = FieldMask::default();
        mask.insert(FieldKind::KubernetesVersion);
        Seen {
            display: display.into(),
            merged: Verdict::Allowed,
            per_policy: per_policy
                .iter()
                .map(|(p, v)| (p.to_string(), *v))
                .collect(),
            resolved: resolved
                .iter()
                .map(|(p, t)| (p.to_string(), *t, mask))
                .collect(),
            fleet: FleetLabels {
                kind: "X".into(),
                namespace: "ns".into(),
                verdict: "Allowed".into(),
                reason: String::new(),
            },
            support: None,
            excepted_by: vec![],
            epoch: 1,
        }
    }

    #[test]
    fn each_policy_counts_its_own_verdicts() {
        let records = [
            seen(
                "ns/a (X)",
                &[("p", Verdict::Allowed), ("q", Verdict::Denied)],
                &[("p", 0)],
            ),
            seen("ns/b (X)", &[("p", Verdict::Denied)], &[("p", 0), ("q", 1)]),
            seen("ns/c (X)", &[("p", Verdict::Warned)], &[]),
        ];
        let per = per_policy(records.iter());
        let p = &per["p"];
        assert_eq!(
            p.counts,
            ObjectCounts {
                allowed: 1,
                warned: 1,
                denied: 1
            }
        );
        assert_eq!(p.denied, vec!["ns/b (X)"]);
        assert_eq!(p.coverage.keys().copied().collect::<Vec<_>>(), vec![0]);
        let q = &per["q"];
        assert_eq!(q.denied, vec!["ns/a (X)"]);
        assert_eq!(q.coverage.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(per_policy(std::iter::empty()).is_empty());
    }
}
