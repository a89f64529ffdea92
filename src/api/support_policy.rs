//! The `SupportPolicy` custom resource (`supportgate.dev/v1alpha1`, cluster-scoped).
//!
//! The spec is the engine's ([`crate::engine::spec::SupportPolicySpec`], wire format: strings as
//! users write them, with the schema and CEL rules of the CRD); this module wraps it in the
//! Kubernetes object and adds the status. [`crate::engine::policy`] turns a spec into a typed,
//! validated policy once, so the engine never parses on the hot path.

use std::ops::{Deref, DerefMut};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::engine::spec::{self, PolicyResource};
pub use crate::engine::spec::{
    KubernetesRange, MissingVersion, ProductRelease, SecondarySupport, TARGET_FIELDS_MESSAGE,
    TARGET_FIELDS_RULE, Target, TargetFields, UnidentifiedRefs, Upgrades,
};

pub const GROUP: &str = "supportgate.dev";
pub const VERSION: &str = "v1alpha1";

/// The spec of a [`SupportPolicy`]: the engine's [`spec::SupportPolicySpec`], unchanged on the
/// wire and in the schema (kube's derive needs a type of this crate to hang the resource on).
/// It dereferences to the engine's, so `policy.spec.product` reads as before.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "supportgate.dev",
    version = "v1alpha1",
    kind = "SupportPolicy",
    plural = "supportpolicies",
    shortname = "sp",
    category = "supportgate",
    doc = "A version support policy enforced by supportgate on the clusters and addons of this management cluster.",
    status = "SupportPolicyStatus",
    printcolumn = r#"{"name":"Product","type":"string","jsonPath":".spec.productName"}"#,
    printcolumn = r#"{"name":"Latest","type":"string","jsonPath":".status.latest"}"#,
    printcolumn = r#"{"name":"Supported","type":"string","jsonPath":".status.supported"}"#,
    printcolumn = r#"{"name":"Denied","type":"integer","jsonPath":".status.objects.denied"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(transparent)]
pub struct SupportPolicySpec(pub spec::SupportPolicySpec);

impl JsonSchema for SupportPolicySpec {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SupportPolicySpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        spec::SupportPolicySpec::json_schema(generator)
    }
}

impl Deref for SupportPolicySpec {
    type Target = spec::SupportPolicySpec;

    fn deref(&self) -> &spec::SupportPolicySpec {
        &self.0
    }
}

impl DerefMut for SupportPolicySpec {
    fn deref_mut(&mut self) -> &mut spec::SupportPolicySpec {
        &mut self.0
    }
}

impl From<spec::SupportPolicySpec> for SupportPolicySpec {
    fn from(s: spec::SupportPolicySpec) -> Self {
        SupportPolicySpec(s)
    }
}

/// The edge to the engine: `Policy::compile(&support_policy)`.
impl PolicyResource for SupportPolicy {
    fn policy_name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn policy_spec(&self) -> &spec::SupportPolicySpec {
        &self.spec.0
    }
}

/// What the controller last observed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SupportPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The newest released minor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<String>,
    /// The minors inside the support window, newest first, comma-separated (`1.8, 1.7, 1.6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported: Option<String>,
    /// Targeted objects by verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<ObjectCounts>,
    /// Up to 20 denied objects, as `namespace/name (Kind)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_objects: Vec<String>,
    /// `Ready`: False with a reason when the spec is invalid in a way the schema cannot catch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Counts of targeted objects by verdict.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCounts {
    pub allowed: i32,
    pub warned: i32,
    pub denied: i32,
}
