//! `SupportException`s, compiled once into typed values and applied to an evaluation. Pure like
//! the rest of the engine: the caller passes "today".
//!
//! A matching, unexpired, valid exception turns a deny violation of one of its rules into a
//! warning. The rule id stays; the message names the exception and its expiry, and the
//! violation's `exception` field says which one (`namespace/name`). Which namespaces may grant
//! exceptions is decided before compiling (the runtime watches only trusted namespaces; offline,
//! every exception of the file counts). Which namespaces an exception reaches is its own
//! `match.namespaces`, required: an exception without it never compiles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::civil::Date;
use serde_json::Value;
use thiserror::Error;

use crate::policy::Policy;
use crate::problems::{parse_field, parse_or_note};
use crate::rules::{Rule, Severity};
use crate::selector::Selector;
use crate::spec::{
    ALL_NAMESPACES, ExceptionMatch, ExceptionResource, NAMESPACES_REQUIRED, WILDCARD_ALONE,
};
use crate::targets::FieldKind;
use crate::version::{Minor, Version};
use crate::{Evaluation, Verdict};

/// The default of a policy's `maxExceptionDays`.
pub const DEFAULT_MAX_EXCEPTION_DAYS: i32 = 180;

/// An evaluation lists at most this many violations (see `crate::MAX_VIOLATIONS`); when it is
/// full, unlisted denials may exist and the verdict is never lowered.
const FULL: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("SupportException {key}: {problems}")]
pub struct ExceptionError {
    pub key: String,
    pub problems: String,
}

/// A validated exception.
#[derive(Debug, Clone)]
pub struct CompiledException {
    /// `namespace/name`.
    pub key: String,
    pub reason: String,
    /// The first day it no longer applies.
    pub expires: Date,
    /// The day it was created; its lifetime counts from here (offline: from today).
    pub created: Option<Date>,
    pub rules: BTreeSet<Rule>,
    matcher: Matcher,
    konvoy: Vec<Minor>,
    kubernetes: Vec<Minor>,
}

/// Where an exception stands on a given day under the policies' limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExceptionState {
    Active,
    Expired,
    /// Valid in itself but refused by the policies, with why.
    Invalid(String),
}

/// The policies' limits on exceptions: the strictest cap and the earliest warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_days: i32,
    pub nearing_days: i32,
}

impl Limits {
    pub fn of<'p>(policies: impl IntoIterator<Item = &'p Policy>) -> Limits {
        let mut l: Option<Limits> = None;
        for p in policies {
            l = Some(match l {
                None => Limits {
                    max_days: p.max_exception_days,
                    nearing_days: p.nearing_end_days,
                },
                Some(l) => Limits {
                    max_days: l.max_days.min(p.max_exception_days),
                    nearing_days: l.nearing_days.max(p.nearing_end_days),
                },
            });
        }
        l.unwrap_or(Limits {
            max_days: DEFAULT_MAX_EXCEPTION_DAYS,
            nearing_days: 90,
        })
    }
}

impl CompiledException {
    /// Validates what the CRD schema cannot (or what an offline file, or an exception stored
    /// before the schema required it, skipped): a real date, known rule ids, a namespace scope,
    /// parseable selectors and minors. Every problem is reported, not just the first.
    pub fn compile(x: &impl ExceptionResource) -> Result<CompiledException, ExceptionError> {
        let ns = x.exception_namespace().unwrap_or("default");
        let key = format!("{ns}/{}", x.exception_name().unwrap_or(""));
        let s = x.exception_spec();
        let mut problems = Vec::new();
        let expires = parse_or_note::<Date>(Some(&s.expires), &mut problems, |raw, e| {
            format!("spec.expires: `{raw}` is not a date ({e})")
        })
        .unwrap_or(Date::MIN);
        if s.reason.trim().is_empty() {
            problems.push("spec.reason: must say why the exception is granted".into());
        }
        let rules = compile_rules(&s.rules, &mut problems);
        let matcher = Matcher::compile(&s.match_, &mut problems);
        let versions = s.versions.clone().unwrap_or_default();
        let konvoy = compile_minors("konvoy", &versions.konvoy, &mut problems);
        let kubernetes = compile_minors("kubernetes", &versions.kubernetes, &mut problems);
        let (Some(matcher), true) = (matcher, problems.is_empty()) else {
            return Err(ExceptionError {
                key,
                problems: problems.join("; "),
            });
        };
        let created = x
            .created()
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date());
        Ok(CompiledException {
            key,
            reason: s.reason.trim().to_string(),
            expires,
            created,
            rules,
            matcher,
            konvoy,
            kubernetes,
        })
    }

    /// Active, expired (from the expiry day on), or beyond the policies' cap.
    pub fn state(&self, today: Date, limits: Limits) -> ExceptionState {
        let from = self.created.unwrap_or(today);
        let days = days_between(from, self.expires).unwrap_or(i64::MAX);
        if days > i64::from(limits.max_days) {
            return ExceptionState::Invalid(format!(
                "expires {}, {days} days after {}; the policy allows at most {} days (maxExceptionDays)",
                self.expires,
                if self.created.is_some() {
                    "its creation"
                } else {
                    "today"
                },
                limits.max_days
            ));
        }
        if today >= self.expires {
            ExceptionState::Expired
        } else {
            ExceptionState::Active
        }
    }

    fn matches(&self, o: &Facts<'_>) -> bool {
        self.matcher.matches(o)
            && (self.konvoy.is_empty() || o.konvoy.is_some_and(|m| self.konvoy.contains(&m)))
            && (self.kubernetes.is_empty()
                || o.kubernetes.is_some_and(|m| self.kubernetes.contains(&m)))
    }
}

