//! supportgate: enforces a vendor's version support policy on the clusters and addons a
//! Kubernetes management cluster manages.
//!
//! The engine ([`engine`], [`policy`], [`version`], [`tag`], [`targets`], [`rules`]) is pure:
//! no Kubernetes client and no I/O. The CLI, the webhook and the controller are edges around it.

pub mod admission;
pub mod api;
pub mod check;
pub mod clock;
pub mod condition;
pub mod controller;
pub mod crd;
pub mod engine;
mod jsonpath_functions;
pub mod leader;
pub mod metrics;
pub mod policy;
pub mod policyset;
pub mod rules;
pub mod run;
pub mod selfcerts;
pub mod server;
pub mod tag;
pub mod targets;
pub mod tls;
pub mod version;
pub mod webhookconfig;

pub use engine::{Context, Evaluation, Verdict, Violation, evaluate};
pub use policy::Policy;
