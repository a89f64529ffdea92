//! The engine's verdict types: what [`crate::policyset::PolicySet::assess`] is told about
//! the world ([`Context`]) and what it answers ([`Evaluation`]).
//!
//! Pure by design — no clock, no client, no I/O. The caller passes "today" and, for in-cluster
//! addons, the hosting cluster's Kubernetes version.

use std::collections::BTreeSet;

use jiff::civil::Date;
use serde::Serialize;

use crate::rules::{Rule, Severity};
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

/// `allowed`, `warned`, `denied`: the same strings in JSON, in messages (`Display`), as
/// `&'static str` for metric labels ([`Verdict::as_str`], `IntoStaticStr`) and parsed back
/// (`FromStr`). Ordered from the mildest: the strictest of several is their `max`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    strum::Display,
    strum::IntoStaticStr,
    strum::AsRefStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Warned,
    Denied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        self.into()
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