/// `spec.rules`: known ids, at least one.
fn compile_rules(ids: &[String], problems: &mut Vec<String>) -> BTreeSet<Rule> {
    let mut rules = BTreeSet::new();
    for id in ids {
        match id.parse::<Rule>() {
            Ok(r) => {
                rules.insert(r);
            }
            Err(_) => problems.push(format!("spec.rules: unknown rule id `{id}`")),
        }
    }
    if ids.is_empty() {
        problems.push("spec.rules: must list at least one rule id".into());
    }
    rules
}

/// `spec.versions.<field>`: `MAJOR.MINOR` values.
fn compile_minors(field: &str, list: &[String], problems: &mut Vec<String>) -> Vec<Minor> {
    list.iter()
        .filter_map(|v| parse_field(Some(v), format_args!("spec.versions.{field}"), problems))
        .collect()
}

/// The namespaces an exception reaches: named ones, or all of them when spelled out as `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Namespaces {
    All,
    Only(Vec<String>),
}

impl Namespaces {
    /// `spec.match.namespaces`: required and non-empty, so that no name or selector reaches
    /// into a namespace nobody named; `*` only alone.
    fn compile(list: Option<&[String]>, problems: &mut Vec<String>) -> Option<Namespaces> {
        let list = match list {
            Some(l) if !l.is_empty() => l,
            _ => {
                problems.push(format!("spec.{NAMESPACES_REQUIRED}"));
                return None;
            }
        };
        if list.iter().any(|n| n == ALL_NAMESPACES) {
            if list.len() > 1 {
                problems.push(format!("spec.{WILDCARD_ALONE}"));
                return None;
            }
            return Some(Namespaces::All);
        }
        if list.iter().any(|n| n.trim().is_empty()) {
            problems.push("spec.match.namespaces: an empty namespace name".into());
            return None;
        }
        Some(Namespaces::Only(list.to_vec()))
    }

    /// A cluster-scoped object (no namespace) is reached only by `*`.
    fn contains(&self, namespace: Option<&str>) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Only(l) => namespace.is_some_and(|ns| l.iter().any(|x| x == ns)),
        }
    }
}

/// `spec.match` compiled: the namespace scope and the fields that narrow it.
#[derive(Debug, Clone)]
struct Matcher {
    namespaces: Namespaces,
    names: Option<Vec<String>>,
    kinds: Option<Vec<(String, String)>>,
    selector: Option<Selector>,
}

impl Matcher {
    fn compile(m: &ExceptionMatch, problems: &mut Vec<String>) -> Option<Matcher> {
        let namespaces = Namespaces::compile(m.namespaces.as_deref(), problems);
        let selector = m
            .selector
            .as_ref()
            .and_then(|sel| match Selector::try_from(sel) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(format!("spec.match.selector: {e}"));
                    None
                }
            });
        Some(Matcher {
            namespaces: namespaces?,
            names: m.names.clone().filter(|l| !l.is_empty()),
            kinds: m.kinds.as_ref().filter(|k| !k.is_empty()).map(|k| {
                k.iter()
                    .map(|k| (k.api_group.clone(), k.kind.clone()))
                    .collect()
            }),
            selector,
        })
    }

    fn matches(&self, o: &Facts<'_>) -> bool {
        self.namespaces.contains(o.namespace)
            && self
                .names
                .as_ref()
                .is_none_or(|l| o.name.is_some_and(|v| l.iter().any(|x| x == v)))
            && self
                .kinds
                .as_ref()
                .is_none_or(|k| k.iter().any(|(g, k)| *g == o.group && *k == o.kind))
            && self.selector.as_ref().is_none_or(|s| s.matches(&o.labels))
    }
}

fn days_between(from: Date, to: Date) -> Option<i64> {
    let span = from.until((jiff::Unit::Day, to)).ok()?;
    Some(i64::from(span.get_days()))
}

/// What an exception's match reads from an object.
struct Facts<'o> {
    namespace: Option<&'o str>,
    name: Option<&'o str>,
    group: &'o str,
    kind: &'o str,
    labels: BTreeMap<String, String>,
    konvoy: Option<Minor>,
    kubernetes: Option<Minor>,
}

