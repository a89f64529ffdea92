//! The engine's verdict types, and the evaluation of one object against one policy.
//!
//! Pure by design — no clock, no client, no I/O. The webhook, the controller and `supportgate
//! check` all go through [`crate::policyset::PolicySet::assess`], so admission, audit and
//! CI can never disagree. The caller passes "today" and, for in-cluster addons, the hosting
//! cluster's Kubernetes version.

use std::collections::BTreeSet;

use jiff::civil::Date;
use serde::Serialize;
use serde_json::Value;

use crate::checks;
use crate::policy::Policy;
use crate::rules::{Rule, Severity};
use crate::targets::CompiledTarget;
use crate::version::Version;

/// What the engine needs to know about the world.
#[derive(Debug, Clone)]
pub struct Context {
    pub today: Date,
    /// The Kubernetes version of the cluster the objects live in, for targets that carry no
    /// Kubernetes version of their own (kubeaddons Addons).
    pub hosting_kubernetes: Option<Version>,
    /// The SupportExceptions in force (see [`crate::exceptions`]).
    pub exceptions: std::sync::Arc<crate::exceptions::ExceptionSet>,
}

impl Context {
    pub fn new(today: Date) -> Self {
        Context {
            today,
            hosting_kubernetes: None,
            exceptions: Default::default(),
        }
    }

    pub fn with_exceptions(mut self, x: std::sync::Arc<crate::exceptions::ExceptionSet>) -> Self {
        self.exceptions = x;
        self
    }

    pub fn with_hosting_kubernetes(mut self, v: Option<Version>) -> Self {
        self.hosting_kubernetes = v;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    /// Where in the object, e.g. `spec.provisioner.version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The SupportException (`namespace/name`) that turned this denial into a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Warned,
    Denied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Warned => "warned",
            Verdict::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
}

impl Evaluation {
    pub fn of(&self, severity: Severity) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(move |v| v.severity == severity)
    }

    /// The first deny rule: the `reason` of a `Supported=False` condition.
    pub fn first_denial(&self) -> Option<&Violation> {
        self.of(Severity::Deny).next()
    }

    /// The distinct rules that deny, for ratcheting an update against the object's old state.
    pub fn denied_rules(&self) -> BTreeSet<Rule> {
        self.of(Severity::Deny).map(|v| v.rule).collect()
    }

    pub fn has_rule(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }
}

/// Evaluates an object against one policy; `None` when no target of the policy matches its kind.
/// For one policy alone (tests, tools); the running system evaluates a whole
/// [`crate::policyset::PolicySet`].
pub fn evaluate(policy: &Policy, object: &Value, ctx: &Context) -> Option<Evaluation> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let target = policy.target_for(api_version, kind)?;
    Some(evaluate_target(policy, target, object, ctx))
}

/// Evaluates an object against one target.
pub fn evaluate_target(
    policy: &Policy,
    target: &CompiledTarget,
    object: &Value,
    ctx: &Context,
) -> Evaluation {
    checks::run(policy, target, object, ctx).0.finish().0
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
