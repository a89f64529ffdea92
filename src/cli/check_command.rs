//! The arguments of `supportgate check`, wired to [`crate::cli::check::run`], which loads the
//! policies, reads every input and renders the report.

use crate::cli::check::CheckOptions;
use crate::engine::policy::Policy;

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A SupportPolicy manifest; repeat for several (any deny wins); the embedded default when
    /// absent.
    #[arg(long, value_name = "FILE")]
    pub policy: Vec<String>,
    /// The hosting cluster's Kubernetes version, for Addon objects (e.g. 1.20.13).
    #[arg(long, value_name = "V")]
    pub kubernetes_version: Option<String>,
    /// Evaluate as of this day (YYYY-MM-DD, UTC) instead of today: release and end-of-support
    /// dates move the window.
    #[arg(long, value_name = "DATE")]
    pub today: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Files to check (multi-document YAML or JSON), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Loads a policy file, or the embedded default.
pub fn load_policy(path: Option<&str>) -> anyhow::Result<Policy> {
    crate::cli::policy_file::load(path).map(|(p, _)| p)
}

/// Runs `check` and returns its exit code: 0 when nothing is denied, 1 when anything is, 2 when
/// a policy or an argument is invalid.
pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let opts = CheckOptions {
        policies: args.policy,
        kubernetes_version: args.kubernetes_version,
        today: args.today,
        json: matches!(args.output, Output::Json),
        paths: args.paths,
    };
    let (text, code) = crate::cli::check::run(&opts, crate::runtime::clock::today_utc())?;
    print!("{text}");
    Ok(code)
}
