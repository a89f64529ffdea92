//! The body of `supportgate check`: load the policy, read every input, print the report.
//! Reading and rendering live in [`crate::cli::check`]; this wires them to the arguments.

use anyhow::Context as _;
use jiff::civil::Date;

use crate::cli::check::read_input;
use crate::engine::Context;
use crate::engine::policy::Policy;
use crate::engine::version::Version;

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
    /// A SupportPolicy manifest; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<String>,
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
    /// Files or directories to check (multi-document YAML or JSON; directories are walked for
    /// *.yaml, *.yml and *.json), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// Loads `--policy`, or the embedded default.
pub fn load_policy(path: Option<&str>) -> anyhow::Result<Policy> {
    match path {
        None => Ok(Policy::embedded_default()),
        Some(path) => Policy::from_yaml(&read_input(path)?)
            .with_context(|| format!("loading the policy from {path}")),
    }
}

fn context(args: &CheckArgs) -> anyhow::Result<Context> {
    let today = match &args.today {
        Some(d) => d
            .parse::<Date>()
            .with_context(|| format!("--today {d}: expected YYYY-MM-DD"))?,
        None => crate::runtime::clock::today_utc(),
    };
    let hosting = match &args.kubernetes_version {
        Some(v) => Some(
            v.parse::<Version>()
                .with_context(|| format!("--kubernetes-version {v}"))?,
        ),
        None => None,
    };
    Ok(Context::new(today).with_hosting_kubernetes(hosting))
}

/// Runs `check` and returns its exit code: 0 when nothing is denied, 1 when anything is.
pub fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    let policy = load_policy(args.policy.as_deref())?;
    let ctx = context(args)?;
    let report = crate::cli::previous::check_all(&policy, &ctx, &args.paths, &args.previous);
    match args.output {
        Output::Text => print!("{}", report.to_text()),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        ),
        Output::Junit => print!("{}", crate::cli::junit::render(&report)),
    }
    Ok(report.exit_code())
}
