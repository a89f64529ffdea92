use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use jiff::civil::Date;

use supportgate::check::{Report, parse_objects, read_input};
use supportgate::engine::Context;
use supportgate::policy::{DEFAULT_POLICY_YAML, Policy};
use supportgate::version::Version;

/// Enforces a vendor's version support policy on Kubernetes clusters and addons.
#[derive(Parser)]
#[command(name = "supportgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate YAML or JSON manifests offline; exit 0 when nothing is denied, 1 when anything
    /// is, 2 on usage or input errors.
    Check(CheckArgs),
    /// Print the SupportPolicy CustomResourceDefinition.
    Crd,
    /// Print the embedded default SupportPolicy.
    DefaultPolicy,
}

#[derive(Parser)]
struct CheckArgs {
    /// A SupportPolicy manifest; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    policy: Option<String>,
    /// The hosting cluster's Kubernetes version, for Addon objects (e.g. 1.20.13).
    #[arg(long, value_name = "V")]
    kubernetes_version: Option<String>,
    /// Evaluate as of this day (YYYY-MM-DD, UTC) instead of today: release and end-of-support
    /// dates move the window.
    #[arg(long, value_name = "DATE")]
    today: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Files to check (multi-document YAML or JSON), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("supportgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Crd => {
            print!(
                "{}",
                supportgate::crd::support_policy_crd_yaml().context("rendering the CRD")?
            );
            Ok(0)
        }
        Command::DefaultPolicy => {
            print!("{DEFAULT_POLICY_YAML}");
            Ok(0)
        }
        Command::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let policy = match &args.policy {
        None => Policy::embedded_default(),
        Some(path) => {
            let text = read_input(path)?;
            Policy::from_yaml(&text).with_context(|| format!("loading the policy from {path}"))?
        }
    };
    let today = match &args.today {
        Some(d) => d
            .parse::<Date>()
            .with_context(|| format!("--today {d}: expected YYYY-MM-DD"))?,
        None => jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date(),
    };
    let hosting = match &args.kubernetes_version {
        Some(v) => Some(
            v.parse::<Version>()
                .with_context(|| format!("--kubernetes-version {v}"))?,
        ),
        None => None,
    };
    let ctx = Context::new(today).with_hosting_kubernetes(hosting);

    let mut report = Report::default();
    for path in &args.paths {
        let text = match read_input(path) {
            Ok(t) => t,
            Err(e) => {
                report.errors.push(e.to_string());
                continue;
            }
        };
        let (objects, errors) = parse_objects(path, &text);
        report.errors.extend(errors.iter().map(ToString::to_string));
        for o in &objects {
            report.add(&policy, &ctx, o);
        }
    }
    match args.output {
        Output::Text => print!("{}", report.to_text()),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        ),
    }
    Ok(report.exit_code())
}
