//! The custom resources supportgate serves, and the CRD manifests generated from them.

pub mod crd;
pub mod object;
mod support_exception;
mod support_policy;
pub mod vendor;

pub use support_exception::*;
pub use support_policy::*;

#[cfg(test)]
mod edge_tests;
