//! Compiling a spec reports every problem, not just the first: a field that does not parse is
//! noted and read as absent, and compiling goes on to find the rest.

use std::fmt::Display;
use std::str::FromStr;

/// Parses `value` when the spec gives one. A value that does not parse is noted in `problems` as
/// `describe(value, error)` and read as absent.
pub(crate) fn parse_or_note<T: FromStr>(
    value: Option<&str>,
    problems: &mut Vec<String>,
    describe: impl FnOnce(&str, T::Err) -> String,
) -> Option<T> {
    let raw = value?;
    raw.parse()
        .map_err(|e| problems.push(describe(raw, e)))
        .ok()
}

/// [`parse_or_note`], noting `<field>: <error>`.
pub(crate) fn parse_field<T>(
    value: Option<&str>,
    field: impl Display,
    problems: &mut Vec<String>,
) -> Option<T>
where
    T: FromStr,
    T::Err: Display,
{
    parse_or_note(value, problems, |_, e| format!("{field}: {e}"))
}
