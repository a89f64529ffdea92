//! `check --output junit`: the report as JUnit XML, which CI systems show as test results.
//!
//! One testcase per object (classname: its file, so CI groups by file), with a `<failure>` per
//! denial and warnings in `<system-out>`; objects no target matches are `<skipped>`; each input
//! error is a testcase with an `<error>`. Removed objects (`--previous`) are listed in the
//! suite's `<system-out>`: they are not tests of the new revision.
//!
//! Written by hand rather than with `quick-junit`: its model gives a testcase one status, so an
//! object with three denials could carry only one `<failure>`, and the README and
//! `tests/cli_inputs.rs` promise one per denial.

use std::fmt::Write as _;

use crate::cli::check::{CheckResult, ObjectRef, Report};
use crate::engine::Violation;
use crate::engine::rules::Severity;

const SUITE: &str = "supportgate check";

/// Renders the whole report as one `<testsuites>` document.
pub fn render(report: &Report) -> String {
    let failed = report
        .results
        .iter()
        .filter(|r| r.violations.iter().any(|v| v.severity == Severity::Deny))
        .count();
    let tests = report.results.len() + report.skipped.len() + report.errors.len();
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failed}\" errors=\"{}\" skipped=\"{}\"",
        report.errors.len(),
        report.skipped.len()
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"{SUITE}\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"{SUITE}\" {counts}>");
    for r in &report.results {
        result(&mut out, r);
    }
    for s in &report.skipped {
        open_case(&mut out, &s.object);
        let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(s.reason));
        out.push_str("    </testcase>\n");
    }
    for (i, e) in report.errors.iter().enumerate() {
        let _ = writeln!(
            out,
            "    <testcase classname=\"input\" name=\"input error {}\">\n      <error message=\"{}\">{}</error>\n    </testcase>",
            i + 1,
            escape(e),
            escape(e)
        );
    }
    if !report.removed.is_empty() {
        out.push_str("    <system-out>");
        for o in &report.removed {
            let line = format!("REMOVED {} {} ({})\n", o.kind, o.display_name(), o.source);
            out.push_str(&escape(&line));
        }
        out.push_str("</system-out>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn result(out: &mut String, r: &CheckResult) {
    open_case(out, &r.object);
    for v in r.violations.iter().filter(|v| v.severity == Severity::Deny) {
        let text = line(v);
        let _ = writeln!(
            out,
            "      <failure type=\"{}\" message=\"{}\">{}</failure>",
            v.rule.id(),
            escape(&text),
            escape(&text)
        );
    }
    let others: Vec<String> = r
        .violations
        .iter()
        .filter(|v| v.severity != Severity::Deny)
        .map(|v| format!("{} {} {}\n", v.severity, v.rule.id(), line(v)))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape(&others.concat())
        );
    }
    out.push_str("    </testcase>\n");
}

fn open_case(out: &mut String, o: &ObjectRef) {
    let file = o
        .source
        .rsplit_once('#')
        .map_or(o.source.as_str(), |(f, _)| f);
    let _ = writeln!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\">",
        escape(file),
        escape(&format!("{} {} ({})", o.kind, o.display_name(), o.source))
    );
}

fn line(v: &Violation) -> String {
    match &v.field {
        Some(f) => format!("{f}: {}", v.message),
        None => v.message.clone(),
    }
}

/// Escapes for both text and attributes, and drops the characters XML 1.0 cannot carry at all
/// (control characters from a hostile file name or message would make the document invalid).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[path = "junit_tests.rs"]
mod tests;
