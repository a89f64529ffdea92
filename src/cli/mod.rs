//! The offline commands: `supportgate check`, `supportgate webhook-config`, and the printing
//! ones (`crd`, `default-policy`, `default-policy --diff`).

pub mod check;
pub mod check_command;
pub mod default_policy;
pub mod webhook_config;

use anyhow::Context as _;

/// `supportgate crd`: prints the SupportPolicy CustomResourceDefinition.
pub fn print_crd() -> anyhow::Result<u8> {
    let yaml = crate::api::crd::support_policy_crd_yaml().context("rendering the CRD")?;
    print!("{yaml}");
    Ok(0)
}
