//! The collector every check writes to: violations deduplicated in linear time, bounded in count
//! and size, with the verdict computed over everything found (also what was not listed).

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use crate::messages;
use crate::rules::{Rule, Severity};
use crate::tag::ReleaseTag;
use crate::targets::Located;
use crate::verdict::{Evaluation, Verdict, Violation};
use crate::version::{Bound, Version};

/// Bounds what one evaluation reports, so that hostile input (a megabyte version string, 90,000
/// addons) cannot turn into a megabyte answer. The verdict still counts everything.
pub const MAX_VIOLATIONS: usize = 100;
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// The display form of a field is cut here; its JSON pointer never is.
pub const MAX_FIELD_CHARS: usize = 256;

pub(crate) fn cut(mut s: String, max_chars: usize) -> String {
    // No longer in bytes than allowed in chars: nothing to count.
    if s.len() <= max_chars {
        return s;
    }
    if let Some((i, _)) = s.char_indices().nth(max_chars) {
        s.truncate(i);
        s.push('…');
    }
    s
}

/// Violations deduplicated by a scan of the list before a set is built.
const LINEAR_DEDUP: usize = 16;

/// A violation with the JSON pointer of its field: the pointer is what ratcheting reads values
/// back with; the display field may be cut and cannot be parsed back unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Found {
    pub violation: Violation,
    pub pointer: Option<String>,
}

/// Collects violations, deduplicated, in the order found.
#[derive(Default)]
pub(crate) struct Out {
    found: Vec<Found>,
    /// Dedup in O(1) per violation: a spec can carry tens of thousands of addons, and several
    /// policies can report the same thing. Built only past [`LINEAR_DEDUP`] violations; below,
    /// a scan of `found` costs less than hashing and cloning each one.
    seen: HashSet<Found>,
    /// Whether `seen` holds everything found so far.
    hashed: bool,
    dropped: usize,
    dropped_max: Option<Severity>,
}

impl Out {
    pub(crate) fn push(&mut self, rule: Rule, severity: Severity, at: &Located, message: String) {
        self.add(Found {
            violation: Violation {
                rule,
                severity,
                message: cut(message, MAX_MESSAGE_CHARS),
                field: Some(cut(at.field(), MAX_FIELD_CHARS)),
                exception: None,
            },
            pointer: Some(at.pointer()),
        });
    }

    /// A violation about a field the object does not have (`version-missing`): no pointer, so
    /// it is never ratcheted.
    pub(crate) fn push_absent(
        &mut self,
        rule: Rule,
        severity: Severity,
        field: &str,
        message: String,
    ) {
        self.add(Found {
            violation: Violation {
                rule,
                severity,
                message: cut(message, MAX_MESSAGE_CHARS),
                field: Some(cut(field.to_string(), MAX_FIELD_CHARS)),
                exception: None,
            },
            pointer: None,
        });
    }

    pub(crate) fn add(&mut self, f: Found) {
        if !self.hashed {
            if self.found.contains(&f) {
                return;
            }
            if self.found.len() < LINEAR_DEDUP {
                self.found.push(f);
                return;
            }
            self.seen.extend(self.found.iter().cloned());
            self.hashed = true;
        }
        if self.seen.contains(&f) {
            return;
        }
        if self.found.len() >= MAX_VIOLATIONS {
            self.dropped += 1;
            self.dropped_max = self.dropped_max.max(Some(f.violation.severity));
            self.seen.insert(f);
            return;
        }
        self.seen.insert(f.clone());
        self.found.push(f);
    }

    /// Takes in everything another collector found (another policy's verdict on the same
    /// object), deduplicated against what is here.
    pub(crate) fn absorb(&mut self, other: Out) {
        self.dropped_max = self.dropped_max.max(other.dropped_max);
        // Unlisted violations cannot be deduplicated any more; counting them is an upper bound.
        self.dropped += other.dropped;
        for f in other.found {
            self.add(f);
        }
    }

    pub(crate) fn found(&self) -> impl Iterator<Item = &Found> {
        self.found.iter()
    }

