use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use jiff::civil::Date;

use supportgate::cli::check::{Report, parse_objects, read_input};
use supportgate::controller::ControllerConfig;
use supportgate::controller::leader::LeaseConfig;
use supportgate::engine::Context;
use supportgate::engine::policy::{DEFAULT_POLICY_YAML, Policy};
use supportgate::engine::version::Version;
use supportgate::runtime::run::RunConfig;
use supportgate::webhook::config::{Endpoint, WebhookSettings, validating_webhook_configuration};
use supportgate::webhook::selfcerts::SelfManagedConfig;

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
    /// Print the SupportPolicy CustomResourceDefinition.
    Crd,
    /// Print the embedded default SupportPolicy.
    DefaultPolicy,
    /// Print a ValidatingWebhookConfiguration for a webhook reached at a URL (outside the
    /// cluster), with rules for the kinds the given or the embedded policy targets.
    WebhookConfig(WebhookConfigArgs),
}

#[derive(Parser)]
struct CheckArgs {
    /// A SupportPolicy manifest; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    policy: Option<String>,
    /// The hosting cluster's Kubernetes version, for Addon objects (e.g. 1.20.13).
    #[arg(long, value_name = "V")]
    kubernetes_version: Option<String>,
    /// Evaluate as of this day (YYYY-MM-DD, UTC) instead of today: release and end-of-support
    /// dates move the window.
    #[arg(long, value_name = "DATE")]
    today: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Files to check (multi-document YAML or JSON), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
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
    /// The ValidatingWebhookConfiguration whose caBundle is kept in sync.
    #[arg(long, default_value = "supportgate")]
    webhook_config_name: String,
    /// The Service the API server calls; its DNS names go into the certificate.
    #[arg(long, default_value = "supportgate")]
    service_name: String,
    /// The namespace supportgate runs in (its Secret and Service live there).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Another DNS name or IP address for the self-managed certificate (repeatable).
    #[arg(long = "cert-extra-name")]
    cert_extra_names: Vec<String>,
    /// How often the self-managed certificate is checked for rotation, in seconds.
    #[arg(long, default_value_t = 3600)]
    cert_check_seconds: u64,
}

