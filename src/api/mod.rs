//! The custom resources supportgate serves, and the CRD manifests generated from them.

pub mod crd;
mod support_policy;

pub use support_policy::*;
