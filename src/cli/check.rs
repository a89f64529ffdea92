//! The report of `supportgate check`: what each object got, what was skipped or removed, the
//! input errors and the policy warnings, and its text form and exit code.
//!
//! The verdicts come from [`crate::engine`], the same code the webhook and the controller run;
//! reading the inputs is [`crate::cli::input`]'s, running the command
//! [`crate::cli::check_command`]'s.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::cli::input::SourcedObject;
use crate::engine::coverage::{Coverage, unresolved_fields};
use crate::engine::fix::Change;
use crate::engine::policyset::{PolicySet, Subject};
use crate::engine::{Context, Evaluation, Verdict, Violation};

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

    /// `namespace/name`, or the name of a cluster-scoped object.
    pub fn display_name(&self) -> String {
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
