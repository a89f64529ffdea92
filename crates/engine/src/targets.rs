//! Which object kinds carry versions, and where: the built-in presets for the real Konvoy,
//! Kommander, kubeaddons and KUDO shapes, and their compiled JSONPath form.

use serde_json::Value;

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

/// Which field of a target a query reads; used in error messages and violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub const ALL: [FieldKind; 8] = [
        FieldKind::ProductVersion,
        FieldKind::KubernetesVersion,
        FieldKind::KbaRef,
        FieldKind::KommanderRef,
        FieldKind::EnabledAddons,
        FieldKind::AddonMinKubernetes,
        FieldKind::AddonMaxKubernetes,
        FieldKind::KudoOperator,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn spec_name(self) -> &'static str {
        match self {
            FieldKind::ProductVersion => "productVersion",
            FieldKind::KubernetesVersion => "kubernetesVersion",
            FieldKind::KbaRef => "kbaRef",
            FieldKind::KommanderRef => "kommanderRef",
            FieldKind::EnabledAddons => "enabledAddons",
            FieldKind::AddonMinKubernetes => "addonMinKubernetes",
            FieldKind::AddonMaxKubernetes => "addonMaxKubernetes",
            FieldKind::KudoOperator => "kudoOperator",
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
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

/// A target with its queries parsed.
#[derive(Debug, Clone)]
pub struct CompiledTarget {
    pub spec: Target,
    pub product_version: Option<Query>,
    pub kubernetes_version: Option<Query>,
    pub kba_ref: Option<Query>,
    pub kommander_ref: Option<Query>,
    pub enabled_addons: Option<Query>,
    pub addon_min_kubernetes: Option<Query>,
    pub addon_max_kubernetes: Option<Query>,
    pub kudo_operator: Option<Query>,
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
        let parse = |kind: FieldKind, q: &Option<String>| -> Result<Option<Query>, TargetError> {
            q.as_deref()
                .map(|query| {
                    Query::parse(query).map_err(|e| TargetError {
                        group: spec.api_group.clone(),
                        kind: spec.kind.clone(),
                        field: kind.spec_name(),
                        query: query.to_string(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        };
        let f = &spec.fields;
        let kba_ref = parse(FieldKind::KbaRef, &f.kba_ref)?;
        let kommander_ref = parse(FieldKind::KommanderRef, &f.kommander_ref)?;
        Ok(CompiledTarget {
            spec: spec.clone(),
            product_version: parse(FieldKind::ProductVersion, &f.product_version)?,
            kubernetes_version: parse(FieldKind::KubernetesVersion, &f.kubernetes_version)?,
            kba_entries: kba_ref.as_ref().and_then(Query::entries),
            kommander_entries: kommander_ref.as_ref().and_then(Query::entries),
            kba_ref,
            kommander_ref,
            enabled_addons: parse(FieldKind::EnabledAddons, &f.enabled_addons)?,
            addon_min_kubernetes: parse(FieldKind::AddonMinKubernetes, &f.addon_min_kubernetes)?,
            addon_max_kubernetes: parse(FieldKind::AddonMaxKubernetes, &f.addon_max_kubernetes)?,
            kudo_operator: parse(FieldKind::KudoOperator, &f.kudo_operator)?,
        })
    }

    /// The compiled query of one field, if the target names it.
    pub fn path(&self, k: FieldKind) -> Option<&Query> {
        match k {
            FieldKind::ProductVersion => self.product_version.as_ref(),
            FieldKind::KubernetesVersion => self.kubernetes_version.as_ref(),
            FieldKind::KbaRef => self.kba_ref.as_ref(),
            FieldKind::KommanderRef => self.kommander_ref.as_ref(),
            FieldKind::EnabledAddons => self.enabled_addons.as_ref(),
            FieldKind::AddonMinKubernetes => self.addon_min_kubernetes.as_ref(),
            FieldKind::AddonMaxKubernetes => self.addon_max_kubernetes.as_ref(),
            FieldKind::KudoOperator => self.kudo_operator.as_ref(),
        }
    }

    /// The query text of one field as the policy wrote it.
    pub fn query(&self, k: FieldKind) -> Option<&str> {
        let f = &self.spec.fields;
        match k {
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

    /// The fields the target names.
    pub fn configured(&self) -> FieldMask {
        let mut m = FieldMask::default();
        for k in FieldKind::ALL {
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
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_preset_compiles() {
        for t in presets() {
            CompiledTarget::compile(&t).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn matching_is_by_group_version_and_kind() {
        let ts: Vec<CompiledTarget> = presets()
            .iter()
            .map(|t| CompiledTarget::compile(t).unwrap())
            .collect();
        let find = |av: &str, k: &str| {
            ts.iter()
                .find(|t| t.matches(av, k))
                .map(|t| t.spec.kind.clone())
        };
        assert_eq!(
            find("kommander.mesosphere.io/v1beta1", "KonvoyCluster").as_deref(),
            Some("KonvoyCluster")
        );
        assert_eq!(
            find("kommander.mesosphere.io/v1beta2", "KonvoyCluster"),
            None
        );
        assert_eq!(
            find("konvoy.mesosphere.io/v1beta2", "ClusterConfiguration").as_deref(),
            Some("ClusterConfiguration")
        );
        assert_eq!(
            find("konvoy.mesosphere.io/v1alpha1", "ClusterConfiguration"),
            None
        );
        assert_eq!(find("v1", "ConfigMap"), None);
        assert_eq!(
            find("kudo.dev/v1beta1", "Instance").as_deref(),
            Some("Instance")
        );
    }

    #[test]
    fn kba_filter_picks_the_right_addons_entry() {
        let t = CompiledTarget::compile(&presets()[1]).unwrap();
        let obj = json!({"spec": {"addons": [
            {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander", "configVersion": "stable-1.20-1.4.4"},
            {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons.git", "configVersion": "stable-1.20-4.4.0",
             "addonsList": [{"name": "istio", "enabled": false}, {"name": "traefik", "enabled": true}]},
        ]}});
        let kba = select(t.kba_ref.as_ref().unwrap(), &obj);
        assert_eq!(kba.len(), 1);
        assert_eq!(kba[0].field(), "spec.addons[1].configVersion");
        assert_eq!(kba[0].pointer(), "/spec/addons/1/configVersion");
        assert_eq!(kba[0].value, &json!("stable-1.20-4.4.0"));
        let kommander = select(t.kommander_ref.as_ref().unwrap(), &obj);
        assert_eq!(kommander[0].value, &json!("stable-1.20-1.4.4"));
        let addons = select(t.enabled_addons.as_ref().unwrap(), &obj);
        assert_eq!(addons.len(), 1);
        assert_eq!(addons[0].value, &json!("traefik"));
    }

    #[test]
    fn bad_queries_are_reported_with_their_field() {
        let mut t = presets()[0].clone();
        t.fields.kba_ref = Some("$.spec[".into());
        let e = CompiledTarget::compile(&t).unwrap_err();
        assert_eq!(e.field, "kbaRef");
        assert!(e.to_string().contains("KonvoyCluster"));
    }

    #[test]
    fn odd_keys_render_bracketed() {
        let t = CompiledTarget::compile(&presets()[3]).unwrap();
        let obj = json!({"metadata": {"annotations": {"catalog.kubeaddons.mesosphere.io/origin-repository-version": "stable-1.20-4.4.0"}}});
        let got = select(t.kba_ref.as_ref().unwrap(), &obj);
        assert_eq!(
            got[0].field(),
            "metadata.annotations['catalog.kubeaddons.mesosphere.io/origin-repository-version']"
        );
        assert_eq!(
            got[0].pointer(),
            "/metadata/annotations/catalog.kubeaddons.mesosphere.io~1origin-repository-version"
        );
        assert_eq!(obj.pointer(&got[0].pointer()), Some(got[0].value));
    }
}
