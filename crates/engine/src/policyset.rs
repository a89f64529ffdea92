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

/// What [`PolicySet::assess`] judges: an object, as a CREATE or, with `old`, as an UPDATE.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub object: &'a Value,
    /// The object this one replaces (an UPDATE).
    pub old: Option<&'a Value>,
    /// An object of another kind that describes the same cluster (offline, the
    /// ClusterProvisioner of a ClusterConfiguration), whose product version the object's must
    /// equal.
    pub paired: Option<&'a Value>,
}

impl<'a> Subject<'a> {
    /// `object` replacing `old` when there is one (an UPDATE), else created.
    pub fn update(object: &'a Value, old: Option<&'a Value>) -> Self {
        Subject {
            object,
            old,
            paired: None,
        }
    }
}

/// A CREATE of the object.
impl<'a> From<&'a Value> for Subject<'a> {
    fn from(object: &'a Value) -> Self {
        Subject::update(object, None)
    }
}

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
    /// bounded, deduplicated evaluation. With [`Subject::old`] (an UPDATE), denials the old
    /// object already had are ratcheted (see [`crate::ratchet`]), and the change itself
    /// is judged (`upgrade-skips-minor`, `downgrade`); with [`Subject::paired`], the object's
    /// product version must equal the paired one's (`konvoy-version-mismatch`). SupportExceptions
    /// (`ctx.exceptions`) apply last. `None` when no policy targets the kind.
    pub fn assess<'a>(&self, subject: impl Into<Subject<'a>>, ctx: &Context) -> Option<Assessment> {
        let Subject {
            object,
            old,
            paired,
        } = subject.into();
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
            denials.extend(Denials::of(&out, per_policy.len()));
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
    /// The denials of each policy that denies (none for an object every policy allows, so that
    /// assessing it allocates nothing here).
    denials: Vec<Denials>,
}

/// One policy's denials, as (rule, field), for telling whether SupportExceptions cover them all.
struct Denials {
    /// The policy's index in `per_policy`.
    policy: usize,
    keys: Vec<(Rule, Option<String>)>,
    /// More than could be listed: some denials cannot be matched against the exceptions.
    overflow: bool,
}

impl Denials {
    /// `None` unless the policy denies.
    fn of(out: &Out, policy: usize) -> Option<Self> {
        if out.verdict() != Verdict::Denied {
            return None;
        }
        let found: Vec<_> = out.found().collect();
        Some(Denials {
            policy,
            overflow: found.len() >= MAX_VIOLATIONS,
            keys: found
                .iter()
                .filter(|f| f.violation.severity == Severity::Deny)
                .map(|f| (f.violation.rule, f.violation.field.clone()))
                .collect(),
        })
    }
}

/// A policy whose every denial a SupportException turned into a warning counts the object as
/// warned, as the merged verdict does, so its status counts and gauges agree with the object's
/// `Excepted` condition.
fn excepted_per_policy(per_policy: &mut [PolicyVerdict], denials: &[Denials], e: &Evaluation) {
    if e.violations.iter().all(|v| v.exception.is_none()) {
        return;
    }
    for d in denials {
        let p = &mut per_policy[d.policy];
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
#[path = "policyset_tests.rs"]
mod tests;