#[derive(Parser)]
struct WebhookConfigArgs {
    /// Name of the ValidatingWebhookConfiguration.
    #[arg(long, default_value = "supportgate")]
    name: String,
    /// Where the API server reaches the webhook, e.g. https://127.0.0.1:8443/validate.
    #[arg(long)]
    url: String,
    /// PEM CA bundle to trust; leave out when supportgate fills it (--self-managed-certs).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A SupportPolicy whose targets decide the rules; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    policy: Option<String>,
    #[arg(long, default_value = "Fail")]
    failure_policy: String,
    #[arg(long, default_value_t = 5)]
    timeout_seconds: i32,
    /// Namespaces never intercepted (repeatable).
    #[arg(long = "exclude-namespace", default_values_t = ["kube-system".to_string()])]
    exclude_namespaces: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("supportgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Crd => {
            print!(
                "{}",
                supportgate::api::crd::support_policy_crd_yaml().context("rendering the CRD")?
            );
            Ok(0)
        }
        Command::DefaultPolicy => {
            print!("{DEFAULT_POLICY_YAML}");
            Ok(0)
        }
        Command::Check(args) => check(args),
        Command::WebhookConfig(args) => {
            let policy = match &args.policy {
                None => Policy::embedded_default(),
                Some(path) => Policy::from_yaml(&read_input(path)?)
                    .with_context(|| format!("loading the policy from {path}"))?,
            };
            let ca = match &args.ca_file {
                Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
                None => Vec::new(),
            };
            let settings = WebhookSettings {
                name: args.name,
                endpoint: Endpoint::Url(args.url),
                ca_bundle_pem: ca,
                failure_policy: args.failure_policy,
                timeout_seconds: args.timeout_seconds,
                excluded_namespaces: args.exclude_namespaces,
            };
            let mut vwc = validating_webhook_configuration(&settings, policy.targets());
            if settings.ca_bundle_pem.is_empty() {
                for w in vwc.webhooks.iter_mut().flatten() {
                    w.client_config.ca_bundle = None;
                }
            }
            let mut doc = serde_json::to_value(&vwc).context("encoding")?;
            doc["apiVersion"] = "admissionregistration.k8s.io/v1".into();
            doc["kind"] = "ValidatingWebhookConfiguration".into();
            print!("{}", serde_norway::to_string(&doc).context("encoding")?);
            Ok(0)
        }
        Command::Run(args) => {
            init_tracing(args.log_format);
            let hosting = match &args.hosting_kubernetes_version {
                Some(v) => Some(
                    v.parse::<Version>()
                        .with_context(|| format!("--hosting-kubernetes-version {v}"))?,
                ),
                None => None,
            };
            let identity = args.identity.clone().unwrap_or_else(default_identity);
            let cfg = RunConfig {
                webhook_addr: args.webhook_addr,
                health_addr: args.health_addr,
                tls_cert: args.tls_cert_file,
                tls_key: args.tls_key_file,
                cert_reload_interval: Duration::from_secs(args.cert_reload_seconds.max(1)),
                max_body_bytes: args.max_body_bytes,
                shutdown_grace: Duration::from_secs(args.shutdown_grace_seconds),
                shutdown_drain: Duration::from_secs(args.shutdown_drain_seconds),
                hosting_kubernetes: hosting,
                controller: !args.no_controller,
                leader_election: (!args.no_leader_election).then(|| LeaseConfig {
                    namespace: args.leader_election_namespace.clone(),
                    name: args.leader_election_lease.clone(),
                    identity: identity.clone(),
                    lease_duration: Duration::from_secs(15),
                    renew_every: Duration::from_secs(5),
                }),
                self_managed_certs: args.self_managed_certs.then(|| SelfManagedConfig {
                    namespace: args.namespace.clone(),
                    secret_name: args.cert_secret_name.clone(),
                    webhook_config_name: args.webhook_config_name.clone(),
                    service_name: args.service_name.clone(),
                    extra_names: args.cert_extra_names.clone(),
                    validity_days: 365,
                    rotate_before_days: 30,
                    check_every: Duration::from_secs(args.cert_check_seconds.max(1)),
                }),
                controller_config: ControllerConfig {
                    field_manager: args.field_manager.clone(),
                    concurrency: args.reconcile_concurrency.max(1),
                    instance: identity.clone(),
                    object_metrics: args.object_metrics,
                    ..ControllerConfig::default()
                },
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(supportgate::runtime::run::run(cfg))?;
            Ok(0)
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!(
        "{}-{}",
        if host.is_empty() {
            "supportgate"
        } else {
            &host
        },
        std::process::id()
    )
}

/// Logs go to stderr; `RUST_LOG` overrides the default `info` level.
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let policy = match &args.policy {
        None => Policy::embedded_default(),
        Some(path) => {
            let text = read_input(path)?;
            Policy::from_yaml(&text).with_context(|| format!("loading the policy from {path}"))?
        }
    };
    let today = match &args.today {
        Some(d) => d
            .parse::<Date>()
            .with_context(|| format!("--today {d}: expected YYYY-MM-DD"))?,
        None => supportgate::runtime::clock::today_utc(),
    };
    let hosting = match &args.kubernetes_version {
        Some(v) => Some(
            v.parse::<Version>()
                .with_context(|| format!("--kubernetes-version {v}"))?,
        ),
        None => None,
    };
    let ctx = Context::new(today).with_hosting_kubernetes(hosting);

    let mut report = Report::default();
    for path in &args.paths {
        let text = match read_input(path) {
            Ok(t) => t,
            Err(e) => {
                report.errors.push(e.to_string());
                continue;
            }
        };
        let (objects, errors) = parse_objects(path, &text);
        report.errors.extend(errors.iter().map(ToString::to_string));
        for o in &objects {
            report.add(&policy, &ctx, o);
        }
    }
    match args.output {
        Output::Text => print!("{}", report.to_text()),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        ),
    }
    Ok(report.exit_code())
}
