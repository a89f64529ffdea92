//! Self-managed certificates (the chart's default mode, no cert-manager): supportgate issues its
//! CA and serving certificate into a Secret, fills the webhook configuration's caBundle, and the
//! API server then calls it successfully; an expiring certificate is rotated while serving.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use support::admission::denied;
use support::operator::{CertFiles, Operator, post, wait_webhook_effective};
use support::{ControlPlane, eventually};
use supportgate::api::webhook_configuration::{
    Endpoint, WebhookSettings, validating_webhook_configuration,
};
use supportgate::engine::policyset::PolicySet;
use supportgate::webhook::selfcerts::NOT_AFTER_ANNOTATION;

const NS: &str = "selfcerts-e2e";

/// An unsupported cluster: refused through the webhook.
const DENIED: &str = "apiVersion: konvoy.mesosphere.io/v1beta2\nkind: ClusterProvisioner\nmetadata: {name: p}\nspec: {version: v1.4.6}\n";

#[tokio::test]
async fn issues_serves_syncs_and_rotates() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);
    let client = cp.client().await;

    let files = CertFiles::new(); // unused files: the flags point the server at the Secret instead
    let port = support::free_port();
    let vwcs = register_with_no_ca_bundle(&client, port).await;
    let mut op = Operator::start_on(
        cp,
        &cp.kubeconfig,
        &files,
        port,
        &[
            "--self-managed-certs",
            "--namespace",
            NS,
            "--cert-secret-name=sg-tls",
            "--webhook-config-name=supportgate-selfcerts",
            "--service-name=supportgate",
            "--cert-extra-name=127.0.0.1",
            "--cert-check-seconds=1",
            "--no-controller",
        ],
    );
    op.wait_ready().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let ca = the_secret_is_issued(&secrets).await;
    the_ca_bundle_is_filled(&vwcs, &ca).await;

    // The API server trusts it: an unsupported cluster is refused through the webhook.
    wait_webhook_effective(cp, NS, DENIED).await;
    denied(&cp.apply_in(NS, DENIED), "[konvoy-unsupported]");
    let (_, _, served_before) = post(port, &ca, "/validate", b"{}".to_vec())
        .await
        .expect("served with the issued CA");

    let rotated = an_expiring_certificate_is_rotated(&secrets, &ca).await;
    let served_after = eventually(
        Duration::from_secs(20),
        "the rotated certificate to be served",
        || async {
            post(port, &rotated, "/validate", b"{}".to_vec())
                .await
                .ok()
                .map(|(_, _, der)| der)
        },
    )
    .await;
    assert_ne!(served_before, served_after);
    the_bundle_trusts_both_cas(&vwcs, &rotated, &ca).await;
    denied(&cp.apply_in(NS, DENIED), "[konvoy-unsupported]");
    assert!(op.child.try_wait().unwrap().is_none(), "{}", op.logs());
    vwcs.delete("supportgate-selfcerts", &DeleteParams::default())
        .await
        .unwrap();
}

/// The configuration as the chart renders it, pointing at `port`: no caBundle yet.
async fn register_with_no_ca_bundle(
    client: &kube::Client,
    port: u16,
) -> Api<ValidatingWebhookConfiguration> {
    let settings = WebhookSettings {
        name: "supportgate-selfcerts".into(),
        endpoint: Endpoint::Url(format!("https://127.0.0.1:{port}/validate")),
        ca_bundle_pem: Vec::new(),
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        excluded_namespaces: vec![],
    };
    let mut vwc =
        validating_webhook_configuration(&settings, PolicySet::embedded_default().targets());
    for w in vwc.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = None;
    }
    let vwcs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = vwcs
        .delete("supportgate-selfcerts", &DeleteParams::default())
        .await;
    vwcs.create(&PostParams::default(), &vwc)
        .await
        .expect("create the webhook configuration");
    vwcs
}

/// The Secret is a TLS Secret with the CA, the certificate and the key; returns the CA.
async fn the_secret_is_issued(secrets: &Api<Secret>) -> String {
    let secret = secrets.get("sg-tls").await.expect("the Secret was issued");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = secret.data.clone().unwrap();
    let ca = String::from_utf8(data["ca.crt"].0.clone()).unwrap();
    for k in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(!data[k].0.is_empty(), "{k}");
    }
    ca
}

async fn the_ca_bundle_is_filled(vwcs: &Api<ValidatingWebhookConfiguration>, ca: &str) {
    let bundle = eventually(
        Duration::from_secs(20),
        "the caBundle to be filled",
        || async {
            let v = vwcs.get("supportgate-selfcerts").await.ok()?;
            v.webhooks?.first()?.client_config.ca_bundle.clone()
        },
    )
    .await;
    assert_eq!(String::from_utf8(bundle.0).unwrap(), ca);
}

/// Marks the certificate as expiring: the next check rotates it. Returns the new CA.
async fn an_expiring_certificate_is_rotated(secrets: &Api<Secret>, ca: &str) -> String {
    let soon = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap()
        .to_string();
    let patch = serde_json::json!({"metadata": {"annotations": BTreeMap::from([(NOT_AFTER_ANNOTATION, soon)])}});
    secrets
        .patch("sg-tls", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the certificate to be rotated",
        || async {
            let s = secrets.get("sg-tls").await.ok()?;
            let new_ca = String::from_utf8(s.data?.get("ca.crt")?.0.clone()).ok()?;
            (new_ca != ca).then_some(new_ca)
        },
    )
    .await
}

/// Meanwhile the bundle trusts both CAs.
async fn the_bundle_trusts_both_cas(
    vwcs: &Api<ValidatingWebhookConfiguration>,
    rotated: &str,
    ca: &str,
) {
    let bundle = eventually(
        Duration::from_secs(20),
        "the caBundle to carry both CAs",
        || async {
            let v = vwcs.get("supportgate-selfcerts").await.ok()?;
            let b =
                String::from_utf8(v.webhooks?.first()?.client_config.ca_bundle.clone()?.0).ok()?;
            (b.contains(rotated) && b.contains(ca)).then_some(b)
        },
    )
    .await;
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2);
}
