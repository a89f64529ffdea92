//! The policy engine: pure by design — no Kubernetes client, no I/O, no clock.
//!
//! Versions and tags are parsed once at the edge into typed values ([`version`], [`tag`]); a
//! policy is compiled once ([`policy`]) and evaluated against any number of objects
//! ([`evaluate`]), alone or as a [`policyset`]. The webhook, the controller and `supportgate
//! check` all go through [`policyset::PolicySet`], so admission, audit and CI never disagree.

pub mod evaluate;
pub mod exceptions;
mod jsonpath_functions;
pub mod policy;
pub mod policyset;
pub mod rules;
pub mod tag;
pub mod targets;
pub mod version;

pub use evaluate::*;
