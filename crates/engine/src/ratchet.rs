//! Ratcheting for updates: a denial that the old object already had, at the same field, with the
//! value unchanged or moved forward (an upgrade of an out-of-support release), is downgraded to a
//! warning. Without this nobody could label an old cluster or start its upgrade; a change that
//! introduces a new violation, or makes one worse, is still denied.
//!
//! The rules that judge the change itself (`upgrade-skips-minor`, `downgrade`, `version-removed`)
//! are never downgraded: the old object alone cannot carry them, so "already so before" never
//! holds.
//!
//! It fails closed: values are read back with the JSON pointers the JSONPath library's
//! normalized paths give, never by parsing a display string back, and a field that cannot be
//! read in both objects is never taken for unchanged.

use std::collections::HashSet;

use serde_json::Value;

use crate::collect::{Found, Out};
use crate::messages;
use crate::rules::{Rule, Severity};
use crate::version::Version;

/// Downgrades, in `new`, the denials `old` already had at an unchanged or upgraded field.
pub(crate) fn ratchet(old_object: &Value, old: &Out, new_object: &Value, new: Out) -> Out {
    // Linear: one set of what was denied before, one lookup per new denial.
    let before: HashSet<(Rule, &str)> = old
        .found()
        .filter(|f| f.violation.severity == Severity::Deny)
        .filter_map(|f| Some((f.violation.rule, f.pointer.as_deref()?)))
        .collect();
    new.map_found(|f| {
        if f.violation.severity == Severity::Deny
            && !f.violation.rule.compares_revisions()
            && let Some(pointer) = f.pointer.as_deref()
            && before.contains(&(f.violation.rule, pointer))
            && still_so(f.violation.rule, old_object, new_object, pointer)
        {
            downgrade(f);
        }
    })
}

/// Whether the value at `pointer` is the same in both objects, or an upgrade; `false` when it
/// cannot be read in either.
fn still_so(rule: Rule, old_object: &Value, new_object: &Value, pointer: &str) -> bool {
    let (Some(before), Some(after)) = (old_object.pointer(pointer), new_object.pointer(pointer))
    else {
        return false;
    };
    if before == after {
        return true;
    }
    let version = |v: &Value| v.as_str().and_then(|s| s.parse::<Version>().ok());
    rule == Rule::KonvoyUnsupported
        && matches!((version(before), version(after)), (Some(b), Some(a)) if a > b)
}

fn downgrade(f: &mut Found) {
    f.violation.severity = Severity::Warn;
    f.violation.message = messages::ratcheted(&f.violation.message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use strum::IntoEnumIterator;

    #[test]
    fn rules_that_compare_revisions_are_never_ratcheted() {
        // Even if an old collection carried one (it never does: the old object is judged alone),
        // the same denial at the same unchanged field stays a denial.
        let object = json!({"spec": {"version": "v1.8.5"}});
        let query = crate::query::Query::parse("$.spec.version").unwrap();
        let at = query.select(&object).pop().unwrap();
        let denied = |rule| {
            let mut out = Out::default();
            out.push(rule, Severity::Deny, &at, "m".into());
            out
        };
        for rule in Rule::iter() {
            let after = ratchet(&object, &denied(rule), &object, denied(rule));
            let severity = after.found().next().unwrap().violation.severity;
            let want = if rule.compares_revisions() {
                Severity::Deny
            } else {
                Severity::Warn
            };
            assert_eq!(severity, want, "{rule}");
        }
        assert!(Rule::UpgradeSkipsMinor.compares_revisions());
        assert!(Rule::Downgrade.compares_revisions());
        assert!(Rule::VersionRemoved.compares_revisions());
        assert!(!Rule::KonvoyVersionMismatch.compares_revisions());
    }

    #[test]
    fn an_unreadable_field_is_never_unchanged() {
        let empty = json!({"spec": {}});
        let set = json!({"spec": {"version": "v1.5.6"}});
        // Two failed lookups are not "the same value".
        assert!(!still_so(
            Rule::KonvoyUnsupported,
            &empty,
            &empty,
            "/spec/version"
        ));
        assert!(!still_so(
            Rule::KonvoyUnsupported,
            &set,
            &empty,
            "/spec/version"
        ));
        assert!(!still_so(
            Rule::KonvoyUnsupported,
            &empty,
            &set,
            "/spec/version"
        ));
        assert!(still_so(
            Rule::KonvoyUnsupported,
            &set,
            &set,
            "/spec/version"
        ));
        let upgraded = json!({"spec": {"version": "v1.5.7"}});
        assert!(still_so(
            Rule::KonvoyUnsupported,
            &set,
            &upgraded,
            "/spec/version"
        ));
        assert!(
            !still_so(
                Rule::KbaKubernetesMismatch,
                &set,
                &upgraded,
                "/spec/version"
            ),
            "only a product version moves forward"
        );
    }
}
