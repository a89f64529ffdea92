//! `supportgate check`: evaluates YAML or JSON files offline, for CI pipelines.
//!
//! This is an edge: it reads files and prints. The verdicts come from [`crate::engine`], the same
//! code the webhook and the controller run.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use std::sync::Arc;

use jiff::civil::Date;

use crate::cli::fix::FixMode;
use crate::engine::coverage::{Coverage, unresolved_fields};
use crate::engine::fix::Change;
use crate::engine::policy::PolicyError;
use crate::engine::policyset::{PolicySet, Subject};
use crate::engine::version::{Version, VersionError};
use crate::engine::{Context, Evaluation, Verdict, Violation};

/// Refuse inputs larger than this: a manifest set is kilobytes; anything far bigger is a mistake
/// (a binary, a log) and would otherwise be read whole into memory.
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: larger than {MAX_INPUT_BYTES} bytes; refusing to read it")]
    TooLarge { source_name: String },
    #[error("{source_name}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Parse {
        source_name: String,
        location: Option<(usize, usize)>,
        message: String,
    },
    #[error(
        "{source_name} document {document}: not a Kubernetes object (a mapping with apiVersion and kind)"
    )]
    NotAnObject {
        source_name: String,
        document: usize,
    },
}

/// One object read from an input, with where it came from.
#[derive(Debug, Clone)]
pub struct SourcedObject {
    pub source: String,
    /// 1-based index of the YAML document in its file.
    pub document: usize,
    /// The index in the document's `items` when the document is a `kind: List`.
    pub item: Option<usize>,
    pub object: Value,
}

/// Reads every object from `text`: multi-document YAML (decoded as kubectl decodes it) or JSON,
/// with `kind: List` expanded. See [`crate::cli::input::parse`].
pub fn parse_objects(source_name: &str, text: &str) -> (Vec<SourcedObject>, Vec<InputError>) {
    let (loaded, errors) = crate::cli::input::parse(source_name, text);
    (loaded.into_iter().map(|l| l.object).collect(), errors)
}

/// Reads a path, or standard input for `-`.
pub fn read_input(path: &str) -> Result<String, InputError> {
    let read_err = |error| InputError::Read {
        source_name: path.to_string(),
        error,
    };
    let mut buf = String::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut buf)
            .map_err(read_err)?;
    } else {
        let file = std::fs::File::open(Path::new(path)).map_err(read_err)?;
        file.take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut buf)
            .map_err(read_err)?;
    }
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            source_name: path.to_string(),
        });
    }
    Ok(buf)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `file.yaml#2`: the file and the document in it.
    pub source: String,
}

impl ObjectRef {
    pub fn of(o: &SourcedObject) -> Self {
        let s = |p: &str| {
            o.object
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        ObjectRef {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").unwrap_or_else(|| "<unnamed>".to_string()),
            source: format!("{}#{}", o.source, o.document),
        }
    }

    fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub verdict: Verdict,
    pub violations: Vec<Violation>,
    /// `create` or `update`, when `--previous` tells which (see [`crate::cli::previous`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'static str>,
    /// The fields the one suggested combination changes (see [`crate::engine::fix`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fix: Vec<Change>,
    /// Where the object sits in its file, for `--fix`.
    #[serde(skip)]
    pub origin: Origin,
}

/// A file, a 1-based document in it, and the item of a `kind: List` document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub document: usize,
    pub item: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    #[serde(flatten)]
    pub object: ObjectRef,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub results: Vec<CheckResult>,
    pub skipped: Vec<Skipped>,
    /// Objects of the `--previous` revision that the new one no longer has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<ObjectRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Target fields that resolved in none of the checked objects of their kind: a policy
    /// authoring mistake (a typo in a path) that would otherwise switch rules off unseen.
    pub policy_warnings: Vec<PolicyWarning>,
    #[serde(skip)]
    coverage: Coverage,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyWarning {
    pub policy: String,
    /// `KonvoyCluster.kommander.mesosphere.io`.
    pub target: String,
    /// The field's name in the policy spec (`productVersion`).
    pub field: String,
    pub message: String,
}

impl Report {
    /// Evaluates one object through the same path as the webhook and the controller.
    pub fn add(&mut self, policies: &PolicySet, ctx: &Context, o: &SourcedObject) {
        self.add_change(policies, ctx, o, None, None);
    }

    /// Adds `o` as the webhook would judge it: a CREATE, or with `old` an UPDATE (ratcheted
    /// against the previous revision by the same engine call admission makes). `paired`: the
    /// ClusterProvisioner of a ClusterConfiguration (see [`crate::cli::pairs`]).
    pub fn add_change(
        &mut self,
        policies: &PolicySet,
        ctx: &Context,
        o: &SourcedObject,
        old: Option<&serde_json::Value>,
        paired: Option<&serde_json::Value>,
    ) {
        let r = ObjectRef::of(o);
        let subject = Subject {
            object: &o.object,
            old,
            paired,
        };
        match policies.assess(subject, ctx) {
            Some(a) => {
                self.coverage.record(&a);
                let Evaluation {
                    verdict,
                    violations,
                } = a.evaluation;
                self.results.push(CheckResult {
                    object: r,
                    verdict,
                    violations,
                    operation: None,
                    fix: a.fix,
                    origin: Origin {
                        file: o.source.clone(),
                        document: o.document,
                        item: o.item,
                    },
                });
            }
            None => self.skipped.push(Skipped {
                object: r,
                reason: "no target of the policy matches this kind",
            }),
        }
    }

