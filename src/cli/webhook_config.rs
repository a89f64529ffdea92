//! The body of `supportgate webhook-config`: prints a ValidatingWebhookConfiguration for a
//! webhook reached at a URL, with rules for the kinds the policy targets.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::api::webhook_configuration::{Endpoint, WebhookSettings, render_yaml};
use crate::cli::check_command::load_policy;

#[derive(Debug, clap::Args)]
pub struct WebhookConfigArgs {
    /// Name of the ValidatingWebhookConfiguration.
    #[arg(long, default_value = "supportgate")]
    pub name: String,
    /// Where the API server reaches the webhook, e.g. https://127.0.0.1:8443/validate.
    #[arg(long)]
    pub url: String,
    /// PEM CA bundle to trust; leave out when supportgate fills it (--self-managed-certs).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A SupportPolicy whose targets decide the rules; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<String>,
    #[arg(long, default_value = "Fail")]
    pub failure_policy: String,
    #[arg(long, default_value_t = 5)]
    pub timeout_seconds: i32,
    /// Namespaces never intercepted (repeatable).
    #[arg(long = "exclude-namespace", default_values_t = ["kube-system".to_string()])]
    pub exclude_namespaces: Vec<String>,
}

pub fn run(args: WebhookConfigArgs) -> anyhow::Result<u8> {
    let policy = load_policy(args.policy.as_deref())?;
    let ca_bundle_pem = match &args.ca_file {
        Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        None => Vec::new(),
    };
    let settings = WebhookSettings {
        name: args.name,
        endpoint: Endpoint::Url(args.url),
        ca_bundle_pem,
        failure_policy: args.failure_policy,
        timeout_seconds: args.timeout_seconds,
        excluded_namespaces: args.exclude_namespaces,
    };
    print!("{}", render_yaml(&settings, policy.targets())?);
    Ok(0)
}
