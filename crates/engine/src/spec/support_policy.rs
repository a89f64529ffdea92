//! The `SupportPolicy` spec (`supportgate.dev/v1alpha1`, cluster-scoped).
//!
//! These types are the wire format: strings as users write them. [`crate::policy`] turns a spec
//! into a typed, validated policy once, so the engine never parses on the hot path. Their
//! schema, CEL rules included, is the CRD's (`api` in the main crate wraps them in the custom
//! resource).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::selector::LabelSelector;

/// A vendor's version support policy: which product releases exist, which of them are inside
/// the support window, which Kubernetes versions and paired components each supports, and which
/// objects in the cluster carry those versions.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportPolicySpec {
    /// Human name of the product whose releases are listed, used in messages (default `Konvoy`).
    #[serde(default = "default_product_name")]
    #[schemars(length(min = 1, max = 64))]
    pub product_name: String,

    /// Every release of the product the policy knows, in any order. A release that is known but
    /// outside the support window is reported as unsupported; a version that is not listed at
    /// all is reported as unknown.
    #[schemars(length(min = 1, max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["version"]))]
    pub product: Vec<ProductRelease>,

    /// How many of the newest released minors are supported: 3 means N-2 (latest 1.8 supports
    /// 1.8, 1.7 and 1.6). The oldest minor in the window draws a `konvoy-nearing-end` warning.
    #[serde(default = "default_support_window")]
    #[schemars(range(min = 1, max = 50))]
    pub support_window: i32,

    /// Warn (`konvoy-nearing-end`) this many days before a release's explicit `endOfSupport`.
    #[serde(default = "default_nearing_end_days")]
    #[schemars(range(min = 0, max = 3650))]
    pub nearing_end_days: i32,

    /// Marks production clusters by their labels; experimental components are denied on them and
    /// only warned about elsewhere. Default: `environment=production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_selector: Option<LabelSelector>,

    /// Components under D2iQ's secondary support. Their use is reported as a note, never a change
    /// of verdict.
    #[serde(default)]
    pub secondary_support: SecondarySupport,

    /// Which object kinds are checked and where their versions live. Empty: the built-in presets
    /// for Kommander KonvoyCluster, Konvoy ClusterConfiguration/ClusterProvisioner, kubeaddons
    /// Addon/ClusterAddon and KUDO Instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub targets: Vec<Target>,

    /// The longest a SupportException may last, counted from its creation: one whose
    /// `expires` lies further out is invalid and applies to nothing.
    #[serde(default = "default_max_exception_days")]
    #[schemars(range(min = 1, max = 3650))]
    pub max_exception_days: i32,

    /// Also record every verdict in a wgpolicyk8s.io PolicyReport, not only in the object's
    /// status condition.
    #[serde(default)]
    pub always_write_policy_reports: bool,

    /// What a targeted object that names no product version (or no Kubernetes version where its
    /// target says one lives) gets: the `version-missing` rule at this severity. `Warn` (the
    /// default) lets it in with a warning; fail-closed installs set `Deny`.
    #[serde(default, skip_serializing_if = "MissingVersion::is_default")]
    pub missing_version: MissingVersion,

    /// What an addons entry of a production cluster gets when the policy cannot identify its
    /// repository as Kubernetes Base Addons or Kommander, or cannot tell its ref (none, or a
    /// different one in the repository URL): the `ref-unidentified` rule at this severity. Its
    /// ref is checked by nothing, so `Warn` (the default) names it and `Deny` refuses it.
    #[serde(default, skip_serializing_if = "UnidentifiedRefs::is_default")]
    pub unidentified_refs: UnidentifiedRefs,

    /// Which version changes an UPDATE may make (`upgrade-skips-minor`, `downgrade`). Checked
    /// by the webhook on UPDATE and by `supportgate check --previous`; a CREATE has no old
    /// version to compare. Absent: one minor at a time, no downgrades.
    #[serde(default)]
    pub upgrades: Upgrades,
}

/// The upgrade path an UPDATE must follow. Konvoy documents upgrades from the previous minor
/// only (the 1.8 upgrade page covers "v1.7.x to v1.8.5"), and Kubernetes control planes upgrade
/// one minor at a time.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upgrades {
    /// How many minors the product (Konvoy) version, and the Kubernetes version, may move up in
    /// one UPDATE (default 1: 1.6 to 1.7, not 1.6 to 1.8). A larger move is denied as
    /// `upgrade-skips-minor`, naming the release to go through first.
    #[serde(default = "default_max_minor_step")]
    #[schemars(range(min = 1, max = 100))]
    pub max_minor_step: i32,
    /// Allow an UPDATE that lowers the product or the Kubernetes version, a patch included
    /// (default false: such a change is denied as `downgrade`).
    #[serde(default)]
    pub allow_downgrade: bool,
}

