//! Typed versions, parsed once at the edge.
//!
//! Cluster specs in the wild carry `v1.8.5`, `1.20.13+d2iq.2`, `1.21.3+fips.1`; the support
//! policy speaks in minors (`1.8`) and bounds (`1.18.x`, `1.15.4`). Everything downstream of
//! this module works on these types, never on strings.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionError {
    #[error("empty version")]
    Empty,
    #[error("`{0}` is not a version: expected MAJOR.MINOR.PATCH, e.g. 1.20.13")]
    NotAVersion(String),
    #[error("`{0}` is not a MAJOR.MINOR version, e.g. 1.8")]
    NotAMinor(String),
    #[error("`{0}` is not a version bound: expected 1.18, 1.18.x or a full version such as 1.15.4")]
    NotABound(String),
    #[error(
        "`{0}` is a wildcard, not a concrete version: a cluster runs one exact version, e.g. 1.20.13"
    )]
    Wildcard(String),
}

/// A `MAJOR.MINOR` pair: the unit in which the policy grants support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minor {
    pub major: u64,
    pub minor: u64,
}

impl Minor {
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Minor {
    type Err = VersionError;

    /// Accepts `1.8`, `v1.8`, and — because users paste them — `1.8.x` and `1.8.5`
    /// (the patch is dropped).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = strip_v(trim(s));
        if trimmed.is_empty() {
            return Err(VersionError::Empty);
        }
        let mut parts = ascii_split(trimmed, b'.');
        let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
            return Err(VersionError::NotAMinor(s.to_string()));
        };
        let rest_ok = match parts.next() {
            None => true,
            Some(p) => (p == "x" || p == "X" || numeric(p).is_some()) && parts.next().is_none(),
        };
        match (numeric(major), numeric(minor), rest_ok) {
            (Some(major), Some(minor), true) => Ok(Minor { major, minor }),
            _ => Err(VersionError::NotAMinor(s.to_string())),
        }
    }
}

/// A concrete version as found in a cluster spec. Build metadata is dropped because it never
/// changes support (`1.16.9+d2iq.2` is 1.16.9); a pre-release is kept because it does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(semver::Version);

impl Version {
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version(semver::Version::new(major, minor, patch))
    }

    pub fn minor(&self) -> Minor {
        Minor::new(self.0.major, self.0.minor)
    }

    pub fn major(&self) -> u64 {
        self.0.major
    }

    pub fn patch(&self) -> u64 {
        self.0.patch
    }

    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }

    /// `(major, minor, patch)`: ranges are checked on the release a pre-release leads to, so
    /// `1.18.0-rc.1` sits inside `1.18.x`; the pre-release itself is flagged by its own rule.
    pub fn triple(&self) -> (u64, u64, u64) {
        (self.0.major, self.0.minor, self.0.patch)
    }

    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = strip_v(trim(s));
        if let Some(v) = plain_triple(trimmed) {
            return Ok(v);
        }
        if trimmed.is_empty() {
            return Err(VersionError::Empty);
        }
        if trimmed.split(['-', '+']).next().is_some_and(|core| {
            core.split('.')
                .any(|p| p.eq_ignore_ascii_case("x") || p == "*")
        }) {
            return Err(VersionError::Wildcard(s.to_string()));
        }
        match semver::Version::parse(trimmed) {
            Ok(mut v) => {
                v.build = semver::BuildMetadata::EMPTY;
                Ok(Version(v))
            }
            Err(_) => Err(VersionError::NotAVersion(s.to_string())),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp_precedence(&other.0)
    }
}

/// One end of a supported Kubernetes range. `1.18` and `1.18.x` cover every patch of the minor;
/// a full version (`1.15.4`, from the release notes) is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    AnyPatch(Minor),
    Exact { major: u64, minor: u64, patch: u64 },
}

impl Bound {
    pub fn minor(&self) -> Minor {
        match *self {
            Bound::AnyPatch(m) => m,
            Bound::Exact { major, minor, .. } => Minor::new(major, minor),
        }
    }

