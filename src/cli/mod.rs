//! The offline commands: `supportgate check`, `supportgate webhook-config`, and the printing
//! ones (`crd`, `default-policy`).

pub mod check;
pub mod check_command;
pub mod input;
pub mod junit;
pub mod previous;
pub mod webhook_config;
pub mod yaml11;

use anyhow::Context as _;

/// `supportgate crd`: prints the SupportPolicy CustomResourceDefinition.
pub fn print_crd() -> anyhow::Result<u8> {
    let yaml = crate::api::crd::support_policy_crd_yaml().context("rendering the CRD")?;
    print!("{yaml}");
    Ok(0)
}

/// `supportgate default-policy`: prints the embedded default SupportPolicy.
pub fn print_default_policy() -> anyhow::Result<u8> {
    print!("{}", crate::engine::policy::DEFAULT_POLICY_YAML);
    Ok(0)
}
