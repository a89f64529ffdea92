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
#[path = "version_plain_tests.rs"]
mod plain_tests;

#[cfg(test)]
#[path = "version_tests.rs"]
mod tests;
