//! The specs of the custom resources, as users write them: what the engine compiles.
//!
//! The Kubernetes objects around them (metadata, status, the CRDs) are the main crate's `api`,
//! which wraps these types unchanged. The engine reads a policy or an exception through
//! [`PolicyResource`] and [`ExceptionResource`], so that it never needs a Kubernetes type; the
//! [`PolicyDocument`] and [`ExceptionDocument`] here read the same YAML/JSON without one.

mod support_exception;
mod support_policy;

pub use support_exception::*;
pub use support_policy::*;

use std::sync::Arc;

use jiff::Timestamp;
use serde::Deserialize;

/// A SupportPolicy as the engine compiles it: its name and its spec.
pub trait PolicyResource {
    /// `metadata.name`.
    fn policy_name(&self) -> Option<&str>;
    fn policy_spec(&self) -> &SupportPolicySpec;
}

/// A SupportException as the engine compiles it: where it lives, when it was created, its spec.
pub trait ExceptionResource {
    /// `metadata.namespace`.
    fn exception_namespace(&self) -> Option<&str>;
    /// `metadata.name`.
    fn exception_name(&self) -> Option<&str>;
    /// `metadata.creationTimestamp`: an exception's lifetime counts from here.
    fn created(&self) -> Option<Timestamp>;
    fn exception_spec(&self) -> &SupportExceptionSpec;
}

// Watches hand out shared objects; compiling one needs no copy.
impl<T: PolicyResource + ?Sized> PolicyResource for Arc<T> {
    fn policy_name(&self) -> Option<&str> {
        (**self).policy_name()
    }

    fn policy_spec(&self) -> &SupportPolicySpec {
        (**self).policy_spec()
    }
}

impl<T: ExceptionResource + ?Sized> ExceptionResource for Arc<T> {
    fn exception_namespace(&self) -> Option<&str> {
        (**self).exception_namespace()
    }

    fn exception_name(&self) -> Option<&str> {
        (**self).exception_name()
    }

    fn created(&self) -> Option<Timestamp> {
        (**self).created()
    }

    fn exception_spec(&self) -> &SupportExceptionSpec {
        (**self).exception_spec()
    }
}

/// The part of an object's `metadata` the engine reads.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMeta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub creation_timestamp: Option<Timestamp>,
}

/// A `SupportPolicy` document (YAML or JSON) read without a Kubernetes client: `apiVersion`,
/// `kind` and `status` are not the engine's business and are ignored.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    pub metadata: DocumentMeta,
    pub spec: SupportPolicySpec,
}

impl PolicyResource for PolicyDocument {
    fn policy_name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn policy_spec(&self) -> &SupportPolicySpec {
        &self.spec
    }
}

/// A `SupportException` document read without a Kubernetes client.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct ExceptionDocument {
    pub metadata: DocumentMeta,
    pub spec: SupportExceptionSpec,
}

impl ExceptionResource for ExceptionDocument {
    fn exception_namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    fn exception_name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn created(&self) -> Option<Timestamp> {
        self.metadata.creation_timestamp
    }

    fn exception_spec(&self) -> &SupportExceptionSpec {
        &self.spec
    }
}