    /// Fills in the policy warnings from what the checked objects resolved.
    pub fn finish(&mut self, policies: &PolicySet) {
        self.policy_warnings = policies
            .policies()
            .iter()
            .flat_map(|p| unresolved_fields(p, &self.coverage.of_policy(&p.name)))
            .map(|u| PolicyWarning {
                policy: u.policy,
                target: u.target,
                field: u.field.to_string(),
                message: u.message,
            })
            .collect();
    }

    /// 2 on any input error, else 1 when anything is denied, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            2
        } else if self.results.iter().any(|r| r.verdict == Verdict::Denied) {
            1
        } else {
            0
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            let _ = writeln!(
                out,
                "{:<8} {} {} ({}{})",
                r.verdict.as_str().to_ascii_uppercase(),
                r.object.kind,
                r.object.display_name(),
                r.object.source,
                r.operation.map(|o| format!(", {o}")).unwrap_or_default()
            );
            for v in &r.violations {
                let field = v
                    .field
                    .as_deref()
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:<4} {:<29} {field}{}",
                    v.severity,
                    v.rule.id(),
                    v.message
                );
            }
            write_fix(&mut out, &r.fix);
        }
        for s in &self.skipped {
            let _ = writeln!(
                out,
                "{:<8} {} {} {} ({}): {}",
                "SKIPPED",
                s.object.api_version,
                s.object.kind,
                s.object.display_name(),
                s.object.source,
                s.reason
            );
        }
        for o in &self.removed {
            let _ = writeln!(
                out,
                "REMOVED  {} {} ({}): not in the new revision",
                o.kind,
                o.display_name(),
                o.source
            );
        }
        for e in &self.errors {
            let _ = writeln!(out, "ERROR    {e}");
        }
        for w in &self.policy_warnings {
            let _ = writeln!(
                out,
                "POLICY   {} target {}: {}",
                w.policy, w.target, w.message
            );
        }
        let count = |v: Verdict| self.results.iter().filter(|r| r.verdict == v).count();
        let _ = writeln!(
            out,
            "{} objects: {} allowed, {} warned, {} denied, {} skipped{}",
            self.results.len() + self.skipped.len(),
            count(Verdict::Allowed),
            count(Verdict::Warned),
            count(Verdict::Denied),
            self.skipped.len(),
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(", {} input errors", self.errors.len())
            }
        );
        out
    }
}

/// The `fix:` block of an object: each field the suggested combination changes.
fn write_fix(out: &mut String, fix: &[Change]) {
    if fix.is_empty() {
        return;
    }
    out.push_str("  fix:\n");
    for c in fix {
        let manual = if c.manual {
            " (choose the exact version)"
        } else {
            ""
        };
        let _ = writeln!(out, "    {}: {} -> {}{manual}", c.field, c.from, c.to);
    }
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
    pub format: ReportFormat,
    pub paths: Vec<String>,
    /// The previous revision of the same manifests: matched objects are judged as UPDATEs.
    pub previous: Vec<String>,
    /// `--fix`: rewrite the files with the suggested combination, or print it as a diff.
    pub fix: Option<FixMode>,
}

/// How the report is rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
    /// JUnit XML: one testcase per object, a failure per denial.
    Junit,
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

/// Runs `check`: the report as text or JSON (with `--fix`, of the rewritten files; with
/// `--fix=diff`, the diff instead), and the exit code.
pub fn run(opts: &CheckOptions, today_utc: Date) -> Result<Outcome, CheckError> {
    let (loaded, exceptions) =
        crate::cli::policy_file::load_all(&opts.policies).map_err(CheckError::PolicyFile)?;
    let loaded = loaded.into_iter().map(Arc::new).collect();
    // None given: the embedded default, as in a cluster without SupportPolicies.
    let policies = PolicySet::from_policies(loaded);
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
    let ctx = Context::new(today)
        .with_hosting_kubernetes(hosting)
        .with_exceptions(Arc::new(exceptions));
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
    let stdout = match opts.format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Junit => crate::cli::junit::render(&report),
    };
    let code = if fix_failed { 2 } else { report.exit_code() };
    Ok(Outcome {
        stdout,
        stderr,
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_with_lists_and_blanks() {
        let text = "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\n";
        let (objs, errs) = parse_objects("x.yaml", text);
        assert!(errs.is_empty(), "{errs:?}");
        let names: Vec<_> = objs
            .iter()
            .map(|o| (o.document, o.object["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(names, [(1, "a"), (1, "b"), (3, "c")]);
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: [unclosed\n";
        let (objs, errs) = parse_objects("bad.yaml", text);
        assert_eq!(objs.len(), 1, "the good document still counts");
        let msg = errs[0].to_string();
        assert!(msg.starts_with("bad.yaml:"), "{msg}");
        assert!(
            matches!(errs[0], InputError::Parse { location: Some((l, _)), .. } if l >= 5),
            "{msg}"
        );
    }

    #[test]
    fn json_and_non_objects() {
        let (objs, errs) = parse_objects("a.json", r#"{"apiVersion":"v1","kind":"ConfigMap"}"#);
        assert_eq!((objs.len(), errs.len()), (1, 0));
        let (_, errs) = parse_objects("a.json", r#"{"apiVersion":"v1","#);
        assert!(matches!(
            errs[0],
            InputError::Parse {
                location: Some(_),
                ..
            }
        ));
        let (_, errs) = parse_objects("s.yaml", "just a string\n");
        assert!(matches!(
            errs[0],
            InputError::NotAnObject { document: 1, .. }
        ));
    }
}
