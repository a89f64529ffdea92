//! One event on a SupportPolicy when a change to the policies or exceptions flips objects:
//! "10,000 objects changed verdict", instead of leaving the flip to be pieced together from
//! 10,000 events on the objects (each still gets its one event per transition).
//!
//! Every recorded verdict carries the epoch of the policies it was made under
//! (`Shared::policy_changes`). A verdict that differs from the same object's verdict under an
//! older epoch is a flip caused by the change; flips are counted per policy and summarised
//! once every object has been re-evaluated under the current epoch.

use std::collections::BTreeMap;

use crate::engine::Verdict;

/// The summary event's reason.
pub const REASON: &str = "VerdictsChanged";

/// Objects whose verdict under one policy changed, by their new verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flips {
    pub allowed: usize,
    pub warned: usize,
    pub denied: usize,
}

impl Flips {
    fn add(&mut self, now: Verdict) {
        match now {
            Verdict::Allowed => self.allowed += 1,
            Verdict::Warned => self.warned += 1,
            Verdict::Denied => self.denied += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.allowed + self.warned + self.denied
    }

    /// The event's note.
    pub fn note(&self, epoch: u64) -> String {
        let n = self.total();
        let objects = if n == 1 { "object" } else { "objects" };
        format!(
            "re-evaluated after a change to the policies or exceptions (change {epoch}): {n} {objects} changed verdict under this policy: {} now denied, {} now warned, {} now allowed; the objects' own events and this policy's status name them",
            self.denied, self.warned, self.allowed
        )
    }
}

/// Per policy, the flips not yet summarised.
#[derive(Debug, Default)]
pub struct Pending(BTreeMap<String, Flips>);

impl Pending {
    /// Counts the flips between an object's verdicts before (under `old_epoch`) and now.
    /// Re-evaluations under the same epoch are edits of the object, not of the policies.
    pub fn record(
        &mut self,
        old_epoch: u64,
        before: &[(String, Verdict)],
        epoch: u64,
        now: &[(String, Verdict)],
    ) {
        if old_epoch >= epoch {
            return;
        }
        for (policy, verdict) in now {
            let was = before.iter().find(|(p, _)| p == policy).map(|(_, v)| *v);
            if was.is_some_and(|w| w != *verdict) {
                self.0.entry(policy.clone()).or_default().add(*verdict);
            }
        }
    }

    /// The summaries to publish, once every recorded verdict is from the current epoch.
    pub fn take_if_converged(
        &mut self,
        mut epochs: impl Iterator<Item = u64>,
        current: u64,
    ) -> BTreeMap<String, Flips> {
        if self.0.is_empty() || !epochs.all(|e| e >= current) {
            return BTreeMap::new();
        }
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Allowed, Denied, Warned};

    fn v(p: &[(&str, Verdict)]) -> Vec<(String, Verdict)> {
        p.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn flips_under_a_newer_epoch_are_counted_and_summarised_once_converged() {
        let mut pending = Pending::default();
        let before = v(&[("default", Warned), ("strict", Allowed)]);
        // Edits of the object under the same epoch are not flips.
        pending.record(2, &before, 2, &v(&[("default", Denied)]));
        assert!(pending.take_if_converged([2].into_iter(), 2).is_empty());

        pending.record(
            1,
            &before,
            2,
            &v(&[("default", Denied), ("strict", Allowed)]),
        );
        pending.record(
            1,
            &before,
            2,
            &v(&[("default", Denied), ("strict", Warned)]),
        );
        pending.record(1, &before, 2, &v(&[("default", Warned)]));
        // One object is still from epoch 1: not yet.
        assert!(
            pending
                .take_if_converged([2, 1, 2].into_iter(), 2)
                .is_empty()
        );
        let got = pending.take_if_converged([2, 2, 2].into_iter(), 2);
        assert_eq!(
            got,
            [
                (
                    "default".to_string(),
                    Flips {
                        allowed: 0,
                        warned: 0,
                        denied: 2
                    }
                ),
                (
                    "strict".to_string(),
                    Flips {
                        allowed: 0,
                        warned: 1,
                        denied: 0
                    }
                ),
            ]
            .into()
        );
        assert!(
            pending.take_if_converged([2].into_iter(), 2).is_empty(),
            "summarised once"
        );
        let note = got["default"].note(2);
        assert!(note.contains("2 objects changed verdict"), "{note}");
        assert!(
            note.contains("2 now denied, 0 now warned, 0 now allowed"),
            "{note}"
        );
    }
}
