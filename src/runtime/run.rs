//! `supportgate run`: the operator process. It keeps the cluster's SupportPolicies in memory,
//! serves the admission webhook over TLS, serves health and metrics on a plain port, and (as
//! the leader) runs the controller. Every long-lived task is supervised: when one ends, the
//! process fails readiness and exits non-zero so that Kubernetes restarts it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::base::metrics::Metrics;
use crate::base::policies::watch_policies;
use crate::base::state::Shared;
use crate::controller::{self, ControllerConfig};
use crate::engine::version::Version;
use crate::runtime::health::serve_health;
use crate::runtime::leader::{self, LeaseConfig};
use crate::runtime::logging::{self, LogFormat};
use crate::runtime::supervisor::{Supervisor, TaskExit, task};
use crate::webhook::limits::ServerLimits;
use crate::webhook::scope::{ScopeConfig, keep_rules};
use crate::webhook::selfcerts::{self, SelfManagedConfig};
use crate::webhook::server::{bind, serve_webhook_with};
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
    /// Create the SupportPolicy `default` (the embedded policy) when the cluster has none.
    pub create_default_policy: bool,
    /// Keep the webhook configuration's rules equal to the policies' targets.
    pub webhook_scope: Option<ScopeConfig>,
    /// The namespaces whose SupportExceptions count (the release namespace and any others).
    pub exception_namespaces: Vec<String>,
    /// Test only: seconds added to the clock the policy dates are compared with.
    pub test_clock_offset_seconds: i64,
    /// Test only: `<task>:<file>` panics the task once the file exists.
    pub fault_panic: Option<String>,
    /// Timeouts, HTTP/2 caps and the connection cap of the webhook server.
    pub webhook_limits: ServerLimits,
}

/// Starts logging and the Tokio runtime, then runs the process until SIGTERM (`Ok`) or until a
/// supervised task ends (`Err`).
pub fn run_blocking(cfg: RunConfig, log_format: LogFormat) -> anyhow::Result<()> {
    logging::init(log_format);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(cfg))
}

pub async fn run(cfg: RunConfig) -> anyhow::Result<()> {
    let mut tasks = Supervisor::with_fault(cfg.fault_panic.as_deref())?;
    crate::base::clock::set_test_offset_seconds(cfg.test_clock_offset_seconds);
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API (KUBECONFIG or in-cluster config)")?;
    let hosting = match cfg.hosting_kubernetes.clone() {
        Some(v) => Some(v),
        None => hosting_version(&client).await,
    };
    tracing::info!(hosting_kubernetes = ?hosting.as_ref().map(ToString::to_string), "starting supportgate");
    let shared = Shared::new(hosting, Arc::new(Metrics::new()), cfg.max_body_bytes);

    let acceptor = start_certificates(&client, &cfg, &shared, &mut tasks).await?;
    shared.tls_loaded.store(true, Ordering::Release);
    let (stop_tx, stop_rx) = watch::channel(false);
    start_servers(&cfg, acceptor, &shared, stop_rx, &mut tasks).await?;
    tasks.spawn(
        task::POLICY_WATCHER,
        watch_policies(client.clone(), shared.clone(), cfg.create_default_policy),
    );
    tasks.spawn(
        task::EXCEPTION_WATCHER,
        crate::base::exceptions::watch_exceptions(
            client.clone(),
            shared.clone(),
            cfg.exception_namespaces.clone(),
        ),
    );
    // Who may write cluster-wide state: the leader, or every replica without an election.
    let leading = if cfg.controller {
        start_controller(&client, &cfg, &shared, &mut tasks)
    } else {
        watch::channel(true).1
    };
    if let Some(scope) = cfg.webhook_scope.clone() {
        let keep = keep_rules(client.clone(), shared.clone(), scope, leading);
        tasks.spawn(task::WEBHOOK_SCOPE, keep);
    }

    let failure = tokio::select! {
        () = shutdown_signal() => None,
        exit = tasks.first_exit() => Some(exit),
    };
    stop(&cfg, &shared, tasks, stop_tx, failure).await
}

