//! `supportgate check`: its arguments, and the run that loads the policies, judges every input
//! ([`crate::cli::previous::check_all`]), applies `--fix` ([`crate::cli::fix`]) and renders the
//! report ([`crate::cli::check`], [`crate::cli::junit`]).

use std::sync::Arc;

use jiff::civil::Date;
use thiserror::Error;

use crate::cli::check::Report;
use crate::cli::fix::FixMode;
use crate::cli::input::InputError;
use crate::engine::Context;
use crate::engine::policy::{Policy, PolicyError};
use crate::engine::policyset::PolicySet;
use crate::engine::version::{Version, VersionError};

/// How the report is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    #[default]
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

/// What `supportgate check` was asked to do, as parsed from its arguments.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// SupportPolicy manifests, evaluated together (any deny wins); the embedded default when
    /// none is given. Each must be valid: offline, an invalid policy is an error, not skipped.
    pub policies: Vec<String>,
    pub kubernetes_version: Option<String>,
    /// `YYYY-MM-DD`; today (UTC) when absent.
    pub today: Option<String>,
    pub format: Output,
    pub paths: Vec<String>,
    /// The previous revision of the same manifests: matched objects are judged as UPDATEs.
    pub previous: Vec<String>,
    /// `--fix`: rewrite the files with the suggested combination, or print it as a diff.
    pub fix: Option<FixMode>,
}

/// Why `check` could not judge anything at all (exit 2); problems with single inputs are part of
/// the report instead.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("loading the policy from {path}: {source}")]
    Policy { path: String, source: PolicyError },
    #[error("{0:#}")]
    PolicyFile(anyhow::Error),
    #[error("--today {0}: expected YYYY-MM-DD")]
    Today(String),
    #[error("--kubernetes-version {given}: {source}")]
    KubernetesVersion { given: String, source: VersionError },
    #[error("encoding the report: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What `check` prints, and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    /// What `--fix` did, and what it left for a person to choose.
    pub stderr: String,
    pub code: u8,
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
        format: args.output,
        paths: args.paths,
        previous: args.previous,
        fix: args.fix,
    };
    let outcome = check(&opts, crate::base::clock::today_utc())?;
    eprint!("{}", outcome.stderr);
    print!("{}", outcome.stdout);
    Ok(outcome.code)
}

/// Checks: the report as text, JSON or JUnit XML (with `--fix`, of the rewritten files; with
/// `--fix=diff`, the diff instead), and the exit code.
pub fn check(opts: &CheckOptions, today_utc: Date) -> Result<Outcome, CheckError> {
    let (loaded, exceptions) =
        crate::cli::policy_file::load_all(&opts.policies).map_err(CheckError::PolicyFile)?;
    let loaded = loaded.into_iter().map(Arc::new).collect();
    // None given: the embedded default, as in a cluster without SupportPolicies.
    let policies = PolicySet::from_policies(loaded);
    let ctx = context(opts, today_utc)?.with_exceptions(Arc::new(exceptions));
    let check = || {
        let mut report =
            crate::cli::previous::check_all(&policies, &ctx, &opts.paths, &opts.previous);
        report.finish(&policies);
        report
    };
    let mut report = check();
    let mut stderr = String::new();
    let mut fix_failed = false;
    if let Some(mode) = opts.fix {
        let applied = crate::cli::fix::apply(&report, mode);
        stderr = applied.notes;
        fix_failed = applied.failed;
        if mode == FixMode::Diff {
            let code = if fix_failed { 2 } else { report.exit_code() };
            return Ok(Outcome {
                stdout: applied.diff,
                stderr,
                code,
            });
        }
        // The files as rewritten, judged again: what a fixed object now gets.
        report = check();
    }
    let code = if fix_failed { 2 } else { report.exit_code() };
    Ok(Outcome {
        stdout: render(&report, opts.format)?,
        stderr,
        code,
    })
}

/// The day and the hosting Kubernetes version the objects are judged at.
fn context(opts: &CheckOptions, today_utc: Date) -> Result<Context, CheckError> {
    let today = match &opts.today {
        Some(d) => d
            .parse::<Date>()
            .map_err(|_| CheckError::Today(d.clone()))?,
        None => today_utc,
    };
    let hosting = match &opts.kubernetes_version {
        Some(v) => Some(
            v.parse::<Version>()
                .map_err(|source| CheckError::KubernetesVersion {
                    given: v.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    Ok(Context::new(today).with_hosting_kubernetes(hosting))
}

fn render(report: &Report, format: Output) -> Result<String, CheckError> {
    Ok(match format {
        Output::Text => report.to_text(),
        Output::Json => serde_json::to_string_pretty(report)? + "\n",
        Output::Junit => crate::cli::junit::render(report),
    })
}
