//! Self-managed webhook certificates, for installs without cert-manager: supportgate keeps a CA
//! and a serving certificate in a Secret, serves it, and keeps the webhook configuration's
//! `caBundle` in sync, rotating the serving certificate before it expires.
//!
//! Every replica runs this. Writes carry the resourceVersion they read, so replicas that race
//! to create or rotate converge on one Secret; all of them then serve what it holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::civil::Date;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use thiserror::Error;

use crate::webhook::tls::{ReloadingResolver, generate_valid};

/// When the serving certificate's end date is recorded.
pub const NOT_AFTER_ANNOTATION: &str = "supportgate.dev/not-after";
const CA_PREVIOUS: &str = "ca-previous.crt";

#[derive(Debug, Clone)]
pub struct SelfManagedConfig {
    pub namespace: String,
    pub secret_name: String,
    pub webhook_config_name: String,
    pub service_name: String,
    /// Extra names in the certificate (e.g. 127.0.0.1 for a webhook reached on loopback).
    pub extra_names: Vec<String>,
    pub validity_days: i64,
    /// Rotate when fewer days than this are left.
    pub rotate_before_days: i64,
    pub check_every: Duration,
}

#[derive(Debug, Error)]
pub enum SelfCertError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the Secret {0} has no usable tls.crt/tls.key")]
    Incomplete(String),
    #[error("loading the certificate from the Secret: {0}")]
    Load(#[from] crate::webhook::tls::TlsError),
}

use crate::base::clock::today_utc as today;

fn names(cfg: &SelfManagedConfig) -> Vec<String> {
    let (s, ns) = (&cfg.service_name, &cfg.namespace);
    let mut v = vec![
        format!("{s}.{ns}.svc"),
        s.clone(),
        format!("{s}.{ns}"),
        format!("{s}.{ns}.svc.cluster.local"),
    ];
    v.extend(cfg.extra_names.iter().cloned());
    v
}

fn data(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret.data.as_ref()?.get(key).map(|b| b.0.clone())
}

/// Whether the Secret's serving certificate must be replaced (missing, or expiring soon).
pub fn needs_rotation(secret: &Secret, today: Date, rotate_before_days: i64) -> bool {
    let complete = ["tls.crt", "tls.key", "ca.crt"]
        .iter()
        .all(|k| data(secret, k).is_some_and(|d| !d.is_empty()));
    let not_after = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NOT_AFTER_ANNOTATION))
        .and_then(|d| d.parse::<Date>().ok());
    match not_after {
        Some(end) if complete => {
            today.saturating_add(jiff::Span::new().days(rotate_before_days)) >= end
        }
        _ => true,
    }
}

/// A fresh CA and serving certificate; the CA they replace stays trusted in the bundle until the
/// next rotation, so replicas still serving the old certificate keep working meanwhile.
fn fresh(cfg: &SelfManagedConfig, previous: Option<&Secret>) -> Result<Secret, SelfCertError> {
    let end = today().saturating_add(jiff::Span::new().days(cfg.validity_days));
    let owned = names(cfg);
    let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let g = generate_valid(&refs, &format!("supportgate-ca-{}", today()), Some(end))?;
    let mut d = BTreeMap::new();
    d.insert("tls.crt".to_string(), ByteString(g.cert_pem.into_bytes()));
    d.insert("tls.key".to_string(), ByteString(g.key_pem.into_bytes()));
    d.insert("ca.crt".to_string(), ByteString(g.ca_pem.into_bytes()));
    if let Some(old_ca) = previous.and_then(|p| data(p, "ca.crt")) {
        d.insert(CA_PREVIOUS.to_string(), ByteString(old_ca));
    }
    let mut metadata = previous
        .map(|p| p.metadata.clone())
        .unwrap_or_else(|| ObjectMeta {
            name: Some(cfg.secret_name.clone()),
            namespace: Some(cfg.namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "supportgate".to_string(),
            )])),
            ..ObjectMeta::default()
        });
    metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(NOT_AFTER_ANNOTATION.into(), end.to_string());
    metadata.managed_fields = None;
    Ok(Secret {
        metadata,
        data: Some(d),
        type_: Some("kubernetes.io/tls".into()),
        ..Secret::default()
    })
}

