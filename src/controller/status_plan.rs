//! What status each SupportPolicy should show, and what writing it announces, decided without
//! I/O: from the policy, its tally (`tally`), the kinds this account may not watch and the status
//! last written for it. The status task (`status`) gathers those and writes what comes out, so
//! every status is testable here in tables.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::civil::Date;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::runtime::events::EventType;

use crate::api::vendor;
use crate::api::{SupportPolicy, SupportPolicyStatus};
use crate::base::state::PolicySource;
use crate::controller::condition::status_condition;
use crate::controller::ledger::KindKey;
use crate::controller::summary::{self, Flips};
use crate::controller::tally::Tally;
use crate::engine::coverage::{TargetCoverage, unresolved_fields};
use crate::engine::policy::Policy;

/// What one status pass reads besides the policies and their last written status.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    /// Per policy name, its objects by verdict.
    pub tallies: &'a HashMap<String, Tally>,
    /// Targeted kinds the API server refuses this account (403), with its message.
    pub forbidden: &'a BTreeMap<KindKey, String>,
    pub today: Date,
    /// How many denied objects a status names.
    pub max_denied: usize,
}

impl Pass<'_> {
    /// The status `source` should show; `previous` is what was last written for it.
    pub fn status(
        &self,
        source: &PolicySource,
        previous: Option<&SupportPolicyStatus>,
    ) -> SupportPolicyStatus {
        let empty = Tally::default();
        let t = self
            .tallies
            .get(&source.object.name_any())
            .unwrap_or(&empty);
        let mut status = policy_status(source, t, self.today, self.max_denied, previous);
        if let Ok(policy) = &source.compiled {
            let watched = kinds_watched(&source.object, policy, self.forbidden, previous);
            status.conditions.push(watched);
            let fields = fields_resolved(&source.object, policy, &t.coverage, previous);
            status.conditions.push(fields);
        }
        status
    }
}

/// An event to publish on a SupportPolicy (cluster-scoped: recorded in the `default` namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyNote {
    pub type_: EventType,
    pub reason: String,
    pub action: &'static str,
    pub note: String,
}

impl PolicyNote {
    /// A note comparing the policy with what it was (or with the embedded default).
    fn compared(reason: &str, note: String) -> Self {
        PolicyNote {
            type_: EventType::Normal,
            reason: reason.to_string(),
            action: "CompareWithEmbeddedDefault",
            note,
        }
    }
}

/// What a successful write of `now` announces, in order: a target field newly unresolved, a
/// policy newly not Ready, a newer vendor policy. `before` is the status last written (or, when
/// this process wrote none, the one the policy carried); `stored` the one the policy carried.
pub fn announcements(
    before: Option<&SupportPolicyStatus>,
    stored: Option<&SupportPolicyStatus>,
    now: &SupportPolicyStatus,
) -> Vec<PolicyNote> {
    let mut notes = Vec::new();
    if let Some(note) = newly_unresolved(before, now) {
        notes.push(PolicyNote::compared(UNRESOLVED, note));
    }
    if let Some((reason, note)) = newly_not_ready(before, now) {
        notes.push(PolicyNote {
            type_: EventType::Warning,
            reason,
            action: "Compile",
            note,
        });
    }
    if let Some(note) = vendor::event_note(stored, now) {
        notes.push(PolicyNote::compared(vendor::REASON_NEWER, note));
    }
    notes
}

/// The one `VerdictsChanged` event of a policy whose objects flipped under change `epoch`: a
/// Warning when any of them is now denied.
pub fn flips_note(flips: &Flips, epoch: u64) -> PolicyNote {
    let type_ = if flips.denied > 0 {
        EventType::Warning
    } else {
        EventType::Normal
    };
    PolicyNote {
        type_,
        reason: summary::REASON.to_string(),
        action: "Evaluate",
        note: flips.note(epoch),
    }
}

