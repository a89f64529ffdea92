//! The `SupportException` custom resource (`supportgate.dev/v1alpha1`, namespaced): a dated,
//! reasoned exemption of matching objects from some deny rules.
//!
//! The spec is the engine's ([`crate::engine::spec::SupportExceptionSpec`], wire format, with the
//! schema and CEL rules of the CRD); [`crate::engine::exceptions`] compiles it into typed values
//! once. This module wraps it in the Kubernetes object and adds the status.

use std::ops::{Deref, DerefMut};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::engine::spec::{self, ExceptionResource};
pub use crate::engine::spec::{
    ALL_NAMESPACES, ExceptionKind, ExceptionMatch, ExceptionVersions, NAMESPACES_REQUIRED,
    WILDCARD_ALONE,
};

/// The spec of a [`SupportException`]: the engine's [`spec::SupportExceptionSpec`], unchanged
/// on the wire and in the schema. It dereferences to the engine's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "supportgate.dev",
    version = "v1alpha1",
    kind = "SupportException",
    plural = "supportexceptions",
    shortname = "sx",
    category = "supportgate",
    namespaced,
    doc = "A dated exemption of matching objects from some supportgate deny rules.",
    status = "SupportExceptionStatus",
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".spec.expires"}"#,
    printcolumn = r#"{"name":"Rules","type":"string","jsonPath":".spec.rules"}"#,
    printcolumn = r#"{"name":"Covered","type":"integer","jsonPath":".status.covered"}"#,
    printcolumn = r#"{"name":"Expired","type":"string","jsonPath":".status.conditions[?(@.type==\"Expired\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct SupportExceptionSpec(pub spec::SupportExceptionSpec);

impl JsonSchema for SupportExceptionSpec {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SupportExceptionSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        spec::SupportExceptionSpec::json_schema(generator)
    }
}

impl Deref for SupportExceptionSpec {
    type Target = spec::SupportExceptionSpec;

    fn deref(&self) -> &spec::SupportExceptionSpec {
        &self.0
    }
}

impl DerefMut for SupportExceptionSpec {
    fn deref_mut(&mut self) -> &mut spec::SupportExceptionSpec {
        &mut self.0
    }
}

impl From<spec::SupportExceptionSpec> for SupportExceptionSpec {
    fn from(s: spec::SupportExceptionSpec) -> Self {
        SupportExceptionSpec(s)
    }
}

/// The edge to the engine: `CompiledException::compile(&support_exception)`.
impl ExceptionResource for SupportException {
    fn exception_namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    fn exception_name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn created(&self) -> Option<Timestamp> {
        self.metadata.creation_timestamp.as_ref().map(|t| t.0)
    }

    fn exception_spec(&self) -> &spec::SupportExceptionSpec {
        &self.spec.0
    }
}

/// What the controller last observed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SupportExceptionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How many objects the exception currently turns a denial into a warning for.
    #[serde(default)]
    pub covered: i32,
    /// Up to 20 covered objects, as `namespace/name (Kind)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covered_objects: Vec<String>,
    /// `Ready`: False with the reason when the exception is invalid (a lifetime beyond the
    /// policy's cap, an untrusted namespace). `Expired`: True from the expiry date on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
