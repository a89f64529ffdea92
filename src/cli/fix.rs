//! `check --fix`: writes the one suggested combination (see [`crate::engine::fix`]) into the
//! checked files, or prints it as a unified diff with `--fix=diff`.
//!
//! Only the version scalars change, each by replacing its own bytes (found by
//! [`crate::cli::fix_spans`]) in its own quoting style; comments, key order and formatting stay.
//! A rewrite is decoded again and must equal the old objects with exactly those values changed,
//! or the file is left alone. Placeholders (`<patch>`, `<kba version>`) are never written: they
//! are listed for a person to choose.

use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::check::{CheckResult, Report};
use crate::cli::fix_spans::{self, written};
use crate::cli::input::{self, read_input};
use crate::engine::fix::Change;

/// How `--fix` applies the combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FixMode {
    /// Rewrite the files in place.
    Write,
    /// Print a unified diff; touch nothing.
    Diff,
}

/// What applying did.
#[derive(Debug, Default)]
pub struct Applied {
    /// One line per change: applied, left to a person, or not applicable.
    pub notes: String,
    /// The unified diff (`--fix=diff`).
    pub diff: String,
    /// A file could not be read, verified or written.
    pub failed: bool,
}

/// One exact change in one file.
struct Edit<'r> {
    result: &'r CheckResult,
    change: &'r Change,
}

/// Applies the exact changes of every result, file by file in report order.
pub fn apply(report: &Report, mode: FixMode) -> Applied {
    let mut applied = Applied::default();
    let mut files: Vec<(&str, Vec<Edit>)> = Vec::new();
    for r in &report.results {
        for c in &r.fix {
            if c.manual {
                note(
                    &mut applied,
                    "manual",
                    r,
                    c,
                    "choose the exact version and set it",
                );
                continue;
            }
            let file = r.origin.file.as_str();
            let edit = Edit {
                result: r,
                change: c,
            };
            match files.iter_mut().find(|(f, _)| *f == file) {
                Some((_, edits)) => edits.push(edit),
                None => files.push((file, vec![edit])),
            }
        }
    }
    for (file, edits) in files {
        fix_file(&mut applied, file, &edits, mode);
    }
    applied
}

fn note(applied: &mut Applied, what: &str, r: &CheckResult, c: &Change, how: &str) {
    let _ = writeln!(
        applied.notes,
        "{what:<8} {} {} ({}): {}: {} -> {}: {how}",
        r.object.kind, r.object.name, r.object.source, c.field, c.from, c.to
    );
}

fn fix_file(applied: &mut Applied, file: &str, edits: &[Edit], mode: FixMode) {
    let refuse = |applied: &mut Applied, why: String| {
        for e in edits {
            note(applied, "unfixed", e.result, e.change, &why);
        }
        applied.failed = true;
    };
    if file == "-" {
        return refuse(
            applied,
            "standard input cannot be rewritten; pass the file".into(),
        );
    }
    let text = match read_input(file) {
        Ok(t) => t,
        Err(e) => return refuse(applied, e.to_string()),
    };
    let (new, outcomes) = rewrite(&text, edits);
    if let Err(why) = verify(&text, &new, edits, &outcomes) {
        return refuse(applied, format!("{file} left as it was: {why}"));
    }
    for (e, outcome) in edits.iter().zip(&outcomes) {
        match outcome {
            Ok(()) => note(applied, "fix", e.result, e.change, "set"),
            Err(why) => note(
                applied,
                "manual",
                e.result,
                e.change,
                &format!("not rewritten, {why}: set it by hand"),
            ),
        }
    }
    if new == text {
        return;
    }
    match mode {
        FixMode::Diff => applied.diff.push_str(&unified_diff(file, &text, &new)),
        FixMode::Write => {
            if let Err(e) = std::fs::write(file, &new) {
                let _ = writeln!(applied.notes, "ERROR    {file}: cannot write: {e}");
                applied.failed = true;
            }
        }
    }
}

