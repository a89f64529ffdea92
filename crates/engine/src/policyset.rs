//! The policies in force: every valid `SupportPolicy` in the cluster, or the embedded default
//! when there is none. Pure, like the engine: the webhook and the controller hold one snapshot
//! and evaluate against it.

use std::sync::Arc;

use serde_json::Value;

use crate::checks;
use crate::collect::Out;
use crate::fix::Change;
use crate::policy::Policy;
use crate::ratchet::ratchet;
use crate::rules::{Rule, Severity};
use crate::targets::{CompiledTarget, FieldMask};
use crate::{Context, Evaluation, MAX_VIOLATIONS, Verdict};

#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
    embedded: bool,
}

impl PolicySet {
    pub fn embedded_default() -> Self {
        PolicySet {
            policies: vec![Arc::new(Policy::embedded_default())],
            embedded: true,
        }
    }

    /// The cluster's policies; with none, the embedded default applies.
    pub fn from_policies(policies: Vec<Arc<Policy>>) -> Self {
        if policies.is_empty() {
            Self::embedded_default()
        } else {
            PolicySet {
                policies,
                embedded: false,
            }
        }
    }

    pub fn is_embedded_default(&self) -> bool {
        self.embedded
    }

    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    /// Every target of every policy, for deciding which kinds to watch and intercept.
    pub fn targets(&self) -> impl Iterator<Item = &CompiledTarget> {
        self.policies.iter().flat_map(|p| p.targets().iter())
    }

    /// The one evaluation path: every policy that targets the object's kind, merged into one
    /// bounded, deduplicated evaluation. With `old` (an UPDATE), denials the old object already
    /// had are ratcheted (see [`crate::ratchet`]), and the change itself is judged
    /// (`upgrade-skips-minor`, `downgrade`). `None` when no policy targets the kind.
    pub fn assess(&self, object: &Value, old: Option<&Value>, ctx: &Context) -> Option<Assessment> {
        self.assess_paired(object, old, None, ctx)
    }

    /// [`PolicySet::assess`], with `paired`: an object of another kind that describes the same
    /// cluster (offline, the ClusterProvisioner of a ClusterConfiguration), whose product version
    /// the object's must equal (`konvoy-version-mismatch`).
    pub fn assess_paired(
        &self,
        object: &Value,
        old: Option<&Value>,
        paired: Option<&Value>,
        ctx: &Context,
    ) -> Option<Assessment> {
        let Collected {
            out,
            mut per_policy,
            fix,
            denials,
        } = self.collect(object, old, paired, ctx)?;
        // The old object alone: what it already had, to ratchet against. The rules that compare
        // two objects never run here, so they are never ratcheted away.
        let out = match old.and_then(|o| Some((o, self.collect(o, None, None, ctx)?.out))) {
            Some((old_object, before)) => ratchet(old_object, &before, object, out),
            None => out,
        };
        // SupportExceptions last, on the merged verdict, so every caller gets them.
        let evaluation = ctx.exceptions.apply(
            self.policies.iter().map(|p| &**p),
            object,
            ctx.today,
            out.finish().0,
        );
        excepted_per_policy(&mut per_policy, &denials, &evaluation);
        Some(Assessment {
            evaluation,
            per_policy,
            fix,
        })
    }

    /// Compatibility: the merged evaluation alone, as [`PolicySet::assess`] gives it.
    pub fn evaluate(&self, object: &Value, ctx: &Context) -> Option<Evaluation> {
        self.assess(object, None, ctx).map(|a| a.evaluation)
    }

    /// Every policy's findings merged, each policy's verdict, and the fix: the first policy's
    /// combination that changes anything (each policy's messages point at its own).
    fn collect(
        &self,
        object: &Value,
        old: Option<&Value>,
        paired: Option<&Value>,
        ctx: &Context,
    ) -> Option<Collected> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let mut merged: Option<Out> = None;
        let mut per_policy = Vec::new();
        let mut fix = Vec::new();
        let mut denials = Vec::new();
        for p in &self.policies {
            let Some((index, t)) = p
                .targets()
                .iter()
                .enumerate()
                .find(|(_, t)| t.matches(api_version, kind))
            else {
                continue;
            };
            let (mut out, resolved, changes) = checks::run(p, t, object, ctx);
            checks::run_related(p, t, object, old, paired, &mut out);
            if fix.is_empty() {
                fix = changes;
            }
            denials.push(Denials::of(&out));
            per_policy.push(PolicyVerdict {
                policy: p.name.clone(),
                target: index,
                verdict: out.verdict(),
                resolved,
            });
            match &mut merged {
                None => merged = Some(out),
                Some(m) => m.absorb(out),
            }
        }
        merged.map(|out| Collected {
            out,
            per_policy,
            fix,
            denials,
        })
    }
}

/// What every policy that targets an object found in it.
struct Collected {
    out: Out,
    per_policy: Vec<PolicyVerdict>,
    fix: Vec<Change>,
    /// Each policy's denials, in `per_policy`'s order.
    denials: Vec<Denials>,
}

