//! The `ValidatingWebhookConfiguration` that routes the targeted kinds to supportgate, derived
//! from the policy's targets so that what is intercepted and what is evaluated cannot drift.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::ObjectMeta;

use crate::engine::targets::CompiledTarget;

/// Where the API server reaches the webhook.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `https://host:port/validate`, for a webhook outside the cluster (tests, `make run`).
    Url(String),
    /// A Service in the cluster.
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub name: String,
    pub endpoint: Endpoint,
    pub ca_bundle_pem: Vec<u8>,
    pub failure_policy: String,
    pub timeout_seconds: i32,
    /// Namespaces never intercepted (supportgate's own, kube-system): no admission deadlock.
    pub excluded_namespaces: Vec<String>,
}

pub fn validating_webhook_configuration<'a>(
    settings: &WebhookSettings,
    targets: impl IntoIterator<Item = &'a CompiledTarget>,
) -> ValidatingWebhookConfiguration {
    let client_config = match &settings.endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(url.clone()),
            ca_bundle: Some(ByteString(settings.ca_bundle_pem.clone())),
            service: None,
        },
        Endpoint::Service {
            namespace,
            name,
            port,
        } => WebhookClientConfig {
            url: None,
            ca_bundle: Some(ByteString(settings.ca_bundle_pem.clone())),
            service: Some(
                k8s_openapi::api::admissionregistration::v1::ServiceReference {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    path: Some("/validate".into()),
                    port: Some(*port),
                },
            ),
        },
    };
    let namespace_selector = (!settings.excluded_namespaces.is_empty()).then(|| LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "NotIn".into(),
            values: Some(settings.excluded_namespaces.clone()),
        }]),
        match_labels: None,
    });
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(settings.name.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "supportgate".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "versions.supportgate.dev".into(),
            admission_review_versions: vec!["v1".into()],
            client_config,
            failure_policy: Some(settings.failure_policy.clone()),
            match_policy: Some("Equivalent".into()),
            namespace_selector,
            rules: Some(rules_for(targets)),
            side_effects: "None".into(),
            timeout_seconds: Some(settings.timeout_seconds),
            ..ValidatingWebhook::default()
        }]),
    }
}

/// The configuration as a YAML manifest, for `supportgate webhook-config`. Without a CA bundle
/// the field is left out rather than empty, so that `--self-managed-certs` can fill it in.
pub fn render_yaml<'a>(
    settings: &WebhookSettings,
    targets: impl IntoIterator<Item = &'a CompiledTarget>,
) -> Result<String, RenderError> {
    let mut vwc = validating_webhook_configuration(settings, targets);
    if settings.ca_bundle_pem.is_empty() {
        for w in vwc.webhooks.iter_mut().flatten() {
            w.client_config.ca_bundle = None;
        }
    }
    let mut doc = serde_json::to_value(&vwc)?;
    doc["apiVersion"] = "admissionregistration.k8s.io/v1".into();
    doc["kind"] = "ValidatingWebhookConfiguration".into();
    Ok(serde_norway::to_string(&doc)?)
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("encoding the webhook configuration: {0}")]
    Json(#[from] serde_json::Error),
    #[error("encoding the webhook configuration: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Which versions of one resource are intercepted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Versions {
    All,
    Some(BTreeSet<String>),
}

