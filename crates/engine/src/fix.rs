//! The one coherent fix: a single target combination per object, which every denial's message
//! points at, so that following one message never makes another one worse.
//!
//! The combination is built as the checks run, in their order:
//! - a product release in the support window: the object's own when it is supported (or not yet
//!   released, which is only a warning), otherwise the nearest supported one — the next one up,
//!   or the newest when none is above (the release the upgrade hint names);
//! - a Kubernetes version in that release's range: the object's own when it is in range,
//!   otherwise the nearest end of the range, with the release's default when the default is on
//!   that end's minor;
//! - KBA and Kommander refs re-pointed to that Kubernetes minor, and Kommander to the minor that
//!   pairs with that release.
//!
//! Pure, like the rest of the engine. A target whose exact value the policy cannot know (a patch
//! release, a KBA version) keeps a placeholder and is marked `manual`.

use serde::Serialize;

use crate::policy::{Policy, Release, ReleaseSupport};
use crate::tag::ReleaseTag;
use crate::targets::Located;
use crate::version::{Bound, Minor, Version};

use jiff::civil::Date;

/// One field of the suggested combination that differs from the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The normalized field path, as violations print it.
    pub field: String,
    /// The same location as an RFC 6901 JSON pointer, for rewriting the source.
    #[serde(skip)]
    pub pointer: String,
    pub from: String,
    pub to: String,
    /// `to` holds a placeholder (`<patch>`, `<kba version>`): someone has to pick the exact value.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
}

/// The Kubernetes version of the combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Suggested {
    /// The object's own version: already in range.
    Keep(Version),
    /// An exact version: the release's default, or an exact range end.
    Set(Version),
    /// Some patch of this minor (the range end is `1.17.x` and the default is elsewhere).
    AnyPatch(Minor),
}

impl Suggested {
    pub fn minor(&self) -> Minor {
        match self {
            Suggested::Keep(v) | Suggested::Set(v) => v.minor(),
            Suggested::AnyPatch(m) => *m,
        }
    }

    pub fn is_kept(&self) -> bool {
        matches!(self, Suggested::Keep(_))
    }

    /// `1.19.15`, or `1.17.<patch>`.
    pub fn text(&self) -> String {
        match self {
            Suggested::Keep(v) | Suggested::Set(v) => v.to_string(),
            Suggested::AnyPatch(m) => format!("{m}.<patch>"),
        }
    }
}

/// The combination for one object under one policy, as far as the checks have built it.
#[derive(Debug, Default)]
pub(crate) struct Plan<'p> {
    /// The release of the combination; `None` without a product version the policy can place.
    pub release: Option<&'p Release>,
    /// Whether that release differs from the object's own.
    pub moves_release: bool,
    pub kubernetes: Option<Suggested>,
    changes: Vec<Change>,
}

impl<'p> Plan<'p> {
    /// Records that the string at `at` should become `to`; a field is recorded once.
    pub fn record(&mut self, at: &Located, to: String, manual: bool) {
        let Some(from) = at.value.as_str() else {
            return;
        };
        if from == to || self.changes.iter().any(|c| c.pointer == at.pointer()) {
            return;
        }
        self.changes.push(Change {
            field: at.field(),
            pointer: at.pointer(),
            from: from.to_string(),
            to,
            manual,
        });
    }

    /// The Kubernetes minor of the combination, when the object has one.
    pub fn kubernetes_minor(&self) -> Option<Minor> {
        self.kubernetes.as_ref().map(Suggested::minor)
    }

    /// The Kubernetes version the combination changes to; `None` when it keeps the object's.
    pub fn kubernetes_change(&self) -> Option<String> {
        self.kubernetes
            .as_ref()
            .filter(|s| !s.is_kept())
            .map(Suggested::text)
    }

    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }
}

/// The release of the combination for an object on `current`.
pub(crate) fn nearest_release(policy: &Policy, today: Date, current: Minor) -> Option<&Release> {
    if let Some(r) = policy.release(current) {
        let support = policy.support_of(r, today);
        if support.is_supported() || matches!(support, ReleaseSupport::NotYetReleased(_)) {
            return Some(r);
        }
    }
    // Newest first; the nearest one up, else the newest (all are below).
    let supported = policy.supported(today);
    let minor = supported
        .iter()
        .rev()
        .find(|m| **m > current)
        .or(supported.first())?;
    policy.release(*minor)
}

/// The Kubernetes version of the combination for `current` under `release`.
pub(crate) fn kubernetes_in(release: &Release, current: &Version) -> Suggested {
    let (min, max) = (&release.kubernetes_min, &release.kubernetes_max);
    if min.admits_as_min(current) && max.admits_as_max(current) {
        return Suggested::Keep(current.clone());
    }
    let end = if min.admits_as_min(current) { max } else { min };
    match (&release.kubernetes_default, end) {
        (Some(d), _) if d.minor() == end.minor() => Suggested::Set(d.clone()),
        (
            _,
            Bound::Exact {
                major,
                minor,
                patch,
            },
        ) => Suggested::Set(Version::new(*major, *minor, *patch)),
        (_, Bound::AnyPatch(m)) => Suggested::AnyPatch(*m),
    }
}

/// The KBA ref of the combination; `None` when the tag already deploys on `kubernetes`.
pub(crate) fn kba_target(tag: &ReleaseTag, kubernetes: Minor) -> Option<String> {
    (tag.kubernetes != kubernetes).then(|| format!("{}-{kubernetes}-<kba version>", tag.channel))
}

/// The Kommander ref of the combination: tagged for `kubernetes`, of the `paired` minor (the
/// tag's own without a pairing); `None` when the tag already is.
pub(crate) fn kommander_target(
    tag: &ReleaseTag,
    kubernetes: Minor,
    paired: Option<Minor>,
) -> Option<String> {
    let kommander = paired.unwrap_or(tag.version.minor());
    (tag.kubernetes != kubernetes || tag.version.minor() != kommander)
        .then(|| format!("{}-{kubernetes}-{kommander}.<patch>", tag.channel))
}

/// `text` in the style of `raw`: with the `v` prefix when `raw` has one.
pub(crate) fn styled(raw: &str, text: &str) -> String {
    match raw.trim_start().chars().next() {
        Some(c @ ('v' | 'V')) => format!("{c}{text}"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
#[path = "fix_tests.rs"]
mod tests;
