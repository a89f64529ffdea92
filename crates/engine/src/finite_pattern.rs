//! `search()` and `match()` patterns whose matches are a short list of strings, tested as
//! string comparisons instead of running the regex.
//!
//! The built-in targets used to find the Kubernetes Base Addons and Kommander entries with
//! `search(@.configRepository, '<repo>([.]git)?/?$')`: a string matches when it ends with one of
//! four suffixes. Running the regex engine for that was the largest single cost of evaluating a
//! KonvoyCluster (docs/performance.md). They now use `repository()` (which also normalises case
//! and refs, [`crate::repository`]); policies' own targets keep such patterns. The pattern is read with `regex-syntax`, the parser of
//! the `regex` crate that would otherwise run it, in the same text and flags that
//! `jsonpath_functions` compiles, so the two cannot disagree on what it means; any pattern that
//! is not a finite set of strings (a repetition, a class of several characters, a look-around
//! other than the final `$`) keeps the regex.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// More strings than this and the regex is cheaper to keep.
const MAX_STRINGS: usize = 32;
/// Nor are they ever longer than this in all: a pattern is expanded when a policy is compiled.
const MAX_BYTES: usize = 4096;

/// How a finite pattern is tested.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Finite {
    /// `search(s, p)` where `p` ends in `$`: `s` ends with one of these.
    Suffix(Vec<String>),
    /// `match(s, p)`: `s` is one of these.
    Exact(Vec<String>),
}

impl Finite {
    /// `search(_, pattern)`, when it is a finite set of strings anchored at the end.
    pub(crate) fn search(pattern: &str) -> Option<Finite> {
        let hir = regex_syntax::parse(&format!("(?R)({pattern})")).ok()?;
        let HirKind::Concat(parts) = unwrap_capture(&hir).kind() else {
            return None;
        };
        let (last, before) = parts.split_last()?;
        if *last.kind() != HirKind::Look(Look::End) {
            return None;
        }
        let strings = concat(before)?;
        Some(Finite::Suffix(utf8(strings)?))
    }

    /// `match(_, pattern)`, when it is a finite set of strings.
    pub(crate) fn full(pattern: &str) -> Option<Finite> {
        let hir = regex_syntax::parse(&format!("(?R)^({pattern})$")).ok()?;
        let HirKind::Concat(parts) = hir.kind() else {
            return None;
        };
        let [start, inner, end] = parts.as_slice() else {
            return None;
        };
        if *start.kind() != HirKind::Look(Look::Start) || *end.kind() != HirKind::Look(Look::End) {
            return None;
        }
        Some(Finite::Exact(utf8(strings(inner)?)?))
    }

    pub(crate) fn holds(&self, s: &str) -> bool {
        match self {
            Finite::Suffix(ends) => ends.iter().any(|e| s.ends_with(e.as_str())),
            Finite::Exact(all) => all.iter().any(|e| s == e),
        }
    }
}

fn unwrap_capture(h: &Hir) -> &Hir {
    match h.kind() {
        HirKind::Capture(c) => unwrap_capture(&c.sub),
        _ => h,
    }
}

fn utf8(strings: Vec<Vec<u8>>) -> Option<Vec<String>> {
    strings
        .into_iter()
        .map(|s| String::from_utf8(s).ok())
        .collect()
}

/// Every string `h` matches, if they are few; `None` otherwise.
fn strings(h: &Hir) -> Option<Vec<Vec<u8>>> {
    let out = match h.kind() {
        HirKind::Empty => vec![Vec::new()],
        HirKind::Literal(l) => vec![l.0.to_vec()],
        HirKind::Class(c) => chars(c)?,
        HirKind::Capture(c) => strings(&c.sub)?,
        HirKind::Concat(parts) => concat(parts)?,
        HirKind::Alternation(alts) => {
            let mut all = Vec::new();
            for a in alts {
                all.extend(strings(a)?);
            }
            all
        }
        HirKind::Repetition(r) => {
            // Checked before expanding: `a{4294967295}` is one string, four gigabytes long.
            let max = r.max.filter(|m| *m as usize <= MAX_STRINGS)?;
            let once = strings(&r.sub)?;
            let mut all = Vec::new();
            let mut n_times = vec![Vec::new()];
            for n in 0..=max {
                if n >= r.min {
                    all.extend(n_times.iter().cloned());
                }
                if n < max {
                    n_times = product(&n_times, &once)?;
                }
                if all.len() > MAX_STRINGS {
                    return None;
                }
            }
            all
        }
        HirKind::Look(_) => return None,
    };
    (out.len() <= MAX_STRINGS && bytes(&out) <= MAX_BYTES).then_some(out)
}

fn bytes(strings: &[Vec<u8>]) -> usize {
    strings.iter().map(Vec::len).sum()
}

fn concat(parts: &[Hir]) -> Option<Vec<Vec<u8>>> {
    parts
        .iter()
        .try_fold(vec![Vec::new()], |acc, p| product(&acc, &strings(p)?))
}