    /// The smallest `(major, minor, patch)` this bound admits when used as a minimum.
    pub fn lowest(&self) -> (u64, u64, u64) {
        match *self {
            Bound::AnyPatch(m) => (m.major, m.minor, 0),
            Bound::Exact {
                major,
                minor,
                patch,
            } => (major, minor, patch),
        }
    }

    pub fn admits_as_min(&self, v: &Version) -> bool {
        v.triple() >= self.lowest()
    }

    pub fn admits_as_max(&self, v: &Version) -> bool {
        match *self {
            Bound::AnyPatch(m) => v.minor() <= m,
            Bound::Exact {
                major,
                minor,
                patch,
            } => v.triple() <= (major, minor, patch),
        }
    }

    /// Whether `self` as a minimum lies at or below `max` as a maximum.
    pub fn le_as_range(&self, max: &Bound) -> bool {
        let lo = self.lowest();
        match *max {
            Bound::AnyPatch(m) => (lo.0, lo.1) <= (m.major, m.minor),
            Bound::Exact {
                major,
                minor,
                patch,
            } => lo <= (major, minor, patch),
        }
    }
}

impl FromStr for Bound {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = strip_v(s.trim());
        if trimmed.is_empty() {
            return Err(VersionError::Empty);
        }
        let parts: Vec<&str> = trimmed.split('.').collect();
        let bad = || VersionError::NotABound(s.to_string());
        match parts.as_slice() {
            [ma, mi] => Ok(Bound::AnyPatch(Minor::new(
                numeric(ma).ok_or_else(bad)?,
                numeric(mi).ok_or_else(bad)?,
            ))),
            [ma, mi, p] if p.eq_ignore_ascii_case("x") => Ok(Bound::AnyPatch(Minor::new(
                numeric(ma).ok_or_else(bad)?,
                numeric(mi).ok_or_else(bad)?,
            ))),
            [ma, mi, p] => Ok(Bound::Exact {
                major: numeric(ma).ok_or_else(bad)?,
                minor: numeric(mi).ok_or_else(bad)?,
                patch: numeric(p).ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::AnyPatch(m) => write!(f, "{m}.x"),
            Bound::Exact {
                major,
                minor,
                patch,
            } => write!(f, "{major}.{minor}.{patch}"),
        }
    }
}

fn strip_v(s: &str) -> &str {
    s.strip_prefix(['v', 'V']).unwrap_or(s)
}

/// `s.trim()`, without looking at every character when the ends are plainly not blank.
pub(crate) fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `s.split(sep)` for an ASCII separator, by a byte search: on strings as short as versions,
/// setting up `str::split`'s character searcher costs more than the search.
pub(crate) fn ascii_split(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        Some(match split_once_ascii(r, sep) {
            Some((piece, after)) => {
                rest = Some(after);
                piece
            }
            None => {
                rest = None;
                r
            }
        })
    })
}

