//! The release-tag grammar shared by Kubernetes Base Addons and kubeaddons-kommander:
//! `<channel>-<kubernetes MAJOR.MINOR>-<semver>`, e.g. `stable-1.20-4.4.0`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::version::{Minor, Version, split_once_ascii, trim};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    Stable,
    /// Release candidates and alphas.
    Testing,
    Untested,
}

impl Channel {
    pub fn is_prerelease(&self) -> bool {
        !matches!(self, Channel::Stable)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Stable => "stable",
            Channel::Testing => "testing",
            Channel::Untested => "untested",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "`{0}` does not follow the tag grammar <channel>-<kubernetes MAJOR.MINOR>-<version> (e.g. stable-1.20-4.4.0)"
)]
pub struct TagError(pub String);

/// A parsed release tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReleaseTag {
    pub channel: Channel,
    /// The only Kubernetes minor this release deploys on.
    pub kubernetes: Minor,
    pub version: Version,
}

impl ReleaseTag {
    pub fn is_prerelease(&self) -> bool {
        self.channel.is_prerelease() || self.version.is_prerelease()
    }
}

impl FromStr for ReleaseTag {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TagError(s.to_string());
        let trimmed = trim(s);
        let Some((channel, k8s, rest)) = split_once_ascii(trimmed, b'-')
            .and_then(|(c, r)| split_once_ascii(r, b'-').map(|(k, v)| (c, k, v)))
        else {
            return Err(err());
        };
        let channel = match channel {
            "stable" => Channel::Stable,
            "testing" => Channel::Testing,
            "untested" => Channel::Untested,
            _ => return Err(err()),
        };
        // Exactly MAJOR.MINOR: legacy tags such as `stable-1.16.4-1.2.0` name a patch and are
        // not the grammar, and `stable-1.5-2.0.0` would be read as Kubernetes 1.5 — there is no
        // way to tell those apart from text alone, so only well-formed minors are accepted.
        if k8s.bytes().filter(|&b| b == b'.').count() != 1 {
            return Err(err());
        }
        let kubernetes: Minor = k8s.parse().map_err(|_| err())?;
        let version: Version = rest.parse().map_err(|_| err())?;
        Ok(ReleaseTag {
            channel,
            kubernetes,
            version,
        })
    }
}

impl fmt::Display for ReleaseTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.channel, self.kubernetes, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_tags_parse() {
        let t: ReleaseTag = "stable-1.20-4.4.0".parse().unwrap();
        assert_eq!(t.channel, Channel::Stable);
        assert_eq!(t.kubernetes, Minor::new(1, 20));
        assert_eq!(t.version, Version::new(4, 4, 0));
        assert!(!t.is_prerelease());

        let k: ReleaseTag = "stable-1.20-1.4.4".parse().unwrap();
        assert_eq!(k.version.minor(), Minor::new(1, 4));

        let odd: ReleaseTag = "testing-1.16-v1.1.0-beta.0".parse().unwrap();
        assert_eq!(odd.channel, Channel::Testing);
        assert_eq!(odd.kubernetes, Minor::new(1, 16));
        assert!(odd.version.is_prerelease());
        assert!(odd.is_prerelease());

        let u: ReleaseTag = "untested-1.19-3.2.0".parse().unwrap();
        assert!(u.is_prerelease());
        let rc: ReleaseTag = "stable-1.20-4.0.0-rc.1".parse().unwrap();
        assert!(rc.is_prerelease());
    }

    #[test]
    fn legacy_and_junk_tags_are_errors_not_panics() {
        for bad in [
            "master",
            "",
            "stable",
            "stable-1.20",
            "stable-1.15.6-4",
            "stable-1.16.4-1.2.0",
            "testing-2.0.0-3",
            "nightly-1.20-4.0.0",
            "stable-1.20-latest",
            "stable-x.y-4.0.0",
            "v3.2.0",
        ] {
            let e = bad.parse::<ReleaseTag>().expect_err(bad);
            assert!(e.to_string().contains("tag grammar"), "{bad}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["stable-1.20-4.4.0", "testing-1.16-1.1.0-beta.0"] {
            assert_eq!(s.parse::<ReleaseTag>().unwrap().to_string(), s);
        }
    }
}
