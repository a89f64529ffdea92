//! The support window: which of a policy's releases are supported on a given day, and why.

use std::fmt;

use jiff::ToSpan;
use jiff::civil::Date;

use crate::policy::{Policy, Release};
use crate::version::Minor;

/// Why a release is, or is not, supported on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseSupport {
    Supported,
    /// Supported, but the oldest minor in the window: it leaves support at the next release.
    OldestInWindow,
    /// Supported until an explicit end-of-support date that is near.
    EndingOn(Date),
    /// Released, but older than the window.
    OutOfWindow,
    /// Its explicit end-of-support date has passed.
    EndedOn(Date),
    /// Its release date lies ahead.
    NotYetReleased(Date),
}

impl ReleaseSupport {
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            ReleaseSupport::Supported
                | ReleaseSupport::OldestInWindow
                | ReleaseSupport::EndingOn(_)
        )
    }
}

impl fmt::Display for ReleaseSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseSupport::Supported => f.write_str("supported"),
            ReleaseSupport::OldestInWindow => f.write_str("supported (oldest in window)"),
            ReleaseSupport::EndingOn(d) => write!(f, "supported until {d}"),
            ReleaseSupport::OutOfWindow => f.write_str("out of the support window"),
            ReleaseSupport::EndedOn(d) => write!(f, "support ended on {d}"),
            ReleaseSupport::NotYetReleased(d) => write!(f, "not released until {d}"),
        }
    }
}

impl Policy {
    /// The newest released minor on `today`.
    pub fn latest(&self, today: Date) -> Option<&Release> {
        self.releases.iter().find(|r| r.is_released(today))
    }

    pub fn support_of(&self, release: &Release, today: Date) -> ReleaseSupport {
        if let Some(d) = release.release_date
            && d > today
        {
            return ReleaseSupport::NotYetReleased(d);
        }
        if let Some(eos) = release.end_of_support {
            if today >= eos {
                return ReleaseSupport::EndedOn(eos);
            }
            let warn_from = eos
                .checked_sub((self.nearing_end_days as i64).days())
                .unwrap_or(eos);
            return if today >= warn_from {
                ReleaseSupport::EndingOn(eos)
            } else {
                ReleaseSupport::Supported
            };
        }
        let rank = self
            .releases
            .iter()
            .filter(|r| r.is_released(today))
            .position(|r| r.minor == release.minor)
            .unwrap_or(usize::MAX);
        if rank >= self.support_window {
            ReleaseSupport::OutOfWindow
        } else if rank + 1 == self.support_window && self.support_window > 1 {
            ReleaseSupport::OldestInWindow
        } else {
            ReleaseSupport::Supported
        }
    }

    /// The supported minors on `today`, newest first.
    pub fn supported(&self, today: Date) -> Vec<Minor> {
        self.releases
            .iter()
            .filter(|r| self.support_of(r, today).is_supported())
            .map(|r| r.minor)
            .collect()
    }

    /// `N-2 of latest 1.8`, for messages.
    pub fn window_text(&self, today: Date) -> String {
        let n = match self.support_window {
            1 => "N".to_string(),
            w => format!("N-{}", w - 1),
        };
        match self.latest(today) {
            Some(l) => format!("{n} of latest {}", l.minor),
            None => n,
        }
    }

    /// The first day after `today` on which some release's support can change: a release date,
    /// an end-of-support date, or the start of its nearing-end warning. The controller requeues
    /// for it instead of polling.
    pub fn next_transition(&self, today: Date) -> Option<Date> {
        self.releases
            .iter()
            .flat_map(|r| {
                let warn = r
                    .end_of_support
                    .and_then(|e| e.checked_sub((self.nearing_end_days as i64).days()).ok());
                [r.release_date, r.end_of_support, warn]
            })
            .flatten()
            .filter(|d| *d > today)
            .min()
    }
}