/// One rule per (group, versions), CREATE and UPDATE only (DELETE is never blocked), no
/// subresources. The union of the targets: a resource targeted twice is intercepted in every
/// version either target names (all of them when one names none), and listed once. Groups,
/// versions and resources are sorted, so the same targets in any order give the same rules.
pub fn rules_for<'a>(
    targets: impl IntoIterator<Item = &'a CompiledTarget>,
) -> Vec<RuleWithOperations> {
    let mut per_resource: BTreeMap<(String, String), Versions> = BTreeMap::new();
    for t in targets.into_iter().filter(|t| routable(t)) {
        let key = (t.spec.api_group.clone(), t.spec.resource.clone());
        let entry = per_resource
            .entry(key)
            .or_insert_with(|| Versions::Some(BTreeSet::new()));
        match (entry, t.spec.versions.is_empty()) {
            (e, true) => *e = Versions::All,
            (Versions::Some(set), false) => set.extend(t.spec.versions.iter().cloned()),
            (Versions::All, false) => {}
        }
    }
    let mut by_group: BTreeMap<(String, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    for ((group, resource), versions) in per_resource {
        let versions = match versions {
            Versions::All => vec!["*".to_string()],
            Versions::Some(set) => set.into_iter().collect(),
        };
        by_group
            .entry((group, versions))
            .or_default()
            .insert(resource);
    }
    by_group
        .into_iter()
        .map(|((group, versions), resources)| RuleWithOperations {
            api_groups: Some(vec![group]),
            api_versions: Some(versions),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            resources: Some(resources.into_iter().collect()),
            scope: Some("*".into()),
        })
        .collect()
}

/// Whether a target names one resource: a wildcard or a subresource in a policy would send
/// far more than the policy can judge to a fail-closed webhook (every kind of a group, or of
/// the cluster), so such a target never widens the rules.
fn routable(t: &CompiledTarget) -> bool {
    let plain = |s: &str| !s.contains('*') && !s.contains('/');
    plain(&t.spec.api_group)
        && !t.spec.resource.is_empty()
        && plain(&t.spec.resource)
        && t.spec.versions.iter().all(|v| plain(v) && !v.is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::Target;
    use crate::engine::policyset::PolicySet;

    /// A target with no fields, for the webhook-rule tests here and in `webhook::scope`.
    pub(crate) fn target(group: &str, versions: &[&str], resource: &str) -> CompiledTarget {
        let spec = Target {
            api_group: group.into(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            kind: "K".into(),
            resource: resource.into(),
            namespaced: true,
            fields: Default::default(),
        };
        CompiledTarget::compile(&spec).expect("a target without fields compiles")
    }

    fn flat(rules: &[RuleWithOperations]) -> Vec<String> {
        rules
            .iter()
            .map(|r| {
                format!(
                    "{}/{}:{}",
                    r.api_groups.as_ref().unwrap().join(","),
                    r.api_versions.as_ref().unwrap().join(","),
                    r.resources.as_ref().unwrap().join(",")
                )
            })
            .collect()
    }

    #[test]
    fn rules_are_sorted_whatever_the_order_of_the_targets() {
        let ts = [
            target("b.io", &["v2", "v1"], "zs"),
            target("a.io", &["v1"], "ys"),
            target("b.io", &["v1", "v2"], "as"),
        ];
        let forward = rules_for(ts.iter());
        let backward = rules_for(ts.iter().rev());
        assert_eq!(forward, backward);
        assert_eq!(flat(&forward), ["a.io/v1:ys", "b.io/v1,v2:as,zs"]);
    }

    #[test]
    fn a_resource_targeted_twice_is_listed_once_with_the_union_of_versions() {
        let ts = [
            target("x.io", &["v1"], "things"),
            target("x.io", &["v2"], "things"),
            target("x.io", &["v1"], "things"),
            target("x.io", &["v1"], "others"),
        ];
        assert_eq!(
            flat(&rules_for(ts.iter())),
            ["x.io/v1:others", "x.io/v1,v2:things"]
        );
        // No versions named means every version, whichever target comes first.
        let all = [
            target("x.io", &[], "things"),
            target("x.io", &["v1"], "things"),
        ];
        assert_eq!(flat(&rules_for(all.iter())), ["x.io/*:things"]);
        assert_eq!(flat(&rules_for(all.iter().rev())), ["x.io/*:things"]);
        assert!(rules_for(std::iter::empty()).is_empty());
    }

    #[test]
    fn wildcards_and_subresources_never_widen_the_rules() {
        let ts = [
            target("*", &["v1"], "things"),
            target("x.io", &["v1"], "*"),
            target("x.io", &["*"], "things"),
            target("x.io", &["v1"], "things/status"),
            target("x.io", &["v1"], "things"),
        ];
        assert_eq!(flat(&rules_for(ts.iter())), ["x.io/v1:things"]);
    }

    #[test]
    fn the_union_of_two_policies_adds_the_new_kind_to_the_defaults() {
        let default = PolicySet::embedded_default();
        let extra = target("example.dev", &["v1"], "widgets");
        let base = rules_for(default.targets());
        let both = rules_for(default.targets().chain([&extra]));
        assert_eq!(both.len(), base.len() + 1);
        assert!(flat(&both).contains(&"example.dev/v1:widgets".to_string()));
        assert!(base.iter().all(|r| both.contains(r)));
        assert!(both.iter().all(|r| {
            r.operations.as_deref() == Some(&["CREATE".to_string(), "UPDATE".to_string()][..])
                && r.scope.as_deref() == Some("*")
        }));
    }

    #[test]
    fn rules_follow_the_targets() {
        let set = PolicySet::embedded_default();
        let rules = rules_for(set.targets());
        let flat: Vec<String> = rules
            .iter()
            .map(|r| {
                format!(
                    "{}/{}:{}",
                    r.api_groups.as_ref().unwrap()[0],
                    r.api_versions.as_ref().unwrap().join(","),
                    r.resources.as_ref().unwrap().join(",")
                )
            })
            .collect();
        assert_eq!(
            flat,
            [
                "kommander.mesosphere.io/v1beta1:konvoyclusters",
                "konvoy.mesosphere.io/v1beta1,v1beta2:clusterconfigurations,clusterprovisioners",
                "kubeaddons.mesosphere.io/v1beta1,v1beta2:addons,clusteraddons",
                "kudo.dev/v1beta1:instances",
            ]
        );
        assert!(
            rules.iter().all(|r| r.operations.as_deref()
                == Some(&["CREATE".to_string(), "UPDATE".to_string()][..]))
        );
    }

    #[test]
    fn rendered_yaml_names_the_kind_and_omits_an_empty_ca_bundle() {
        let set = PolicySet::embedded_default();
        let mut settings = WebhookSettings {
            name: "sg".into(),
            endpoint: Endpoint::Url("https://127.0.0.1:8443/validate".into()),
            ca_bundle_pem: Vec::new(),
            failure_policy: "Fail".into(),
            timeout_seconds: 5,
            excluded_namespaces: vec!["kube-system".into()],
        };
        let doc: serde_json::Value =
            serde_norway::from_str(&render_yaml(&settings, set.targets()).unwrap()).unwrap();
        assert_eq!(doc["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(doc["kind"], "ValidatingWebhookConfiguration");
        assert!(doc["webhooks"][0]["clientConfig"].get("caBundle").is_none());
        settings.ca_bundle_pem = b"PEM".to_vec();
        let doc: serde_json::Value =
            serde_norway::from_str(&render_yaml(&settings, set.targets()).unwrap()).unwrap();
        assert_eq!(doc["webhooks"][0]["clientConfig"]["caBundle"], "UEVN");
    }
}
