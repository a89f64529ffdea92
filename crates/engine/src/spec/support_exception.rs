//! The `SupportException` spec (`supportgate.dev/v1alpha1`): a dated, reasoned exemption of
//! matching objects from some deny rules.
//!
//! Wire format only; [`crate::exceptions`] compiles a spec into typed values once. The schema
//! and CEL rules (rendered into the CRD by the main crate's `api`) reject what they can (no
//! expiry, unknown rule ids, no namespace scope); the rest (a date that does not exist, a
//! lifetime over the policy's cap) is reported in the status.

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use crate::rules::Rule;
use crate::selector::LabelSelector;

/// Exempts the objects it matches from the listed deny rules until it expires: their denials
/// become warnings naming the exception. Counts only in the namespaces supportgate trusts (its
/// release namespace by default).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportExceptionSpec {
    /// Why the exception is granted, shown in every message it produces (required), e.g. "DR
    /// cluster for ACME; upgrade booked for January".
    #[schemars(length(min = 1, max = 512))]
    pub reason: String,

    /// The day (`YYYY-MM-DD`, UTC) the exception stops applying: it covers objects until the
    /// end of the day before. At most the policy's `maxExceptionDays` after its creation.
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub expires: String,

    /// The ids of the rules it excepts, e.g. `konvoy-unsupported`. Only deny violations of
    /// these rules are turned into warnings; every other rule still applies.
    #[schemars(schema_with = "rule_ids_schema")]
    pub rules: Vec<String>,

    /// Which objects it covers: the namespaces they are in (required; `["*"]` for every
    /// namespace), narrowed by every other given field.
    #[serde(rename = "match")]
    pub match_: ExceptionMatch,

    /// Holds only while the object stays on these versions: a cluster that moves to another
    /// version loses the cover. Absent: any version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<ExceptionVersions>,
}

/// The objects an exception covers. Every given field must match.
///
/// `namespaces` is required: names and labels are chosen by whoever creates the object, so an
/// exception scoped by them alone would cover an object of that name in any tenant's namespace.
/// `namespaces` stays an `Option` here so that an exception stored before the requirement still
/// reads (and is reported invalid by the engine) instead of breaking the whole watch.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.namespaces)", "message": NAMESPACES_REQUIRED},
    {
        "rule": "!has(self.namespaces) || !('*' in self.namespaces) || size(self.namespaces) == 1",
        "message": WILDCARD_ALONE,
    },
]))]
pub struct ExceptionMatch {
    /// The namespaces of the objects it covers (required): namespace names, or `["*"]`
    /// spelled out for every namespace. A name or selector never reaches beyond these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "namespaces_schema")]
    pub namespaces: Option<Vec<String>>,
    /// The objects' names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub names: Option<Vec<String>>,
    /// The objects' kinds, e.g. `{apiGroup: kommander.mesosphere.io, kind: KonvoyCluster}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub kinds: Option<Vec<ExceptionKind>>,
    /// The objects' labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// An API group and kind.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionKind {
    /// API group, e.g. `kommander.mesosphere.io` (empty for the core group).
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub api_group: String,
    /// Kind, e.g. `KonvoyCluster`.
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
}

/// The versions an exception holds for, as `MAJOR.MINOR` lists.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExceptionVersions {
    /// Product (Konvoy) minors, e.g. `["1.5"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(regex(pattern = r"^v?[0-9]+\.[0-9]+$")))]
    pub konvoy: Vec<String>,
    /// Kubernetes minors, e.g. `["1.17"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50), inner(regex(pattern = r"^v?[0-9]+\.[0-9]+$")))]
    pub kubernetes: Vec<String>,
}

/// The message of the CEL rule requiring `match.namespaces`; the engine says the same.
pub const NAMESPACES_REQUIRED: &str = "match.namespaces is required: list the namespaces the exception applies to, or [\"*\"] for every namespace (a name or selector alone would match objects of that name or those labels in every namespace)";

/// The message of the CEL rule keeping the wildcard alone.
pub const WILDCARD_ALONE: &str = "match.namespaces: \"*\" (every namespace) must be the only entry";

/// The wildcard of `match.namespaces`: every namespace, only when spelled out.
pub const ALL_NAMESPACES: &str = "*";

/// `match.namespaces`: a non-empty set of namespace names (DNS labels) or the lone wildcard.
fn namespaces_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "x-kubernetes-list-type": "set",
        "items": {"type": "string", "maxLength": 63, "pattern": r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"},
    })
}

/// `rules`: a non-empty set of known rule ids, generated from [`Rule::ALL`] so that the schema
/// never lags behind the engine.
fn rule_ids_schema(_: &mut schemars::SchemaGenerator) -> Schema {
    let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 50,
        "x-kubernetes-list-type": "set",
        "items": {"type": "string", "enum": ids},
    })
}
