//! The arguments of `supportgate check`, wired to [`crate::cli::check::run`], which loads the
//! policies, reads every input and renders the report.

use crate::cli::check::{CheckOptions, ReportFormat};
use crate::cli::fix::FixMode;
use crate::engine::policy::Policy;

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    /// JUnit XML for CI test reports: one testcase per object, a failure per denial.
    Junit,
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
    /// The previous revision of the same manifests (a file or directory; repeatable): matched
    /// objects are judged as UPDATEs with the webhook's ratcheting, the rest as CREATEs.
    #[arg(long, value_name = "PATH")]
    pub previous: Vec<String>,
    /// Apply the one suggested fix: rewrite the files in place (only the version scalars; then
    /// report on the rewritten files), or with `--fix=diff` print it as a unified diff.
    /// Placeholders (`<patch>`, `<kba version>`) are never written: they are listed for a person
    /// to choose.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "write"
    )]
    pub fix: Option<FixMode>,
    /// Files or directories to check (multi-document YAML or JSON; directories are walked for
    /// *.yaml, *.yml and *.json), or `-` for standard input.
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
        format: match args.output {
            Output::Text => ReportFormat::Text,
            Output::Json => ReportFormat::Json,
            Output::Junit => ReportFormat::Junit,
        },
        paths: args.paths,
        previous: args.previous,
        fix: args.fix,
    };
    let outcome = crate::cli::check::run(&opts, crate::base::clock::today_utc())?;
    eprint!("{}", outcome.stderr);
    print!("{}", outcome.stdout);
    Ok(outcome.code)
}
