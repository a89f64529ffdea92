//! Which object kinds carry versions, and where: the built-in presets for the real Konvoy,
//! Kommander, kubeaddons and KUDO shapes, and their compiled JSONPath form.

use serde_json::Value;
use strum::EnumCount;

pub use crate::query::{Entries, Located, Query};
use crate::spec::{Target, TargetFields};

/// Matches an addons entry by its repository however the URL spells it (case, `.git`, slashes,
/// a ref after `#` or in `?ref=`: [`crate::repository`]).
fn repo_filter(repo: &str) -> String {
    format!("?repository(@.configRepository, '{repo}')")
}

fn konvoy_addons_fields(prefix: &str, version_path: &str) -> TargetFields {
    TargetFields {
        product_version: Some(version_path.to_string()),
        kubernetes_version: Some(format!("{prefix}.kubernetes.version")),
        kba_ref: Some(format!(
            "{prefix}.addons[{}].configVersion",
            repo_filter("kubernetes-base-addons")
        )),
        kommander_ref: Some(format!(
            "{prefix}.addons[{}].configVersion",
            repo_filter("kubeaddons-kommander")
        )),
        enabled_addons: Some(format!(
            "{prefix}.addons[*].addonsList[?@.enabled == true].name"
        )),
        ..TargetFields::default()
    }
}

fn target(
    group: &str,
    versions: &[&str],
    kind: &str,
    resource: &str,
    namespaced: bool,
    fields: TargetFields,
) -> Target {
    Target {
        api_group: group.to_string(),
        versions: versions.iter().map(|v| v.to_string()).collect(),
        kind: kind.to_string(),
        resource: resource.to_string(),
        namespaced,
        fields,
    }
}

/// The presets used when a policy names no targets.
pub fn presets() -> Vec<Target> {
    let addon_fields = TargetFields {
        kba_ref: Some(
            "$.metadata.annotations['catalog.kubeaddons.mesosphere.io/origin-repository-version']"
                .into(),
        ),
        enabled_addons: Some("$.metadata.labels['kubeaddons.mesosphere.io/name']".into()),
        addon_min_kubernetes: Some("$.spec.kubernetes.minSupportedVersion".into()),
        addon_max_kubernetes: Some("$.spec.kubernetes.maxSupportedVersion".into()),
        ..TargetFields::default()
    };
    vec![
        target(
            "kommander.mesosphere.io",
            &["v1beta1"],
            "KonvoyCluster",
            "konvoyclusters",
            true,
            // Both halves name the Konvoy version; the first set one is judged, and the other
            // must agree (`konvoy-version-mismatch`).
            konvoy_addons_fields("$.spec.cluster", "$.spec['provisioner','cluster'].version"),
        ),
        target(
            "konvoy.mesosphere.io",
            &["v1beta1", "v1beta2"],
            "ClusterConfiguration",
            "clusterconfigurations",
            true,
            konvoy_addons_fields("$.spec", "$.spec.version"),
        ),
        target(
            "konvoy.mesosphere.io",
            &["v1beta1", "v1beta2"],
            "ClusterProvisioner",
            "clusterprovisioners",
            true,
            TargetFields {
                product_version: Some("$.spec.version".into()),
                ..TargetFields::default()
            },
        ),
        target(
            "kubeaddons.mesosphere.io",
            &["v1beta1", "v1beta2"],
            "Addon",
            "addons",
            true,
            addon_fields.clone(),
        ),
        target(
            "kubeaddons.mesosphere.io",
            &["v1beta1", "v1beta2"],
            "ClusterAddon",
            "clusteraddons",
            false,
            addon_fields,
        ),
        target(
            "kudo.dev",
            &["v1beta1"],
            "Instance",
            "instances",
            true,
            TargetFields {
                kudo_operator: Some("$.metadata.labels['kudo.dev/operator']".into()),
                ..TargetFields::default()
            },
        ),
    ]
}

/// Which field of a target a query reads; used in error messages and violations. Its string
/// (`IntoStaticStr`, [`FieldKind::spec_name`]) is the field's name in the policy spec
/// (`productVersion`); every field in order: [`FieldKind::ALL`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumCount,
    strum::EnumIter,
    strum::VariantArray,
)]
#[strum(serialize_all = "camelCase")]
pub enum FieldKind {
    ProductVersion,
    KubernetesVersion,
    KbaRef,
    KommanderRef,
    EnabledAddons,
    AddonMinKubernetes,
    AddonMaxKubernetes,
    KudoOperator,
}

