//! The `NewerVendorPolicy` condition and event of the `default` SupportPolicy: the Kubernetes
//! side of [`crate::engine::vendor`], which compares a policy's spec with the embedded default.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{SupportPolicy, SupportPolicyStatus};
use crate::engine::spec::SupportPolicySpec;
pub use crate::engine::vendor::{
    CONDITION_TYPE, REASON_NEWER, REASON_UP_TO_DATE, VENDOR_POLICY_NAME, VendorDiff, diff,
    embedded_spec, newer_vendor,
};

/// The `NewerVendorPolicy` condition of `sp`, or None for a policy that is not the vendor's
/// (`default`). True while the vendor's policy knows releases this one lacks; the spec is
/// never changed (taking the update is the user's decision). `previous` (the condition as
/// stored) keeps `lastTransitionTime` while the status does not flip.
pub fn newer_vendor_condition(
    sp: &SupportPolicy,
    vendor: &SupportPolicySpec,
    previous: Option<&Condition>,
    now: Time,
) -> Option<Condition> {
    if sp.metadata.name.as_deref() != Some(VENDOR_POLICY_NAME) {
        return None;
    }
    let n = newer_vendor(&sp.spec, vendor);
    let status = if n.newer { "True" } else { "False" };
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now,
    };
    Some(Condition {
        type_: CONDITION_TYPE.to_string(),
        status: status.to_string(),
        reason: n.reason.to_string(),
        message: n.message,
        last_transition_time,
        observed_generation: sp.metadata.generation,
    })
}

/// The note of the event a new or changed True condition deserves; None when `stored` (the
/// condition the object already carries) says the same, so that a restart or a resync does
/// not repeat it.
pub fn newer_vendor_event(stored: Option<&Condition>, new: &Condition) -> Option<String> {
    if new.status != "True" {
        return None;
    }
    match stored {
        Some(s) if s.status == "True" && s.message == new.message => None,
        _ => Some(new.message.clone()),
    }
}

/// The `NewerVendorPolicy` condition in a status, if it has one.
pub fn condition_in(status: Option<&SupportPolicyStatus>) -> Option<&Condition> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_TYPE)
}

/// The controller's hook into a SupportPolicy's status: the condition of `sp` against this
/// build's embedded default, `previous` being the status written last (else the stored one).
pub fn condition_for(
    sp: &SupportPolicy,
    previous: Option<&SupportPolicyStatus>,
    now: Time,
) -> Option<Condition> {
    let stored = condition_in(previous.or(sp.status.as_ref()));
    newer_vendor_condition(sp, embedded_spec(), stored, now)
}

/// The controller's hook after writing `new` over the `stored` status: the note of the
/// `NewerVendorPolicy` event to publish on the policy, if any.
pub fn event_note(
    stored: Option<&SupportPolicyStatus>,
    new: &SupportPolicyStatus,
) -> Option<String> {
    newer_vendor_event(condition_in(stored), condition_in(Some(new))?)
}

#[cfg(test)]
#[path = "vendor_tests.rs"]
mod tests;