impl Default for Upgrades {
    fn default() -> Self {
        Upgrades {
            max_minor_step: default_max_minor_step(),
            allow_downgrade: false,
        }
    }
}

fn default_max_minor_step() -> i32 {
    1
}

/// The severity of `version-missing`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingVersion {
    #[default]
    Warn,
    Deny,
}

impl MissingVersion {
    fn is_default(&self) -> bool {
        *self == MissingVersion::Warn
    }
}

/// The severity of `ref-unidentified`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnidentifiedRefs {
    #[default]
    Warn,
    Deny,
}

impl UnidentifiedRefs {
    fn is_default(&self) -> bool {
        *self == UnidentifiedRefs::Warn
    }
}

fn default_product_name() -> String {
    "Konvoy".to_string()
}
fn default_support_window() -> i32 {
    3
}
fn default_max_exception_days() -> i32 {
    crate::exceptions::DEFAULT_MAX_EXCEPTION_DAYS
}
fn default_nearing_end_days() -> i32 {
    90
}

/// One `MAJOR.MINOR` release of the product.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// `format: date` makes both fields CEL timestamps, so the API server compares them as days.
#[schemars(extend("x-kubernetes-validations" = [{"rule": "!has(self.releaseDate) || !has(self.endOfSupport) || self.endOfSupport > self.releaseDate", "message": "endOfSupport must be after releaseDate"}]))]
pub struct ProductRelease {
    /// The release's `MAJOR.MINOR`, e.g. `1.8`. Every patch (1.8.0, 1.8.5) shares its support.
    #[schemars(regex(pattern = r"^v?[0-9]+\.[0-9]+$"), length(max = 32))]
    pub version: String,

    /// When the minor was released (`YYYY-MM-DD`). A release dated in the future does not move
    /// the window until that day. Absent: released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"), length(max = 10))]
    pub release_date: Option<String>,

    /// Overrides the window: the release is supported until this day (`YYYY-MM-DD`, exclusive),
    /// whether or not it is among the newest minors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"), length(max = 10))]
    pub end_of_support: Option<String>,

    /// The newest patch of this release known to the policy, e.g. `1.7.5`: the version an
    /// upgrade message names as the release to go through. Absent: messages say `1.7.x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$"),
        length(max = 64)
    )]
    pub latest_patch: Option<String>,

    /// The Kubernetes versions this release supports.
    pub kubernetes: KubernetesRange,

    /// The Kommander `MAJOR.MINOR` released in lock-step with this release, e.g. `1.4` for
    /// Konvoy 1.8. Any other Kommander minor is refused on clusters of this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^v?[0-9]+\.[0-9]+$"), length(max = 32))]
    pub kommander: Option<String>,

    /// Addons that are Experimental in this release: denied on production clusters, a warning
    /// elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub experimental_addons: Vec<String>,
}

/// A supported Kubernetes range. Bounds are `1.18`, `1.18.x` (every patch of the minor) or an
/// exact version such as `1.15.4`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{"rule": "int(self.min.replace('v', '').split('.')[0]) < int(self.max.replace('v', '').split('.')[0]) || (int(self.min.replace('v', '').split('.')[0]) == int(self.max.replace('v', '').split('.')[0]) && int(self.min.replace('v', '').split('.')[1]) <= int(self.max.replace('v', '').split('.')[1]))", "message": "kubernetes.min must not be above kubernetes.max"}]))]
pub struct KubernetesRange {
    /// Lowest supported Kubernetes version: `1.18.x`, `1.18` or `1.15.4`.
    #[schemars(
        regex(pattern = r"^v?[0-9]+\.[0-9]+(\.([0-9]+|x|X))?$"),
        length(max = 32)
    )]
    pub min: String,
    /// Highest supported Kubernetes version: `1.20.x`, `1.20` or `1.17.8`.
    #[schemars(
        regex(pattern = r"^v?[0-9]+\.[0-9]+(\.([0-9]+|x|X))?$"),
        length(max = 32)
    )]
    pub max: String,
    /// The version new clusters get, suggested in fix messages, e.g. `1.20.6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$"),
        length(max = 64)
    )]
    pub default: Option<String>,
}

