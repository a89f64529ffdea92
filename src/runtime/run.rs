//! `supportgate run`: the operator process. It keeps the cluster's SupportPolicies in memory,
//! serves the admission webhook over TLS, and serves health and metrics on a plain port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::api::SupportPolicy;
use crate::controller::leader::{self, LeaseConfig};
use crate::controller::{self, ControllerConfig};
use crate::engine::policy::Policy;
use crate::engine::policyset::PolicySet;
use crate::engine::version::Version;
use crate::runtime::health::serve_health;
use crate::runtime::metrics::Metrics;
use crate::runtime::state::Shared;
use crate::webhook::selfcerts::{self, SelfManagedConfig};
use crate::webhook::server::{bind, serve_webhook};
use crate::webhook::tls::{
    CertPaths, ReloadingResolver, certified_key, load_pair, server_config, watch as watch_certs,
};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub webhook_addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub cert_reload_interval: Duration,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// After SIGTERM, keep serving (with /readyz failing) this long before closing connections,
    /// so that API servers stop sending new reviews to this replica first.
    pub shutdown_drain: Duration,
    /// Overrides the hosting cluster's version read from `/version`.
    pub hosting_kubernetes: Option<Version>,
    /// Run the controller (status conditions, reports, events); the webhook always runs.
    pub controller: bool,
    /// `None`: this process always leads (a single replica).
    pub leader_election: Option<LeaseConfig>,
    pub controller_config: ControllerConfig,
    /// Issue and rotate the serving certificate in a Secret instead of reading files.
    pub self_managed_certs: Option<SelfManagedConfig>,
}

pub async fn run(cfg: RunConfig) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster config)")?;
    let hosting = match cfg.hosting_kubernetes.clone() {
        Some(v) => Some(v),
        None => hosting_version(&client).await,
    };
    tracing::info!(hosting_kubernetes = ?hosting.as_ref().map(ToString::to_string), "starting supportgate");

    let metrics = Arc::new(Metrics::new());
    let shared = Shared::new(hosting, metrics, cfg.max_body_bytes);

    let mut background = Vec::new();
    let resolver = match &cfg.self_managed_certs {
        Some(sm) => {
            let secret = selfcerts::ensure(&client, sm)
                .await
                .context("issuing the self-managed webhook certificate")?;
            let (cert, key) = secret_pair(&secret).context("reading the certificate Secret")?;
            let resolver = ReloadingResolver::new(certified_key(&cert, &key)?);
            background.push(tokio::spawn(selfcerts::maintain(
                client.clone(),
                sm.clone(),
                resolver.clone(),
            )));
            resolver
        }
        None => {
            let paths = CertPaths {
                cert: cfg.tls_cert.clone(),
                key: cfg.tls_key.clone(),
            };
            let (ck, fingerprint) = load_pair(&paths).context("loading the serving certificate")?;
            let resolver = ReloadingResolver::new(ck);
            background.push(tokio::spawn(watch_certs(
                paths,
                resolver.clone(),
                fingerprint,
                cfg.cert_reload_interval,
            )));
            resolver
        }
    };
    let served = resolver.clone();
    shared
        .metrics
        .observed
        .set_certificate_source(Box::new(move || served.not_after()));
    let acceptor = TlsAcceptor::from(server_config(resolver)?);
    shared.tls_loaded.store(true, Ordering::Release);

    let (stop_tx, stop_rx) = watch::channel(false);
    let webhook_listener = bind(cfg.webhook_addr).await?;
    let health_listener = bind(cfg.health_addr).await?;
    tracing::info!(webhook = %webhook_listener.local_addr()?, health = %health_listener.local_addr()?, "listening");

    let policy_task = tokio::spawn(watch_policies(client.clone(), shared.clone()));
    let health_task = tokio::spawn(serve_health(
        health_listener,
        shared.clone(),
        stop_rx.clone(),
    ));
    let webhook_task = tokio::spawn(serve_webhook(
        webhook_listener,
        acceptor,
        shared.clone(),
        stop_rx,
        cfg.shutdown_grace,
    ));

    background.push(policy_task);
    background.push(health_task);
    if cfg.controller {
        let (lead_tx, lead_rx) = watch::channel(false);
        match cfg.leader_election.clone() {
            Some(lease) => {
                background.push(tokio::spawn(leader::run(client.clone(), lease, lead_tx)))
            }
            None => {
                lead_tx.send_replace(true);
                // Keep the sender alive: a closed channel would stop the controller.
                background.push(tokio::spawn(async move {
                    lead_tx.closed().await;
                }));
            }
        }
        background.push(tokio::spawn(controller::run(
            client.clone(),
            shared.clone(),
            lead_rx,
            cfg.controller_config.clone(),
        )));
    }

    shutdown_signal().await;
    tracing::info!(drain = ?cfg.shutdown_drain, "shutting down: draining");
    shared.draining.store(true, Ordering::Release);
    tokio::time::sleep(cfg.shutdown_drain).await;
    let _ = stop_tx.send(true);
    let _ = webhook_task.await;
    for t in background {
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

fn secret_pair(secret: &k8s_openapi::api::core::v1::Secret) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let data = secret.data.as_ref().context("the Secret has no data")?;
    let get = |k: &str| {
        data.get(k)
            .map(|b| b.0.clone())
            .with_context(|| format!("the Secret has no {k}"))
    };
    Ok((get("tls.crt")?, get("tls.key")?))
}

async fn hosting_version(client: &Client) -> Option<Version> {
    match client.apiserver_version().await {
        Ok(info) => match info.git_version.parse::<Version>() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(git_version = %info.git_version, error = %e, "cannot read the hosting cluster's version; Addon ranges are not checked");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot read /version; Addon ranges are not checked");
            None
        }
    }
}

/// Keeps `shared.policies` equal to the cluster's valid SupportPolicies (or the embedded default
/// when there are none).
pub async fn watch_policies(client: Client, shared: Arc<Shared>) {
    let api: Api<SupportPolicy> = Api::all(client);
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::InitDone | Event::Apply(_) | Event::Delete(_)) => {
                shared.set_policies(compile_all(&reader));
                if !shared.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::info!(policies = reader.len(), "SupportPolicies synced");
                }
            }
            Ok(_) => {}
            Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                // No SupportPolicy CRD: the embedded default is the policy, and that is known.
                if !shared.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "the SupportPolicy CRD is not installed; enforcing the embedded default policy"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "watching SupportPolicies"),
        }
    }
}

/// Compiles every policy in the store; invalid ones are logged and left out.
pub fn compile_all(store: &Store<SupportPolicy>) -> PolicySet {
    let mut valid = Vec::new();
    for sp in store.state() {
        match Policy::compile(&sp) {
            Ok(p) => valid.push(Arc::new(p)),
            Err(e) => {
                tracing::warn!(policy = sp.metadata.name.as_deref().unwrap_or(""), error = %e, "ignoring an invalid SupportPolicy")
            }
        }
    }
    valid.sort_by(|a, b| a.name.cmp(&b.name));
    PolicySet::from_policies(valid)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