/// `s.split_once(sep)` for an ASCII separator, by a byte search.
pub(crate) fn split_once_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii());
    // An ASCII byte never occurs inside a multi-byte character: both sides are whole `str`s.
    let i = s.bytes().position(|b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// `MAJOR.MINOR.PATCH` and nothing else, as nearly every spec writes it: read without the
/// general parser, which costs more than the rest of an evaluation's version handling. Anything
/// else (a pre-release, build metadata, a wildcard, an error) is left to it.
fn plain_triple(s: &str) -> Option<Version> {
    let mut parts = ascii_split(s, b'.');
    let major = numeric(parts.next()?)?;
    let minor = numeric(parts.next()?)?;
    let patch = numeric(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(Version::new(major, minor, patch))
}

/// A decimal component without sign or leading zeros (other than `0` itself), as semver demands.
fn numeric(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    /// The general parser, as `from_str` ran before the plain path existed.
    fn general(s: &str) -> Option<semver::Version> {
        let mut v = semver::Version::parse(strip_v(s.trim())).ok()?;
        v.build = semver::BuildMetadata::EMPTY;
        Some(v)
    }

    #[test]
    fn the_plain_path_reads_what_the_general_parser_reads() {
        for s in [
            "1.18.13",
            "v1.6.3",
            "0.0.0",
            "10.200.3000",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "1..3",
            ".1.2",
            "1.2.",
            "1.2.3-rc.1",
            "1.2.3+d2iq.2",
            "1.2.x",
            "1.x.3",
            "a.b.c",
            "1.2.3 ",
            " 1.2.3",
            "V1.2.3",
            "vv1.2.3",
            "1.2.-3",
            "1.2.+3",
            "9999999999999999999.0.0",
            "18446744073709551615.1.1",
            "18446744073709551616.1.1",
            "99999999999999999999.1.1",
            "1.2.3\u{0}",
            "１.2.3",
            "",
        ] {
            let fast = plain_triple(strip_v(s.trim()));
            if let Some(v) = &fast {
                assert_eq!(Some(v.as_semver().clone()), general(s), "{s:?}");
            }
            let parsed = s.parse::<Version>().ok().map(|v| v.as_semver().clone());
            let wildcard = strip_v(s.trim()).split(['-', '+']).next().is_some_and(|c| {
                c.split('.')
                    .any(|p| p.eq_ignore_ascii_case("x") || p == "*")
            });
            if !wildcard {
                assert_eq!(parsed, general(s), "{s:?}");
            }
        }
        assert!(
            plain_triple("1.18.13").is_some(),
            "the usual case takes the plain path"
        );
    }

    #[test]
    fn byte_splits_and_trim_agree_with_str() {
        for (text, sep) in [
            ("1.2.3", '.'),
            ("", '.'),
            (".a..b.", '.'),
            ("é.ü.", '.'),
            ("a-b", '-'),
        ] {
            let ours: Vec<&str> = ascii_split(text, sep as u8).collect();
            assert_eq!(ours, text.split(sep).collect::<Vec<_>>(), "{text:?}");
            assert_eq!(
                split_once_ascii(text, sep as u8),
                text.split_once(sep),
                "{text:?}"
            );
        }
        for text in [
            "",
            " ",
            " 1.2 ",
            "1.2",
            "\t1.2\n",
            "1.2\u{a0}",
            "\u{2003}1.2",
            "é",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
        assert!(
            plain_triple("18446744073709551616.1.1").is_none(),
            "past u64::MAX goes the long way, which refuses it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_leniently() {
        let cases: &[(&str, (u64, u64, u64), bool)] = &[
            ("1.20.13", (1, 20, 13), false),
            ("v1.8.5", (1, 8, 5), false),
            ("V1.8.5", (1, 8, 5), false),
            (" 1.20.6 ", (1, 20, 6), false),
            ("1.16.9+d2iq.2", (1, 16, 9), false),
            ("1.21.3+fips.1", (1, 21, 3), false),
            ("v1.8.0-rc.1", (1, 8, 0), true),
            ("1.16.0-beta.0+d2iq", (1, 16, 0), true),
        ];
        for (input, triple, pre) in cases {
            let v: Version = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(v.triple(), *triple, "{input}");
            assert_eq!(v.is_prerelease(), *pre, "{input}");
        }
    }

    #[test]
    fn build_metadata_does_not_change_identity() {
        let a: Version = "1.16.9+d2iq.2".parse().unwrap();
        let b: Version = "1.16.9".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "1.16.9");
    }

    #[test]
    fn bad_versions_are_rejected_with_reason() {
        assert_eq!("".parse::<Version>(), Err(VersionError::Empty));
        assert_eq!("  ".parse::<Version>(), Err(VersionError::Empty));
        assert!(matches!(
            "latest".parse::<Version>(),
            Err(VersionError::NotAVersion(_))
        ));
        assert!(matches!(
            "1.20".parse::<Version>(),
            Err(VersionError::NotAVersion(_))
        ));
        assert!(matches!(
            "1.20.x".parse::<Version>(),
            Err(VersionError::Wildcard(_))
        ));
        assert!(matches!(
            "1.20.*".parse::<Version>(),
            Err(VersionError::Wildcard(_))
        ));
        assert!(matches!(
            "1.2o.1".parse::<Version>(),
            Err(VersionError::NotAVersion(_))
        ));
        assert!(matches!(
            "1.020.1".parse::<Version>(),
            Err(VersionError::NotAVersion(_))
        ));
        assert!(matches!(
            "１.２０.１".parse::<Version>(),
            Err(VersionError::NotAVersion(_))
        ));
        assert!(matches!(
            "vv1.2.3".parse::<Version>(),
            Err(VersionError::NotAVersion(_))
        ));
        let e = "latest".parse::<Version>().unwrap_err().to_string();
        assert!(e.contains("latest") && e.contains("1.20.13"), "{e}");
    }

    #[test]
    fn pre_release_orders_before_release() {
        let rc: Version = "1.8.0-rc.1".parse().unwrap();
        let ga: Version = "1.8.0".parse().unwrap();
        assert!(rc < ga);
    }

    #[test]
    fn minors_parse() {
        assert_eq!("1.8".parse::<Minor>(), Ok(Minor::new(1, 8)));
        assert_eq!("v1.8".parse::<Minor>(), Ok(Minor::new(1, 8)));
        assert_eq!("1.8.x".parse::<Minor>(), Ok(Minor::new(1, 8)));
        assert_eq!("1.8.5".parse::<Minor>(), Ok(Minor::new(1, 8)));
        assert!("1".parse::<Minor>().is_err());
        assert!("1.8.5.1".parse::<Minor>().is_err());
        assert!("one.eight".parse::<Minor>().is_err());
        assert_eq!("".parse::<Minor>(), Err(VersionError::Empty));
        assert!(Minor::new(1, 10) > Minor::new(1, 9));
        assert!(Minor::new(2, 0) > Minor::new(1, 10));
    }

    #[test]
    fn bounds_cover_both_sides() {
        let min: Bound = "1.18.x".parse().unwrap();
        let max: Bound = "1.20.x".parse().unwrap();
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(!min.admits_as_min(&v("1.17.99")));
        assert!(min.admits_as_min(&v("1.18.0")));
        assert!(
            min.admits_as_min(&v("1.18.0-rc.1")),
            "pre-release of a minor inside the range"
        );
        assert!(max.admits_as_max(&v("1.20.99")));
        assert!(!max.admits_as_max(&v("1.21.0")));

        let exact_min: Bound = "1.15.4".parse().unwrap();
        assert!(!exact_min.admits_as_min(&v("1.15.3")));
        assert!(exact_min.admits_as_min(&v("1.15.4")));
        let exact_max: Bound = "1.17.8".parse().unwrap();
        assert!(exact_max.admits_as_max(&v("1.17.8")));
        assert!(!exact_max.admits_as_max(&v("1.17.9")));

        assert_eq!(
            "1.18".parse::<Bound>(),
            Ok(Bound::AnyPatch(Minor::new(1, 18)))
        );
        assert_eq!(
            "v1.18.X".parse::<Bound>(),
            Ok(Bound::AnyPatch(Minor::new(1, 18)))
        );
        assert!("1.18.y".parse::<Bound>().is_err());
        assert!("1".parse::<Bound>().is_err());
        assert!("".parse::<Bound>().is_err());
    }

    #[test]
    fn range_ordering() {
        let b = |s: &str| s.parse::<Bound>().unwrap();
        assert!(b("1.18.x").le_as_range(&b("1.20.x")));
        assert!(b("1.20.x").le_as_range(&b("1.20.x")));
        assert!(b("1.20.3").le_as_range(&b("1.20.x")));
        assert!(!b("1.21.x").le_as_range(&b("1.20.x")));
        assert!(b("1.15.4").le_as_range(&b("1.15.4")));
        assert!(!b("1.15.5").le_as_range(&b("1.15.4")));
        assert!(!b("1.16.x").le_as_range(&b("1.15.9")));
    }
}
