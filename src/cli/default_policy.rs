//! `supportgate default-policy`: prints the embedded default policy, or with `--diff` what
//! taking it would change in a SupportPolicy (a file, or the cluster's `default`).
//!
//! Nothing here writes to a cluster: updating `default` is the user's decision
//! (`kubectl edit supportpolicy default`).

use std::io::Write;

use kube::{Api, Client};
use thiserror::Error;

use crate::api::SupportPolicy;
use crate::cli::input::{InputError, read_input};
use crate::engine::policy::DEFAULT_POLICY_YAML;
use crate::engine::vendor::{self, VENDOR_POLICY_NAME};

#[derive(clap::Args, Debug, Default)]
pub struct DefaultPolicyArgs {
    /// Instead of printing the embedded default, show how a SupportPolicy differs from it: a
    /// manifest FILE (`-`: standard input) or, without FILE, the `default` SupportPolicy of the
    /// cluster of the current kubeconfig. `-` lines are the policy's, `+` lines the embedded
    /// default's. Exit 0 when they are the same, 1 when they differ, 2 on errors.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub diff: Option<String>,
}

#[derive(Debug, Error)]
pub enum DefaultPolicyError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{source_name}: not a SupportPolicy: {error}")]
    Parse {
        source_name: String,
        error: serde_norway::Error,
    },
    #[error("reading supportpolicy/{VENDOR_POLICY_NAME} from the cluster: {0}")]
    Cluster(#[source] kube::Error),
    #[error("starting the Kubernetes client: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
}

/// Runs the command; the exit code is 0 (printed, or no difference) or 1 (a difference).
pub fn run(args: &DefaultPolicyArgs, out: &mut impl Write) -> Result<u8, DefaultPolicyError> {
    let Some(source) = &args.diff else {
        out.write_all(DEFAULT_POLICY_YAML.as_bytes())
            .map_err(DefaultPolicyError::Output)?;
        return Ok(0);
    };
    let (label, policy) = if source.is_empty() {
        (
            format!("supportpolicy/{VENDOR_POLICY_NAME} (cluster)"),
            from_cluster()?,
        )
    } else {
        let text = read_input(source)?;
        let policy = serde_norway::from_str::<SupportPolicy>(&text).map_err(|error| {
            DefaultPolicyError::Parse {
                source_name: source.clone(),
                error,
            }
        })?;
        (source.clone(), policy)
    };
    let text = report(&label, &policy);
    out.write_all(text.as_bytes())
        .map_err(DefaultPolicyError::Output)?;
    Ok(u8::from(
        !vendor::diff(&policy.spec, vendor::embedded_spec()).is_empty(),
    ))
}

/// The diff with its header and a closing sentence saying what it means.
pub fn report(label: &str, policy: &SupportPolicy) -> String {
    let d = vendor::diff(&policy.spec, vendor::embedded_spec());
    let ours = format!(
        "the embedded default of supportgate {}",
        env!("CARGO_PKG_VERSION")
    );
    if d.is_empty() {
        return format!("{label} is {ours}: nothing to take.\n");
    }
    let mut s = format!("--- {label}\n+++ {ours}\n{}", d.text());
    if d.missing.is_empty() {
        s.push_str("\nThe embedded default knows no release this policy lacks.\n");
    } else {
        s.push_str(&format!(
            "\nThe embedded default knows {}, which this policy lacks.\n",
            d.missing.join(", ")
        ));
    }
    s.push_str(
        "Nothing was changed. To take an entry, add it with `kubectl edit supportpolicy default`;\n\
         `-` entries are yours and stay unless you remove them.\n",
    );
    s
}

fn from_cluster() -> Result<SupportPolicy, DefaultPolicyError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DefaultPolicyError::Runtime)?;
    rt.block_on(async {
        let client = Client::try_default()
            .await
            .map_err(DefaultPolicyError::Cluster)?;
        Api::<SupportPolicy>::all(client)
            .get(VENDOR_POLICY_NAME)
            .await
            .map_err(DefaultPolicyError::Cluster)
    })
}

#[cfg(test)]
#[path = "default_policy_tests.rs"]
mod tests;
