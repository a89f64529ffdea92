//! The policy engine: pure by design — no Kubernetes client, no I/O, no clock. A crate of its
//! own (`supportgate-engine`) so that the compiler keeps it so: it depends on no Kubernetes,
//! async or I/O crate. The main crate re-exports it as `supportgate::engine`.
//!
//! Its input is the specs users write ([`spec`]: a SupportPolicy's and a SupportException's,
//! with their CRD schema; [`selector`]: label selectors), which the main crate's `api` wraps
//! in the Kubernetes objects.
//!
//! Versions and tags are parsed once at the edge into typed values ([`version`], [`tag`]); a
//! policy is compiled once ([`policy`]) and evaluated against any number of objects as a
//! [`policyset::PolicySet`]. The webhook, the controller and `supportgate check` all call
//! [`policyset::PolicySet::assess`] (what it judges: a [`Subject`]; what it is told: a
//! [`Context`]; what it answers: an [`Assessment`], types in [`verdict`]), so admission, audit
//! and CI never disagree.
//!
//! The rules live in [`checks`], one module per family (product window, Kubernetes range, refs,
//! addons, KUDO); their words in [`messages`]; the bounded, deduplicating collector in
//! [`collect`]; update ratcheting in [`ratchet`].

mod checks;
mod collect;
pub mod coverage;
pub mod exceptions;
mod finite_pattern;
pub mod fix;
mod jsonpath_functions;
pub mod messages;
pub mod policy;
pub mod policyset;
mod problems;
pub mod projection;
pub mod query;
mod ratchet;
pub mod repository;
pub mod rules;
pub mod selector;
pub mod spec;
pub mod tag;
pub mod targets;
pub mod vendor;
pub mod verdict;
pub mod version;

pub use collect::{MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, MAX_VIOLATIONS};
pub use policyset::{Assessment, PolicySet, PolicyVerdict, Subject};
pub use verdict::{Context, Evaluation, Verdict, Violation};

#[cfg(test)]
mod evaluate_tests;