/// Loads (or issues) the serving certificate and starts the task that keeps it current.
async fn start_certificates(
    client: &Client,
    cfg: &RunConfig,
    shared: &Shared,
    tasks: &mut Supervisor,
) -> anyhow::Result<TlsAcceptor> {
    let resolver = match &cfg.self_managed_certs {
        Some(sm) => {
            let secret = selfcerts::ensure(client, sm)
                .await
                .context("issuing the self-managed webhook certificate")?;
            let (cert, key) = secret_pair(&secret).context("reading the certificate Secret")?;
            let resolver = ReloadingResolver::new(certified_key(&cert, &key)?);
            let maintain = selfcerts::maintain(client.clone(), sm.clone(), resolver.clone());
            tasks.spawn(task::CERTIFICATES, maintain);
            resolver
        }
        None => {
            let paths = CertPaths {
                cert: cfg.tls_cert.clone(),
                key: cfg.tls_key.clone(),
            };
            let (ck, fingerprint) = load_pair(&paths).context("loading the serving certificate")?;
            let resolver = ReloadingResolver::new(ck);
            let every = cfg.cert_reload_interval;
            let reload = watch_certs(paths, resolver.clone(), fingerprint, every);
            tasks.spawn(task::CERTIFICATES, reload);
            resolver
        }
    };
    let served = resolver.clone();
    shared
        .metrics
        .observed
        .set_certificate_source(Box::new(move || served.not_after()));
    Ok(TlsAcceptor::from(server_config(resolver)?))
}

/// Binds both ports (failing the start when either is taken) and serves them.
async fn start_servers(
    cfg: &RunConfig,
    acceptor: TlsAcceptor,
    shared: &Arc<Shared>,
    stop: watch::Receiver<bool>,
    tasks: &mut Supervisor,
) -> anyhow::Result<()> {
    let webhook_listener = bind(cfg.webhook_addr).await?;
    let health_listener = bind(cfg.health_addr).await?;
    tracing::info!(webhook = %webhook_listener.local_addr()?, health = %health_listener.local_addr()?, "listening");
    tasks.spawn(
        task::HEALTH_SERVER,
        serve_health(health_listener, shared.clone(), stop.clone()),
    );
    tasks.spawn(
        task::WEBHOOK_SERVER,
        serve_webhook_with(
            webhook_listener,
            acceptor,
            shared.clone(),
            stop,
            cfg.shutdown_grace,
            cfg.webhook_limits.clone(),
        ),
    );
    Ok(())
}

/// Starts the controller, behind leader election unless this is the only replica. Returns
/// whether this replica leads.
fn start_controller(
    client: &Client,
    cfg: &RunConfig,
    shared: &Arc<Shared>,
    tasks: &mut Supervisor,
) -> watch::Receiver<bool> {
    let (lead_tx, lead_rx) = watch::channel(false);
    // The controller stops when the sender goes away; without an election it lives in the
    // controller's own task, so it goes only with it.
    let keep_leading = match cfg.leader_election.clone() {
        Some(lease) => {
            let election = leader::run(client.clone(), lease, lead_tx);
            tasks.spawn(task::LEADER_ELECTION, election);
            None
        }
        None => {
            lead_tx.send_replace(true);
            Some(lead_tx)
        }
    };
    let run = controller::run(
        client.clone(),
        shared.clone(),
        lead_rx.clone(),
        cfg.controller_config.clone(),
    );
    tasks.spawn(task::CONTROLLER, async move {
        let _keep_leading = keep_leading;
        run.await;
    });
    lead_rx
}

/// Drains, stops the servers and every task. After a task failure, readiness fails at once and
/// the failure is returned so that the process exits non-zero.
async fn stop(
    cfg: &RunConfig,
    shared: &Shared,
    mut tasks: Supervisor,
    stop_tx: watch::Sender<bool>,
    failure: Option<TaskExit>,
) -> anyhow::Result<()> {
    match &failure {
        None => tracing::info!(drain = ?cfg.shutdown_drain, "shutting down: draining"),
        Some(exit) => {
            shared.fail(exit.to_string());
            tracing::error!(error = %exit, still_running = ?tasks.running(), drain = ?cfg.shutdown_drain, "a supervised task ended; shutting down so that the process is restarted");
        }
    }
    shared.draining.store(true, Ordering::Release);
    tokio::time::sleep(cfg.shutdown_drain).await;
    let _ = stop_tx.send(true);
    let limit = cfg.shutdown_grace + Duration::from_secs(1);
    if !tasks.wait_for(task::WEBHOOK_SERVER, limit).await {
        tracing::warn!("the webhook server did not stop in time");
    }
    tasks.shutdown().await;
    // Aborting the controller's task aborts what it started; wait until all of it is gone.
    shared.controller_tasks.close();
    match tokio::time::timeout(Duration::from_secs(5), shared.controller_tasks.wait()).await {
        Ok(()) => tracing::debug!("controller tasks stopped"),
        Err(_) => tracing::warn!(
            left = shared.controller_tasks.len(),
            "controller tasks did not stop within 5 s"
        ),
    }
    match failure {
        None => {
            tracing::info!("stopped");
            Ok(())
        }
        Some(exit) => Err(exit.into()),
    }
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