/// The status of one policy over the objects it targets.
pub fn policy_status(
    source: &PolicySource,
    tally: &Tally,
    today: jiff::civil::Date,
    max_denied: usize,
    previous: Option<&SupportPolicyStatus>,
) -> SupportPolicyStatus {
    let sp = &source.object;
    let ready = |ok: bool, reason: &str, message: String| {
        ready_condition(sp, previous, ok, reason, message)
    };
    let policy = match &source.compiled {
        Ok(p) => p,
        Err(e) => {
            return SupportPolicyStatus {
                observed_generation: sp.metadata.generation,
                conditions: vec![ready(
                    false,
                    "InvalidSpec",
                    format!("{e}{}", source.in_force_note()),
                )],
                ..SupportPolicyStatus::default()
            };
        }
    };
    let mut denied = tally.denied.clone();
    denied.sort();
    denied.truncate(max_denied);
    let supported = policy.supported(today);
    SupportPolicyStatus {
        observed_generation: sp.metadata.generation,
        latest: policy.latest(today).map(|r| r.minor.to_string()),
        supported: Some(
            supported
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        objects: Some(tally.counts.clone()),
        denied_objects: denied,
        conditions: vec![if source.unresolved.is_empty() {
            ready(
                true,
                "Valid",
                format!("{} ({})", policy.window_text(today), policy.product_name),
            )
        } else {
            ready(
                false,
                "TargetsUnresolved",
                format!("{}{}", source.unresolved.join("; "), source.in_force_note()),
            )
        }]
        .into_iter()
        .chain(vendor::condition_for(sp, previous, Time(Timestamp::now())))
        .collect(),
    }
}

/// The `KindsWatched` condition: False, naming the kinds, while the API server refuses this
/// account the list or watch of a kind the policy targets (403).
pub fn kinds_watched(
    sp: &SupportPolicy,
    policy: &Policy,
    forbidden: &BTreeMap<KindKey, String>,
    previous: Option<&SupportPolicyStatus>,
) -> Condition {
    let refused: Vec<String> = forbidden
        .iter()
        .filter(|(key, _)| {
            policy
                .targets()
                .iter()
                .any(|t| t.spec.api_group == key.group && t.spec.kind == key.kind)
        })
        .map(|(key, why)| format!("{}.{}/{}: {why}", key.kind, key.group, key.version))
        .collect();
    let (ok, reason, message) = if refused.is_empty() {
        (
            true,
            "Watching",
            "every targeted kind that is installed is watched".to_string(),
        )
    } else {
        let message = format!(
            "not allowed to watch {} (403); grant get, list, watch (and get, patch on their status) with a ClusterRole labelled supportgate.dev/aggregate-to-supportgate: \"true\"",
            refused.join("; ")
        );
        (false, "Forbidden", message)
    };
    condition(sp, previous, "KindsWatched", ok, reason, message)
}

/// The condition type raised when a target field selects nothing in any watched object.
pub const UNRESOLVED: &str = "TargetFieldUnresolved";

/// `TargetFieldUnresolved`: True, naming the fields, when a target field resolved in none of at
/// least one watched object of its kind (a path with a typo checks nothing, silently). A field
/// that resolved in only some objects raises nothing.
pub fn fields_resolved(
    sp: &SupportPolicy,
    policy: &Policy,
    coverage: &BTreeMap<usize, TargetCoverage>,
    previous: Option<&SupportPolicyStatus>,
) -> Condition {
    let unresolved = unresolved_fields(policy, coverage);
    let (raised, reason, message) = if unresolved.is_empty() {
        (
            false,
            "AllFieldsResolved",
            "every target field resolves in at least one watched object".to_string(),
        )
    } else {
        let list: Vec<String> = unresolved
            .iter()
            .map(|u| format!("{}: {}", u.target, u.message))
            .collect();
        (true, "FieldMatchesNothing", list.join("; "))
    };
    condition(sp, previous, UNRESOLVED, raised, reason, message)
}

/// The event (reason, note) when `Ready` turns False, or its reason changes while False: a
/// policy that stops compiling or resolving is announced once, not on every pass.
fn newly_not_ready(
    before: Option<&SupportPolicyStatus>,
    now: &SupportPolicyStatus,
) -> Option<(String, String)> {
    let ready = |st: &SupportPolicyStatus| {
        st.conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let (status, reason, message) = ready(now)?;
    if status != "False" {
        return None;
    }
    let was = before.and_then(ready);
    if was
        .as_ref()
        .is_some_and(|(s, r, _)| s == "False" && r == &reason)
    {
        return None;
    }
    Some((reason, message))
}

/// The event note when `TargetFieldUnresolved` turns True (or its message changes while True).
fn newly_unresolved(
    before: Option<&SupportPolicyStatus>,
    now: &SupportPolicyStatus,
) -> Option<String> {
    let find = |s: &SupportPolicyStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == UNRESOLVED && c.status == "True")
            .map(|c| c.message.clone())
    };
    let now = find(now)?;
    (before.and_then(find).as_deref() != Some(now.as_str())).then_some(now)
}

/// The policy's `Ready` condition; its transition time moves only when the status flips.
fn ready_condition(
    sp: &SupportPolicy,
    previous: Option<&SupportPolicyStatus>,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    condition(sp, previous, "Ready", ok, reason, message)
}

fn condition(
    sp: &SupportPolicy,
    previous: Option<&SupportPolicyStatus>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    let previous = previous.map_or(&[][..], |p| &p.conditions[..]);
    status_condition(previous, sp.metadata.generation, type_, ok, reason, message)
}

#[cfg(test)]
#[path = "status_plan_tests.rs"]
mod tests;