    /// The same collection with every listed violation passed through `f` (which may change its
    /// severity, hence its identity); what was not listed stays as it was.
    pub(crate) fn map_found(self, mut f: impl FnMut(&mut Found)) -> Out {
        let mut out = Out {
            dropped: self.dropped,
            dropped_max: self.dropped_max,
            ..Out::default()
        };
        for mut found in self.found {
            f(&mut found);
            out.add(found);
        }
        out
    }

    /// The verdict over everything found, listed or not.
    pub(crate) fn verdict(&self) -> Verdict {
        let max = self
            .found
            .iter()
            .map(|f| f.violation.severity)
            .max()
            .max(self.dropped_max);
        match max {
            Some(Severity::Deny) => Verdict::Denied,
            Some(Severity::Warn) => Verdict::Warned,
            _ => Verdict::Allowed,
        }
    }

    /// Ends collection: the evaluation, and the pointer of each violation's field in the same
    /// order.
    pub(crate) fn finish(self) -> (Evaluation, Vec<Option<String>>) {
        let verdict = self.verdict();
        let (mut violations, pointers): (Vec<Violation>, Vec<Option<String>>) = self
            .found
            .into_iter()
            .map(|f| (f.violation, f.pointer))
            .unzip();
        if self.dropped > 0
            && let Some(first) = violations.iter_mut().max_by_key(|v| v.severity)
        {
            first
                .message
                .push_str(&messages::more_not_listed(self.dropped));
        }
        (
            Evaluation {
                verdict,
                violations,
            },
            pointers,
        )
    }

    /// The string at a field, or a `version-invalid` denial saying what is there instead.
    pub(crate) fn string<'v>(
        &mut self,
        at: &Located<'v>,
        what: impl fmt::Display,
        example: &str,
    ) -> Option<&'v str> {
        // A non-blank string needs no description of what was expected.
        if let Some(s) = at.value.as_str()
            && !s.trim().is_empty()
        {
            return Some(s);
        }
        let what = what.to_string();
        if let Some(problem) = messages::not_a_version_string(at.value, &what, example) {
            self.push(Rule::VersionInvalid, Severity::Deny, at, problem);
            return None;
        }
        at.value.as_str()
    }

    /// `what` is only formatted for a violation.
    pub(crate) fn version(
        &mut self,
        at: &Located,
        what: impl fmt::Display,
        example: &str,
    ) -> Option<Version> {
        let s = self.string(at, &what, example)?;
        match s.parse::<Version>() {
            Ok(v) => Some(v),
            Err(e) => {
                let msg = messages::invalid_version(e, &what.to_string(), example);
                self.push(Rule::VersionInvalid, Severity::Deny, at, msg);
                None
            }
        }
    }

    pub(crate) fn bound(&mut self, at: &Located, example: &str) -> Option<Bound> {
        let s = self.string(at, "a Kubernetes version bound", example)?;
        match s.parse::<Bound>() {
            Ok(b) => Some(b),
            Err(e) => {
                self.push(
                    Rule::VersionInvalid,
                    Severity::Deny,
                    at,
                    messages::invalid_bound(e),
                );
                None
            }
        }
    }

    pub(crate) fn tag(&mut self, at: &Located, what: &str, example: &str) -> Option<ReleaseTag> {
        let s = self.string(at, format_args!("a {what} release tag"), example)?;
        self.tag_in(at, s, what, example)
    }

    /// A tag read from part of the field at `at` (the ref of a repository URL).
    pub(crate) fn tag_in(
        &mut self,
        at: &Located,
        s: &str,
        what: &str,
        example: &str,
    ) -> Option<ReleaseTag> {
        match s.parse::<ReleaseTag>() {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = messages::unrecognized_ref(what, e, example);
                self.push(Rule::RefUnrecognized, Severity::Warn, at, msg);
                None
            }
        }
    }
}

/// Text formatted only when shown: what a field should hold, for messages about bad values.
pub(crate) struct Lazy<F>(pub F);

impl<F: Fn() -> String> fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&(self.0)())
    }
}

/// A null node is how a YAML key without a value arrives: the field is unset, not invalid.
pub(crate) fn is_set(v: &Value) -> bool {
    !v.is_null()
}