/// The text with each edit's scalar replaced, and per edit whether it was.
fn rewrite(text: &str, edits: &[Edit]) -> (String, Vec<Result<(), String>>) {
    let spans = fix_spans::spans(text);
    let mut outcomes = Vec::with_capacity(edits.len());
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for e in edits {
        let origin = &e.result.origin;
        let pointer = match origin.item {
            Some(i) => format!("/items/{i}{}", e.change.pointer),
            None => e.change.pointer.clone(),
        };
        outcomes.push(match spans.get(&(origin.document, pointer)) {
            None => Err("its value is not written at that path (an alias or a merge key)".into()),
            Some(Err(why)) => Err((*why).to_string()),
            Some(Ok(span)) if span.text != e.change.from => {
                Err("the file changed since it was checked".into())
            }
            Some(Ok(span)) if replacements.iter().any(|r| r.0 == span.start) => Ok(()),
            Some(Ok(span)) => {
                replacements.push((span.start, span.end, written(&e.change.to, span.style)));
                Ok(())
            }
        });
    }
    replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut new = text.to_string();
    for (start, end, with) in replacements {
        new.replace_range(start..end, &with);
    }
    (new, outcomes)
}

/// The rewrite decodes to the old objects with exactly the applied values changed.
fn verify(
    old: &str,
    new: &str,
    edits: &[Edit],
    outcomes: &[Result<(), String>],
) -> Result<(), String> {
    let (before, _) = input::parse("", old);
    let (after, errors) = input::parse("", new);
    if let Some(e) = errors.first() {
        return Err(format!("the rewrite does not decode ({e})"));
    }
    if before.len() != after.len() {
        return Err("the rewrite decodes to other objects".into());
    }
    for (b, a) in before.iter().zip(&after) {
        let mut expected = b.object.object.clone();
        for (e, _) in edits.iter().zip(outcomes).filter(|(_, o)| o.is_ok()) {
            let origin = &e.result.origin;
            if (origin.document, origin.item) != (b.object.document, b.object.item) {
                continue;
            }
            if let Some(v) = expected.pointer_mut(&e.change.pointer) {
                *v = Value::String(e.change.to.clone());
            }
        }
        if expected != a.object.object {
            return Err(format!(
                "document {} would change beyond the version values",
                b.object.document
            ));
        }
    }
    Ok(())
}

/// Lines of context around each change, as `diff -u` prints.
const CONTEXT: usize = 3;

/// A unified diff of two texts with the same lines but some changed in place (a scalar rewrite
/// never adds or removes a line break).
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    if a.len() != b.len() {
        // Not a scalar rewrite; one hunk of everything keeps the output a valid diff.
        return format!(
            "--- {path}\n+++ {path}\n@@ -1,{} +1,{} @@\n{}{}",
            a.len(),
            b.len(),
            lines("-", &a),
            lines("+", &b)
        );
    }
    let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {path}\n+++ {path}\n");
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        let (start, end) = (i.saturating_sub(CONTEXT), (i + CONTEXT + 1).min(a.len()));
        match hunks.last_mut() {
            Some(h) if start <= h.1 => h.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    for (start, end) in hunks {
        let len = end - start;
        let _ = writeln!(out, "@@ -{},{len} +{},{len} @@", start + 1, start + 1);
        let mut i = start;
        while i < end {
            if a[i] == b[i] {
                out.push_str(&lines(" ", &a[i..=i]));
                i += 1;
                continue;
            }
            let run = (i..end).take_while(|&j| a[j] != b[j]).count();
            out.push_str(&lines("-", &a[i..i + run]));
            out.push_str(&lines("+", &b[i..i + run]));
            i += run;
        }
    }
    out
}

fn lines(prefix: &str, ls: &[&str]) -> String {
    let mut out = String::new();
    for l in ls {
        out.push_str(prefix);
        out.push_str(l);
        if !l.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
    out
}

#[cfg(test)]
#[path = "fix_tests.rs"]
mod tests;
