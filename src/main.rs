//! The `supportgate` command line: parses the arguments and hands them to the library
//! (`cli` for the offline commands, `runtime::run` for the operator process).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use supportgate::cli::check_command::{self, CheckArgs};
use supportgate::cli::webhook_config::{self, WebhookConfigArgs};
use supportgate::controller::ControllerConfig;
use supportgate::engine::version::Version;
use supportgate::runtime::leader::LeaseConfig;
use supportgate::runtime::logging::LogFormat;
use supportgate::runtime::run::{RunConfig, run_blocking};
use supportgate::webhook::scope::ScopeConfig;
use supportgate::webhook::selfcerts::SelfManagedConfig;

// mimalloc instead of glibc's malloc, for the process only (the library and its tests keep the
// system allocator): glibc's per-thread arenas kept freed memory resident after the controller's
// initial list and each mass flip, and freeing the decoded review was a sixth of a webhook
// review's instructions. Before and after are in docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Enforces a vendor's version support policy on Kubernetes clusters and addons.
#[derive(Parser)]
#[command(name = "supportgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate YAML or JSON manifests offline; exit 0 when nothing is denied, 1 when anything
    /// is, 2 on usage or input errors.
    Check(CheckArgs),
    /// Run the operator: the admission webhook (HTTPS) and health/metrics (plain HTTP).
    Run(Box<RunArgs>),
    /// Print the SupportPolicy and SupportException CustomResourceDefinitions.
    Crd {
        /// Print only this kind's CRD: SupportPolicy or SupportException.
        kind: Option<String>,
    },
    /// Print the embedded default SupportPolicy, or (--diff) what taking it would change.
    DefaultPolicy(supportgate::cli::default_policy::DefaultPolicyArgs),
    /// Print a ValidatingWebhookConfiguration for a webhook reached at a URL (outside the
    /// cluster), with rules for the kinds the given or the embedded policy targets.
    WebhookConfig(WebhookConfigArgs),
}

#[derive(Parser)]
struct RunArgs {
    /// Address of the HTTPS admission endpoint (POST /validate).
    #[arg(long, env = "SUPPORTGATE_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    webhook_addr: SocketAddr,
    /// Address of the plain HTTP endpoint for /healthz, /readyz and /metrics.
    #[arg(long, env = "SUPPORTGATE_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    health_addr: SocketAddr,
    /// PEM certificate chain for the webhook; reloaded when it changes on disk.
    #[arg(
        long,
        env = "SUPPORTGATE_TLS_CERT",
        default_value = "/etc/supportgate/tls/tls.crt"
    )]
    tls_cert_file: PathBuf,
    /// PEM private key for the webhook; reloaded when it changes on disk.
    #[arg(
        long,
        env = "SUPPORTGATE_TLS_KEY",
        default_value = "/etc/supportgate/tls/tls.key"
    )]
    tls_key_file: PathBuf,
    /// How often the certificate files are checked for rotation, in seconds.
    #[arg(long, default_value_t = 2)]
    cert_reload_seconds: u64,
    /// Largest AdmissionReview body accepted, in bytes (the API server caps objects at 3 MiB).
    #[arg(long, default_value_t = 3 * 1024 * 1024 + 64 * 1024)]
    max_body_bytes: usize,
    /// How long in-flight reviews may take to finish after SIGTERM, in seconds.
    #[arg(long, default_value_t = 20)]
    shutdown_grace_seconds: u64,
    /// After SIGTERM, keep serving with /readyz failing for this many seconds before closing
    /// connections (endpoint removal takes a moment to reach every API server).
    #[arg(long, default_value_t = 5)]
    shutdown_drain_seconds: u64,
    /// The hosting cluster's Kubernetes version, instead of asking the API server's /version.
    #[arg(long)]
    hosting_kubernetes_version: Option<String>,
    /// Log format.
    #[arg(long, env = "SUPPORTGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve the webhook only: no status conditions, reports or events.
    #[arg(long)]
    no_controller: bool,
    /// Run the controller without leader election (one replica only).
    #[arg(long)]
    no_leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "supportgate")]
    leader_election_lease: String,
    /// This replica's identity in the Lease and in events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Concurrent reconciles per watched kind.
    #[arg(long, default_value_t = 16)]
    reconcile_concurrency: u16,
    /// Field manager of the status writes.
    #[arg(long, default_value = "supportgate")]
    field_manager: String,
    /// Publish supportgate_object_support: one series per targeted object, with its name,
    /// verdict, rule and versions (off by default: one series per object).
    #[arg(long)]
    object_metrics: bool,
    /// Issue the webhook certificate into a Secret, serve it, keep the webhook configuration's
    /// caBundle in sync and rotate before expiry (no cert-manager needed).
    #[arg(long)]
    self_managed_certs: bool,
    /// The Secret that holds the self-managed CA and serving certificate.
    #[arg(long, default_value = "supportgate-tls")]
    cert_secret_name: String,
    /// The ValidatingWebhookConfiguration whose caBundle (self-managed certificates) and rules
    /// (--sync-webhook-rules) are kept in sync.
    #[arg(long, default_value = "supportgate")]
    webhook_config_name: String,
    /// Keep the webhook configuration's rules equal to the union of the targets of all valid
    /// SupportPolicies (only the leader writes them).
    #[arg(long, env = "SUPPORTGATE_SYNC_WEBHOOK_RULES")]
    sync_webhook_rules: bool,
    /// When the cluster holds no SupportPolicy at all at start, create `default` from the
    /// embedded policy (the one enforced meanwhile), to be seen and edited; the chart's
    /// policy.create. Never touched again: it is the user's from then on.
    #[arg(long, env = "SUPPORTGATE_CREATE_DEFAULT_POLICY")]
    create_default_policy: bool,
    /// The Service the API server calls; its DNS names go into the certificate.
    #[arg(long, default_value = "supportgate")]
    service_name: String,
    /// The namespace supportgate runs in (its Secret and Service live there).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Another namespace whose SupportExceptions count, besides --namespace (repeatable).
    /// Trust only namespaces that the owners of the clusters cannot write to.
    #[arg(long = "exception-namespace", value_name = "NAMESPACE")]
    exception_namespaces: Vec<String>,
    /// Test only: shift the clock the policy dates are compared with, in seconds.
    #[arg(long, default_value_t = 0, hide = true)]
    test_clock_offset_seconds: i64,
    /// Another DNS name or IP address for the self-managed certificate (repeatable).
    #[arg(long = "cert-extra-name")]
    cert_extra_names: Vec<String>,
    /// How often the self-managed certificate is checked for rotation, in seconds.
    #[arg(long, default_value_t = 3600)]
    cert_check_seconds: u64,
    /// Lifetime of a self-managed serving certificate, in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    cert_validity_days: i64,
    /// Rotate a self-managed certificate this many days before it expires (less than its
    /// lifetime, or every check would rotate it again).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(0..=3650))]
    cert_rotate_before_days: i64,
    /// Test only: `<task>:<file>` makes that supervised task panic once the file exists.
    #[arg(long, hide = true, value_name = "TASK:FILE")]
    fault_panic: Option<String>,
    #[command(flatten)]
    limits: supportgate::webhook::limits::LimitArgs,
}

