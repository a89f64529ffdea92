//! The offline commands: `supportgate check`, `supportgate webhook-config`, and the printing
//! ones (`crd`, `default-policy`, `default-policy --diff`).

pub mod check;
pub mod check_command;
pub mod default_policy;
pub mod fix;
pub mod fix_spans;
pub mod identity;
pub mod input;
pub mod junit;
pub mod pairs;
pub mod policy_file;
pub mod previous;
pub mod webhook_config;
pub mod yaml11;

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