/// Which components are under secondary support.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecondarySupport {
    /// All addons shipped with the platform are under secondary support (the policy's scope
    /// table): when true, enabled addons are noted.
    #[serde(default = "default_true")]
    pub addons: bool,
    /// KUDO operators whose base technology is under secondary support.
    #[serde(default = "default_kudo_operators")]
    #[schemars(length(max = 100))]
    pub kudo_operators: Vec<String>,
}

impl Default for SecondarySupport {
    fn default() -> Self {
        Self {
            addons: true,
            kudo_operators: default_kudo_operators(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_kudo_operators() -> Vec<String> {
    ["cassandra", "kafka", "spark"].map(String::from).to_vec()
}

/// An object kind the policy checks, and where each version lives in it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// The singular as `resource` wrote webhook rules for a resource that does not exist, and left the
// kind unguarded (issue 28). Kinds whose plural is their own name end in `s` (`Endpoints`).
#[schemars(extend("x-kubernetes-validations" = [{"rule": "self.resource != self.kind.lowerAscii() || self.kind.endsWith('s')", "message": "resource is the plural of the kind (konvoyclusters for KonvoyCluster), not the kind itself"}]))]
pub struct Target {
    /// API group, e.g. `kommander.mesosphere.io` (empty for the core group).
    #[schemars(length(max = 253))]
    pub api_group: String,
    /// API versions the paths apply to; empty means every version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Kind, e.g. `KonvoyCluster`: as the API server serves it (it is checked against API
    /// discovery; a policy whose kind is not served there is `Ready=False`).
    #[schemars(regex(pattern = r"^[A-Z][A-Za-z0-9]*$"), length(min = 1, max = 63))]
    pub kind: String,
    /// Plural resource name, for the webhook rules and the controller (`konvoyclusters`): the
    /// kind's plural as served (checked against API discovery, as `kind` is).
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub resource: String,
    /// Whether objects of the kind live in a namespace.
    #[serde(default = "default_true")]
    pub namespaced: bool,
    /// Where the versions live, as RFC 9535 JSONPath queries against the whole object.
    pub fields: TargetFields,
}

/// RFC 9535 JSONPath per field (e.g. `$.spec.provisioner.version`). A query that selects nothing
/// means the object does not set that field; the rules that need it are then not applied (and a
/// missing product or Kubernetes version draws `version-missing`). A target must name its
/// `productVersion`, or, for kinds that carry none (kubeaddons Addon, KUDO Instance), a field
/// its rules read on their own: a target that names nothing would check nothing.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
#[schemars(extend("x-kubernetes-validations" = [{"rule": TARGET_FIELDS_RULE, "message": TARGET_FIELDS_MESSAGE}]))]
pub struct TargetFields {
    /// The product (Konvoy) version, e.g. `v1.8.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub product_version: Option<String>,
    /// The cluster's Kubernetes version, e.g. `1.20.13`. Absent: the hosting cluster's version
    /// (for in-cluster objects such as Addons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub kubernetes_version: Option<String>,
    /// The Kubernetes Base Addons release tag, e.g. `stable-1.20-4.4.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub kba_ref: Option<String>,
    /// The Kommander release tag, e.g. `stable-1.20-1.4.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub kommander_ref: Option<String>,
    /// Names of the addons that are enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub enabled_addons: Option<String>,
    /// An addon's lowest supported Kubernetes version, checked against the hosting cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub addon_min_kubernetes: Option<String>,
    /// An addon's highest supported Kubernetes version, checked against the hosting cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub addon_max_kubernetes: Option<String>,
    /// A KUDO operator name, e.g. `kafka`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub kudo_operator: Option<String>,
}

/// The CEL rule behind "a target must check something"; the engine applies the same rule
/// ([`TargetFields::checks_something`]) to policies that never pass through an API server.
pub const TARGET_FIELDS_RULE: &str = "has(self.productVersion) || has(self.kbaRef) || has(self.enabledAddons) || has(self.addonMinKubernetes) || has(self.addonMaxKubernetes) || has(self.kudoOperator)";
pub const TARGET_FIELDS_MESSAGE: &str = "a target must name productVersion or, for kinds that carry none (kubeaddons Addon, KUDO Instance), a field its rules read on their own (kbaRef, enabledAddons, addonMinKubernetes, addonMaxKubernetes or kudoOperator); with none of them it checks nothing";

impl TargetFields {
    /// The engine's copy of [`TARGET_FIELDS_RULE`].
    pub fn checks_something(&self) -> bool {
        self.product_version.is_some()
            || self.kba_ref.is_some()
            || self.enabled_addons.is_some()
            || self.addon_min_kubernetes.is_some()
            || self.addon_max_kubernetes.is_some()
            || self.kudo_operator.is_some()
    }
}