impl RunArgs {
    fn config(self) -> anyhow::Result<RunConfig> {
        let hosting = match &self.hosting_kubernetes_version {
            Some(v) => Some(
                v.parse::<Version>()
                    .with_context(|| format!("--hosting-kubernetes-version {v}"))?,
            ),
            None => None,
        };
        if self.self_managed_certs && self.cert_rotate_before_days >= self.cert_validity_days {
            anyhow::bail!(
                "--cert-rotate-before-days ({}) must be less than --cert-validity-days ({}): \
                 a certificate would be rotated again on every check",
                self.cert_rotate_before_days,
                self.cert_validity_days
            );
        }
        let identity = self.identity.clone().unwrap_or_else(default_identity);
        Ok(RunConfig {
            webhook_addr: self.webhook_addr,
            health_addr: self.health_addr,
            tls_cert: self.tls_cert_file,
            tls_key: self.tls_key_file,
            cert_reload_interval: Duration::from_secs(self.cert_reload_seconds.max(1)),
            max_body_bytes: self.max_body_bytes,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            shutdown_drain: Duration::from_secs(self.shutdown_drain_seconds),
            hosting_kubernetes: hosting,
            controller: !self.no_controller,
            leader_election: (!self.no_leader_election).then(|| {
                LeaseConfig::new(
                    self.leader_election_namespace.clone(),
                    self.leader_election_lease.clone(),
                    identity.clone(),
                )
            }),
            self_managed_certs: self.self_managed_certs.then(|| SelfManagedConfig {
                namespace: self.namespace.clone(),
                secret_name: self.cert_secret_name.clone(),
                webhook_config_name: self.webhook_config_name.clone(),
                service_name: self.service_name.clone(),
                extra_names: self.cert_extra_names.clone(),
                validity_days: self.cert_validity_days,
                rotate_before_days: self.cert_rotate_before_days,
                check_every: Duration::from_secs(self.cert_check_seconds.max(1)),
            }),
            webhook_scope: self.sync_webhook_rules.then(|| ScopeConfig {
                webhook_config_name: self.webhook_config_name.clone(),
                resync: Duration::from_secs(60),
            }),
            create_default_policy: self.create_default_policy,
            fault_panic: self.fault_panic.clone(),
            webhook_limits: self.limits.limits(),
            exception_namespaces: std::iter::once(self.namespace.clone())
                .chain(self.exception_namespaces.iter().cloned())
                .collect(),
            test_clock_offset_seconds: self.test_clock_offset_seconds,
            controller_config: ControllerConfig {
                field_manager: self.field_manager.clone(),
                concurrency: self.reconcile_concurrency.max(1),
                instance: identity,
                object_metrics: self.object_metrics,
                ..ControllerConfig::default()
            },
        })
    }
}

/// The pod name in a cluster; elsewhere the host name and process id, unique per process.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "supportgate"
    } else {
        &host
    };
    format!("{host}-{}", std::process::id())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Crd { kind } => supportgate::cli::print_crd(kind.as_deref()),
        Command::DefaultPolicy(args) => {
            supportgate::cli::default_policy::run(&args, &mut std::io::stdout().lock())
                .map_err(Into::into)
        }
        Command::Check(args) => check_command::run(args),
        Command::WebhookConfig(args) => webhook_config::run(args),
        Command::Run(args) => {
            let log_format = args.log_format;
            args.config()
                .and_then(|cfg| run_blocking(cfg, log_format))
                .map(|()| 0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("supportgate: {e:#}");
            ExitCode::from(2)
        }
    }
}
