//! The `ValidatingWebhookConfiguration` that routes the targeted kinds to supportgate, derived
//! from the policy's targets so that what is intercepted and what is evaluated cannot drift.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
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

/// The rules for the targets: the union, sorted (see [`crate::webhook::scope::rules_for`]).
pub use crate::webhook::scope::rules_for;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policyset::PolicySet;

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