fn product(heads: &[Vec<u8>], tails: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if heads.len().saturating_mul(tails.len()) > MAX_STRINGS
        || (bytes(heads) * tails.len()).saturating_add(bytes(tails) * heads.len()) > MAX_BYTES
    {
        return None;
    }
    Some(
        heads
            .iter()
            .flat_map(|h| tails.iter().map(move |t| [h.as_slice(), t].concat()))
            .collect(),
    )
}

/// The characters a class matches, as UTF-8, if they are few; `None` for any other class.
fn chars(c: &Class) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    match c {
        Class::Unicode(u) => {
            for r in u.ranges() {
                if out.len() + (r.end() as usize - r.start() as usize) >= MAX_STRINGS {
                    return None;
                }
                out.extend((r.start()..=r.end()).map(|ch| ch.to_string().into_bytes()));
            }
        }
        Class::Bytes(b) => {
            for r in b.ranges() {
                if out.len() + usize::from(r.end() - r.start()) >= MAX_STRINGS {
                    return None;
                }
                out.extend((r.start()..=r.end()).map(|byte| vec![byte]));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonpath_functions::{match_regex, search_regex};

    const HAYSTACKS: &[&str] = &[
        "",
        "/",
        ".git",
        "kubernetes-base-addons",
        "kubernetes-base-addons/",
        "kubernetes-base-addons.git",
        "kubernetes-base-addons.git/",
        "kubernetes-base-addons.git//",
        "kubernetes-base-addonsXgit",
        "https://github.com/mesosphere/kubernetes-base-addons",
        "https://github.com/mesosphere/kubernetes-base-addons.git",
        "https://github.com/mesosphere/kubernetes-base-addons-fork",
        "https://github.com/mesosphere/kubernetes-base-addons\n",
        "https://github.com/mesosphere/kubernetes-base-addons\r\n",
        "kubernetes-base-addons/x",
        "KUBERNETES-BASE-ADDONS",
        "abc",
        "ab",
        "abcabc",
        "a.c",
        "é",
        "xé",
    ];

    const PATTERNS: &[&str] = &[
        "kubernetes-base-addons([.]git)?/?$",
        "kubeaddons-kommander([.]git)?/?$",
        "kubernetes-base-addons",
        "base-addons$",
        "^kubernetes-base-addons$",
        "(abc|ab)$",
        "(abc){1,2}$",
        "a.c$",
        "a[.]c$",
        "(?i)abc$",
        "[a]b$",
        "é$",
        "\\.git$",
        "a*$",
        "$",
        "ab|c$",
        "ab$|c$",
        "[unclosed",
    ];

    #[test]
    fn search_agrees_with_the_regex_on_every_pattern_it_takes() {
        let mut taken = 0;
        for p in PATTERNS {
            let Some(f) = Finite::search(p) else { continue };
            taken += 1;
            let re = search_regex(p).expect("a finite pattern compiles");
            for h in HAYSTACKS {
                assert_eq!(f.holds(h), re.is_match(h), "search({h:?}, {p:?})");
            }
        }
        assert!(taken >= 8, "most of the table is finite: {taken}");
    }

    #[test]
    fn match_agrees_with_the_regex_on_every_pattern_it_takes() {
        let mut taken = 0;
        for p in PATTERNS
            .iter()
            .chain(&["abc", "ab|abc", "a(b|c)?", "(?i)x"])
        {
            let Some(f) = Finite::full(p) else { continue };
            taken += 1;
            let re = match_regex(p).expect("a finite pattern compiles");
            for h in HAYSTACKS.iter().chain(&["ac", "abc", "ab"]) {
                assert_eq!(f.holds(h), re.is_match(h), "match({h:?}, {p:?})");
            }
        }
        assert!(taken >= 5, "{taken}");
    }

    #[test]
    fn the_built_in_repository_test_is_four_suffixes() {
        let f = Finite::search("kubernetes-base-addons([.]git)?/?$").expect("finite");
        let Finite::Suffix(mut ends) = f else {
            panic!("a search is a suffix test")
        };
        ends.sort();
        assert_eq!(
            ends,
            [
                "kubernetes-base-addons",
                "kubernetes-base-addons.git",
                "kubernetes-base-addons.git/",
                "kubernetes-base-addons/"
            ]
        );
    }

    #[test]
    fn what_is_not_a_short_list_keeps_the_regex() {
        for p in [
            "a*$",
            "a.c$",
            "\\w$",
            "base-addons",
            "ab|c$",
            "[unclosed",
            "(a|b){6}$",
            "a{4294967295}$",
            "a{1000000}$",
            "(abcdefghijklmnopqrstuvwxyz0123456789){33}$",
            "(abcdefghijklmnopqrstuvwxyz0123456789){2}(abcdefghijklmnopqrstuvwxyz0123456789|b){5}$",
        ] {
            assert_eq!(Finite::search(p), None, "{p:?}");
        }
    }

    #[test]
    fn a_repetition_expands_to_its_bound_and_no_further() {
        let Some(Finite::Suffix(ends)) = Finite::search("(a|b|c|d|e){2}$") else {
            panic!("25 strings are few enough")
        };
        assert_eq!(ends.len(), 25);
        let Some(Finite::Exact(all)) = Finite::full("x{0,3}") else {
            panic!("finite")
        };
        assert_eq!(all, ["", "x", "xx", "xxx"]);
    }
}
