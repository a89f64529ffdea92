//! The offline commands: `supportgate check`, `supportgate webhook-config`, and the printing
//! ones (`crd`, `default-policy`).

pub mod check;
pub mod check_command;
pub mod policy_file;
pub mod webhook_config;

use anyhow::Context as _;

/// `supportgate crd [KIND]`: prints the CustomResourceDefinitions, or only the one of `KIND`
/// (`SupportPolicy`, `SupportException`), as `make crds` writes each to its own file.
pub fn print_crd(kind: Option<&str>) -> anyhow::Result<u8> {
    use crate::api::crd::{support_exception_crd_yaml, support_policy_crd_yaml};
    let yaml = match kind {
        None => format!(
            "{}---\n{}",
            support_policy_crd_yaml().context("rendering the SupportPolicy CRD")?,
            support_exception_crd_yaml().context("rendering the SupportException CRD")?
        ),
        Some("SupportPolicy") => support_policy_crd_yaml().context("rendering the CRD")?,
        Some("SupportException") => support_exception_crd_yaml().context("rendering the CRD")?,
        Some(other) => {
            anyhow::bail!("unknown kind {other:?}; expected SupportPolicy or SupportException")
        }
    };
    print!("{yaml}");
    Ok(0)
}

/// `supportgate default-policy`: prints the embedded default SupportPolicy.
pub fn print_default_policy() -> anyhow::Result<u8> {
    print!("{}", crate::engine::policy::DEFAULT_POLICY_YAML);
    Ok(0)
}