impl<'o> Facts<'o> {
    fn of<'p>(object: &'o Value, policies: &[&'p Policy]) -> Facts<'o> {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str);
        let api_version = s("/apiVersion").unwrap_or_default();
        let kind = s("/kind").unwrap_or_default();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        // The versions where the policies' targets for the kind say they live.
        let targets: Vec<_> = policies
            .iter()
            .filter_map(|p| p.target_for(api_version, kind))
            .collect();
        let minor_at =
            |path: fn(&crate::targets::CompiledTarget) -> Option<&crate::targets::Query>| {
                targets.iter().find_map(|t| {
                    let located = path(t)?.first_where(object, |_| true)?;
                    located
                        .value
                        .as_str()?
                        .parse::<Version>()
                        .ok()
                        .map(|v| v.minor())
                })
            };
        Facts {
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
            group,
            kind,
            labels,
            konvoy: minor_at(|t| t.path(FieldKind::ProductVersion)),
            kubernetes: minor_at(|t| t.path(FieldKind::KubernetesVersion)),
        }
    }
}

/// The exceptions in force, with the ones that failed to compile kept for their status.
#[derive(Debug, Clone, Default)]
pub struct ExceptionSet {
    exceptions: Vec<Arc<CompiledException>>,
}

impl ExceptionSet {
    pub fn new(mut exceptions: Vec<Arc<CompiledException>>) -> Self {
        // Deterministic: the first matching exception by key names the cover.
        exceptions.sort_by(|a, b| a.key.cmp(&b.key));
        ExceptionSet { exceptions }
    }

    pub fn is_empty(&self) -> bool {
        self.exceptions.is_empty()
    }

    pub fn exceptions(&self) -> &[Arc<CompiledException>] {
        &self.exceptions
    }

    /// The next day an exception stops applying, after `today`: when verdicts change without
    /// any object changing.
    pub fn next_expiry(&self, today: Date) -> Option<Date> {
        self.exceptions
            .iter()
            .map(|x| x.expires)
            .filter(|d| *d > today)
            .min()
    }

    /// The next day after `today` on which what the exceptions named in `e` say changes: the
    /// start of their warning period or their expiry. The controller requeues for it.
    pub fn next_change<'p>(
        &self,
        policies: impl IntoIterator<Item = &'p Policy>,
        e: &Evaluation,
        today: Date,
    ) -> Option<Date> {
        let limits = Limits::of(policies);
        let named: BTreeSet<&str> = e
            .violations
            .iter()
            .filter_map(|v| v.exception.as_deref())
            .collect();
        self.exceptions
            .iter()
            .filter(|x| named.contains(x.key.as_str()))
            .flat_map(|x| {
                let warn = x
                    .expires
                    .checked_sub(jiff::Span::new().days(i64::from(limits.nearing_days)))
                    .ok();
                [Some(x.expires), warn]
            })
            .flatten()
            .filter(|d| *d > today)
            .min()
    }

    /// Turns each deny violation that an active exception covers into a warning naming it.
    pub fn apply<'p>(
        &self,
        policies: impl IntoIterator<Item = &'p Policy>,
        object: &Value,
        today: Date,
        mut e: Evaluation,
    ) -> Evaluation {
        if self.exceptions.is_empty() || e.verdict != Verdict::Denied {
            return e;
        }
        let policies: Vec<&Policy> = policies.into_iter().collect();
        let limits = Limits::of(policies.iter().copied());
        let facts = Facts::of(object, &policies);
        let active: Vec<&CompiledException> = self
            .exceptions
            .iter()
            .map(|x| &**x)
            .filter(|x| x.state(today, limits) == ExceptionState::Active && x.matches(&facts))
            .collect();
        if active.is_empty() {
            return e;
        }
        for v in e
            .violations
            .iter_mut()
            .filter(|v| v.severity == Severity::Deny)
        {
            let Some(x) = active.iter().find(|x| x.rules.contains(&v.rule)) else {
                continue;
            };
            v.severity = Severity::Warn;
            v.exception = Some(x.key.clone());
            // Constant across the warning period, so the message does not change every day.
            let left = days_between(today, x.expires).unwrap_or(0);
            let soon = if left <= i64::from(limits.nearing_days) {
                format!("; it ends within {} days", limits.nearing_days)
            } else {
                String::new()
            };
            v.message = format!(
                "{} (excepted by SupportException {} until {}: {}{soon})",
                v.message, x.key, x.expires, x.reason
            );
        }
        let still_denied = e.violations.iter().any(|v| v.severity == Severity::Deny);
        if !still_denied && e.violations.len() < FULL {
            e.verdict = Verdict::Warned;
        }
        e
    }
}

#[cfg(test)]
#[path = "exceptions_tests.rs"]
mod tests;
