//! The Kubernetes objects supportgate serves or writes: its custom resources and the CRD
//! manifests generated from them, and the ValidatingWebhookConfiguration.

pub mod crd;
pub mod object;
mod support_exception;
mod support_policy;
pub mod vendor;
pub mod webhook_configuration;

pub use support_exception::*;
pub use support_policy::*;

#[cfg(test)]
mod edge_tests;