/// One policy's denials, as (rule, field), for telling whether SupportExceptions cover them all.
/// Empty (no allocation) unless the policy denies.
struct Denials {
    keys: Vec<(Rule, Option<String>)>,
    /// More than could be listed: some denials cannot be matched against the exceptions.
    overflow: bool,
}

impl Denials {
    fn of(out: &Out) -> Self {
        if out.verdict() != Verdict::Denied {
            return Denials {
                keys: Vec::new(),
                overflow: false,
            };
        }
        let found: Vec<_> = out.found().collect();
        Denials {
            overflow: found.len() >= MAX_VIOLATIONS,
            keys: found
                .iter()
                .filter(|f| f.violation.severity == Severity::Deny)
                .map(|f| (f.violation.rule, f.violation.field.clone()))
                .collect(),
        }
    }
}

/// A policy whose every denial a SupportException turned into a warning counts the object as
/// warned, as the merged verdict does, so its status counts and gauges agree with the object's
/// `Excepted` condition.
fn excepted_per_policy(per_policy: &mut [PolicyVerdict], denials: &[Denials], e: &Evaluation) {
    if e.violations.iter().all(|v| v.exception.is_none()) {
        return;
    }
    for (p, d) in per_policy.iter_mut().zip(denials) {
        if p.verdict != Verdict::Denied || d.overflow {
            continue;
        }
        let covered = d.keys.iter().all(|(rule, field)| {
            e.violations
                .iter()
                .any(|v| v.exception.is_some() && v.rule == *rule && v.field == *field)
        });
        if covered {
            p.verdict = Verdict::Warned;
        }
    }
}

/// What the policies in force say about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Merged over every policy that targets the object: the strictest verdict, each violation
    /// once, at most [`crate::MAX_VIOLATIONS`] listed.
    pub evaluation: Evaluation,
    /// Each policy's own verdict (before ratcheting, after SupportExceptions; with the update and
    /// paired rules), in the set's order.
    pub per_policy: Vec<PolicyVerdict>,
    /// The fields the suggested combination changes (see [`crate::fix`]); empty when
    /// nothing needs to change.
    pub fix: Vec<Change>,
}

/// One policy's verdict on an object, and which of its target's fields resolved there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVerdict {
    pub policy: String,
    /// Index of the matching target in the policy's targets.
    pub target: usize,
    pub verdict: Verdict,
    /// The target's fields that selected a set value in this object.
    pub resolved: FieldMask,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY_YAML;
    use jiff::civil::date;
    use serde_json::json;

    #[test]
    fn policies_merge_and_the_strictest_wins() {
        let strict =
            Policy::from_yaml(&DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: 2"))
                .unwrap();
        let set =
            PolicySet::from_policies(vec![Arc::new(Policy::embedded_default()), Arc::new(strict)]);
        assert!(!set.is_embedded_default());
        let obj = json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner", "spec": {"version": "v1.6.3"}});
        let e = set
            .evaluate(&obj, &Context::new(date(2026, 11, 24)))
            .unwrap();
        assert_eq!(e.verdict, Verdict::Denied);
        assert_eq!(
            e.violations.len(),
            2,
            "a warning from one policy, a denial from the other: {:#?}",
            e.violations
        );
        assert!(
            set.evaluate(
                &json!({"apiVersion": "v1", "kind": "Pod"}),
                &Context::new(date(2026, 11, 24))
            )
            .is_none()
        );
        assert!(PolicySet::from_policies(vec![]).is_embedded_default());
    }

    #[test]
    fn merging_many_policies_stays_bounded_and_lists_each_violation_once() {
        let set = PolicySet::from_policies(
            (0..5)
                .map(|_| Arc::new(Policy::embedded_default()))
                .collect(),
        );
        let addons: Vec<_> = (0..20_000)
            .map(|i| json!({"name": if i % 2 == 0 { "istio".to_string() } else { format!("a{i}") }, "enabled": true}))
            .collect();
        let obj = json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
            "metadata": {"name": "c", "labels": {"environment": "production"}},
            "spec": {"provisioner": {"version": "v1.5.6"}, "cluster": {"kubernetes": {"version": "1.17.17"},
                "addons": [{"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
                    "configVersion": "stable-1.17-3.0.0", "addonsList": addons}]}}});
        let a = set
            .assess(&obj, None, &Context::new(date(2026, 11, 24)))
            .unwrap();
        let e = &a.evaluation;
        assert_eq!(e.verdict, Verdict::Denied);
        assert_eq!(a.per_policy.len(), 5);
        assert!(e.violations.len() <= crate::MAX_VIOLATIONS);
        let unique: std::collections::HashSet<_> = e.violations.iter().collect();
        assert_eq!(unique.len(), e.violations.len(), "each violation once");
        assert_eq!(
            e.violations
                .iter()
                .filter(|v| v.message.contains("more violations not listed"))
                .count(),
            1
        );
        // The same five policies agree on a plain object: one listing, not five.
        let plain = json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner", "spec": {"version": "v1.5.6"}});
        let e = set
            .assess(&plain, None, &Context::new(date(2026, 11, 24)))
            .unwrap()
            .evaluation;
        assert_eq!(e.violations.len(), 1, "{:#?}", e.violations);
    }
}