/// Reads the Secret, creating or rotating it when needed. Returns what it then holds.
pub async fn ensure(client: &Client, cfg: &SelfManagedConfig) -> Result<Secret, SelfCertError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    for _ in 0..5 {
        let current = api.get_opt(&cfg.secret_name).await?;
        if let Some(s) = &current
            && !needs_rotation(s, today(), cfg.rotate_before_days)
        {
            return Ok(s.clone());
        }
        let next = fresh(cfg, current.as_ref())?;
        let written = match current {
            None => api.create(&PostParams::default(), &next).await,
            Some(_) => {
                api.replace(&cfg.secret_name, &PostParams::default(), &next)
                    .await
            }
        };
        match written {
            Ok(s) => {
                tracing::info!(secret = %cfg.secret_name, "issued a new webhook serving certificate");
                return Ok(s);
            }
            // Another replica got there first: read what it wrote.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    api.get(&cfg.secret_name).await.map_err(Into::into)
}

fn bundle(secret: &Secret) -> Vec<u8> {
    let mut b = data(secret, "ca.crt").unwrap_or_default();
    if let Some(prev) = data(secret, CA_PREVIOUS) {
        if !b.ends_with(b"\n") {
            b.push(b'\n');
        }
        b.extend(prev);
    }
    b
}

/// Puts the Secret's pair into the resolver.
pub fn serve(
    secret: &Secret,
    resolver: &ReloadingResolver,
    name: &str,
) -> Result<(), SelfCertError> {
    let (Some(cert), Some(key)) = (data(secret, "tls.crt"), data(secret, "tls.key")) else {
        return Err(SelfCertError::Incomplete(name.to_string()));
    };
    let ck = crate::webhook::tls::certified_key(&cert, &key)?;
    resolver.set(ck);
    Ok(())
}

/// Sets the caBundle of every webhook in the configuration; a no-op when already in sync.
pub async fn sync_ca_bundle(
    client: &Client,
    cfg: &SelfManagedConfig,
    secret: &Secret,
) -> Result<bool, SelfCertError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let wanted = bundle(secret);
    for _ in 0..5 {
        let Some(mut vwc) = api.get_opt(&cfg.webhook_config_name).await? else {
            return Ok(false);
        };
        let mut changed = false;
        for w in vwc.webhooks.iter_mut().flatten() {
            if w.client_config.ca_bundle.as_ref().map(|b| &b.0) != Some(&wanted) {
                w.client_config.ca_bundle = Some(ByteString(wanted.clone()));
                changed = true;
            }
        }
        if !changed {
            return Ok(false);
        }
        match api
            .replace(&cfg.webhook_config_name, &PostParams::default(), &vwc)
            .await
        {
            Ok(_) => {
                tracing::info!(webhook = %cfg.webhook_config_name, "caBundle updated");
                return Ok(true);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Keeps serving what the Secret holds, the caBundle in sync, and rotates before expiry.
pub async fn maintain(client: Client, cfg: SelfManagedConfig, resolver: Arc<ReloadingResolver>) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &cfg.namespace);
    let wc = watcher::Config::default().fields(&format!("metadata.name={}", cfg.secret_name));
    let events = watcher::watcher(secrets, wc).default_backoff();
    futures::pin_mut!(events);
    let mut tick = tokio::time::interval(cfg.check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Apply(s) | Event::InitApply(s))) => {
                    if let Err(e) = serve(&s, &resolver, &cfg.secret_name) {
                        tracing::warn!(error = %e, "not serving the Secret's certificate");
                    }
                    if let Err(e) = sync_ca_bundle(&client, &cfg, &s).await {
                        tracing::warn!(error = %e, "caBundle not synced; retrying");
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watching the certificate Secret"),
                None => return,
            },
            _ = tick.tick() => match ensure(&client, &cfg).await {
                // The watch delivers a rotated Secret; syncing here also heals a caBundle that
                // was reset, e.g. by a `helm upgrade` that re-rendered the configuration.
                Ok(s) => {
                    if let Err(e) = sync_ca_bundle(&client, &cfg, &s).await {
                        tracing::warn!(error = %e, "caBundle not synced; retrying");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "checking the webhook certificate"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cfg() -> SelfManagedConfig {
        SelfManagedConfig {
            namespace: "sg".into(),
            secret_name: "sg-tls".into(),
            webhook_config_name: "sg".into(),
            service_name: "supportgate".into(),
            extra_names: vec!["127.0.0.1".into()],
            validity_days: 365,
            rotate_before_days: 30,
            check_every: Duration::from_secs(3600),
        }
    }

    #[test]
    fn fresh_secrets_are_complete_and_rotate_on_time() {
        let s = fresh(&cfg(), None).unwrap();
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
        let end: Date = s.metadata.annotations.as_ref().unwrap()[NOT_AFTER_ANNOTATION]
            .parse()
            .unwrap();
        assert!(!needs_rotation(&s, today(), 30));
        assert!(needs_rotation(
            &s,
            end.saturating_sub(jiff::Span::new().days(30)),
            30
        ));
        assert!(!needs_rotation(
            &s,
            end.saturating_sub(jiff::Span::new().days(31)),
            30
        ));
        assert!(needs_rotation(&Secret::default(), date(2026, 1, 1), 30));
        let resolver = ReloadingResolver::new(
            crate::webhook::tls::certified_key(
                &data(&s, "tls.crt").unwrap(),
                &data(&s, "tls.key").unwrap(),
            )
            .unwrap(),
        );
        serve(&s, &resolver, "sg-tls").unwrap();

        let rotated = fresh(&cfg(), Some(&s)).unwrap();
        let b = bundle(&rotated);
        let text = String::from_utf8(b).unwrap();
        assert_eq!(
            text.matches("BEGIN CERTIFICATE").count(),
            2,
            "new and previous CA both trusted"
        );
        assert!(text.contains(&String::from_utf8(data(&s, "ca.crt").unwrap()).unwrap()));
    }

    #[test]
    fn names_cover_the_service() {
        assert_eq!(
            names(&cfg()),
            [
                "supportgate.sg.svc",
                "supportgate",
                "supportgate.sg",
                "supportgate.sg.svc.cluster.local",
                "127.0.0.1"
            ]
        );
    }
}