impl FieldKind {
    pub const ALL: &'static [FieldKind] = <FieldKind as strum::VariantArray>::VARIANTS;

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn spec_name(self) -> &'static str {
        self.into()
    }

    /// The query text the policy spec gives this field, if any: the one place that knows which
    /// field of [`TargetFields`] each kind reads.
    fn text(self, f: &TargetFields) -> Option<&str> {
        match self {
            FieldKind::ProductVersion => f.product_version.as_deref(),
            FieldKind::KubernetesVersion => f.kubernetes_version.as_deref(),
            FieldKind::KbaRef => f.kba_ref.as_deref(),
            FieldKind::KommanderRef => f.kommander_ref.as_deref(),
            FieldKind::EnabledAddons => f.enabled_addons.as_deref(),
            FieldKind::AddonMinKubernetes => f.addon_min_kubernetes.as_deref(),
            FieldKind::AddonMaxKubernetes => f.addon_max_kubernetes.as_deref(),
            FieldKind::KudoOperator => f.kudo_operator.as_deref(),
        }
    }
}

/// A set of target fields, e.g. those that resolved in an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FieldMask(u8);

impl FieldMask {
    pub fn insert(&mut self, k: FieldKind) {
        self.0 |= k.bit();
    }

    pub fn contains(self, k: FieldKind) -> bool {
        self.0 & k.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = FieldKind> {
        FieldKind::ALL
            .iter()
            .copied()
            .filter(move |k| self.contains(*k))
    }
}

/// A target with its queries parsed.
#[derive(Debug, Clone)]
pub struct CompiledTarget {
    pub spec: Target,
    /// Each field's compiled query, by [`FieldKind`]: see [`CompiledTarget::path`].
    queries: [Option<Query>; FieldKind::COUNT],
    /// The addons entries the KBA and Kommander ref queries pick from, when they have the
    /// `<array>[?filter].<ref>` shape: what `ref-unidentified` looks at.
    pub kba_entries: Option<Entries>,
    pub kommander_entries: Option<Entries>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target {kind}.{group} field {field}: `{query}` is not an RFC 9535 JSONPath query: {reason}"
)]
pub struct TargetError {
    pub group: String,
    pub kind: String,
    pub field: &'static str,
    pub query: String,
    pub reason: String,
}

impl CompiledTarget {
    pub fn compile(spec: &Target) -> Result<Self, TargetError> {
        let mut queries: [Option<Query>; FieldKind::COUNT] = Default::default();
        for &kind in FieldKind::ALL {
            let Some(query) = kind.text(&spec.fields) else {
                continue;
            };
            let parsed = Query::parse(query).map_err(|e| TargetError {
                group: spec.api_group.clone(),
                kind: spec.kind.clone(),
                field: kind.spec_name(),
                query: query.to_string(),
                reason: e.to_string(),
            })?;
            queries[kind as usize] = Some(parsed);
        }
        let entries = |k: FieldKind| queries[k as usize].as_ref().and_then(Query::entries);
        Ok(CompiledTarget {
            spec: spec.clone(),
            kba_entries: entries(FieldKind::KbaRef),
            kommander_entries: entries(FieldKind::KommanderRef),
            queries,
        })
    }

    /// The compiled query of one field, if the target names it.
    pub fn path(&self, k: FieldKind) -> Option<&Query> {
        self.queries[k as usize].as_ref()
    }

    /// The query text of one field as the policy wrote it.
    pub fn query(&self, k: FieldKind) -> Option<&str> {
        k.text(&self.spec.fields)
    }

    /// The fields the target names.
    pub fn configured(&self) -> FieldMask {
        let mut m = FieldMask::default();
        for &k in FieldKind::ALL {
            if self.path(k).is_some() {
                m.insert(k);
            }
        }
        m
    }

    /// `KonvoyCluster.kommander.mesosphere.io`, for messages.
    pub fn display_name(&self) -> String {
        if self.spec.api_group.is_empty() {
            self.spec.kind.clone()
        } else {
            format!("{}.{}", self.spec.kind, self.spec.api_group)
        }
    }

    /// Whether this target applies to an object of `apiVersion`/`kind`.
    pub fn matches(&self, api_version: &str, kind: &str) -> bool {
        if kind != self.spec.kind {
            return false;
        }
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        group == self.spec.api_group
            && (self.spec.versions.is_empty() || self.spec.versions.iter().any(|v| v == version))
    }
}

/// Every node a query selects, with its location.
pub fn select<'v>(path: &Query, value: &'v Value) -> Vec<Located<'v>> {
    path.select(value)
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
