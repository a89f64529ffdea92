//! The policies in force: every valid `SupportPolicy` in the cluster, or the embedded default
//! when there is none. Pure, like the engine: the webhook and the controller hold one snapshot
//! and evaluate against it.

use std::sync::Arc;

use serde_json::Value;

use crate::engine::policy::Policy;
use crate::engine::targets::CompiledTarget;
use crate::engine::{Context, Evaluation, evaluate_target};

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

    /// Evaluates an object against every policy that targets its kind and merges the verdicts;
    /// `None` when no policy targets it.
    pub fn evaluate(&self, object: &Value, ctx: &Context) -> Option<Evaluation> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let mut merged: Option<Evaluation> = None;
        for p in &self.policies {
            let Some(t) = p.target_for(api_version, kind) else {
                continue;
            };
            let e = evaluate_target(p, t, object, ctx);
            merged = Some(match merged {
                None => e,
                Some(mut m) => {
                    for v in e.violations {
                        if !m.violations.contains(&v) {
                            m.violations.push(v);
                        }
                    }
                    m.verdict = m.verdict.max(e.verdict);
                    m
                }
            });
        }
        // SupportExceptions last, on the merged verdict, so every caller gets them.
        merged.map(|e| {
            ctx.exceptions
                .apply(self.policies.iter().map(|p| &**p), object, ctx.today, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Verdict;
    use crate::engine::policy::DEFAULT_POLICY_YAML;
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
}
