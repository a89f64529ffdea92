//! supportgate: enforces a vendor's version support policy on the clusters and addons a
//! Kubernetes management cluster manages.
//!
//! - [`engine`] is pure: no Kubernetes client, no I/O, no clock. It is a crate of its own
//!   (`supportgate-engine`, crates/engine), so the compiler keeps it so; re-exported here.
//! - [`api`] holds the custom resources and their CRDs, and the ValidatingWebhookConfiguration.
//! - [`base`] is what the faces share: the policies in force, metrics, the clock.
//! - [`webhook`], [`controller`] and [`cli`] are the three faces, all evaluating through the
//!   engine's one path.
//! - [`runtime`] wires the operator process together; only `main` uses it.

/// The policy engine (`supportgate-engine`), at the path it always had.
pub use supportgate_engine as engine;

pub mod api;
pub mod base;
pub mod cli;
pub mod controller;
pub mod runtime;
pub mod webhook;

pub use engine::policy::Policy;
pub use engine::{Assessment, Context, Evaluation, PolicySet, Subject, Verdict, Violation};
