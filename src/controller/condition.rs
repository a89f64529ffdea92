//! The `Supported` condition and the events a verdict change deserves. Pure: the controller
//! decides with these and only then writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::engine::rules::{Rule, Severity};
use crate::engine::{Evaluation, Verdict};

pub const CONDITION_TYPE: &str = "Supported";
/// The reason of `Supported=False` while a SupportException covers every denial.
pub const EXCEPTED: &str = "Excepted";
/// The API server caps a condition message at 32768 characters.
const MAX_MESSAGE: usize = 32 * 1024;

/// The `Supported` condition for an evaluation. `previous` keeps `lastTransitionTime` when the
/// status does not flip.
pub fn supported_condition(
    e: &Evaluation,
    generation: Option<i64>,
    previous: Option<&Condition>,
    now: Time,
) -> Condition {
    // An excepted object is still unsupported; the condition says so and names the exception.
    let excepted =
        e.verdict != Verdict::Denied && e.violations.iter().any(|v| v.exception.is_some());
    let status = if e.verdict == Verdict::Denied || excepted {
        "False"
    } else {
        "True"
    };
    let reason = match e.verdict {
        _ if excepted => EXCEPTED,
        Verdict::Denied => e.first_denial().map_or("Unsupported", |v| v.rule.reason()),
        Verdict::Warned => e
            .of(Severity::Warn)
            .next()
            .map_or("Supported", |v| v.rule.reason()),
        Verdict::Allowed => "Supported",
    };
    let message = message(e);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now,
    };
    Condition {
        type_: CONDITION_TYPE.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time,
        observed_generation: generation,
    }
}

fn message(e: &Evaluation) -> String {
    let mut parts: Vec<String> = Vec::new();
    for sev in [Severity::Deny, Severity::Warn, Severity::Info] {
        for v in e.of(sev) {
            parts.push(format!("[{}] {}", v.rule.id(), v.message));
        }
    }
    let mut m = if parts.is_empty() {
        "Supported by the version support policy".to_string()
    } else {
        parts.join("; ")
    };
    if m.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE - 3;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push_str("...");
    }
    m
}

/// A status condition of a custom resource of ours (SupportPolicy `Ready`, `KindsWatched`, …;
/// SupportException `Ready`, `Expired`): its transition time moves only when its status flips
/// against `previous`, the conditions last written.
pub fn status_condition(
    previous: &[Condition],
    generation: Option<i64>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last = previous
        .iter()
        .find(|c| c.type_ == type_)
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time: last,
        observed_generation: generation,
    }
}

/// Whether writing `new` would change anything the condition says.
pub fn differs(old: Option<&Condition>, new: &Condition) -> bool {
    match old {
        None => true,
        Some(o) => {
            o.status != new.status
                || o.reason != new.reason
                || o.message != new.message
                || o.observed_generation != new.observed_generation
        }
    }
}

/// The events of a verdict change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    SupportLost,
    SupportRestored,
    SupportEndingSoon,
    /// A SupportException stopped covering the object (expired, deleted, or out of scope).
    ExceptionExpired,
}

impl Transition {
    pub fn reason(self) -> &'static str {
        match self {
            Transition::SupportLost => "SupportLost",
            Transition::SupportRestored => "SupportRestored",
            Transition::SupportEndingSoon => "SupportEndingSoon",
            Transition::ExceptionExpired => "ExceptionExpired",
        }
    }

    pub fn is_warning(self) -> bool {
        !matches!(self, Transition::SupportRestored)
    }
}

/// What changed between the last known condition and the new one. The first evaluation of an
/// unsupported object counts as a loss: nobody has been told yet.
pub fn transition(previous: Option<&Condition>, new: &Condition) -> Option<Transition> {
    let was = previous.map(|p| (p.status.as_str(), p.reason.as_str()));
    match (was, new.status.as_str()) {
        (Some(("False", EXCEPTED)), "False") if new.reason != EXCEPTED => {
            Some(Transition::ExceptionExpired)
        }
        (Some(("False", _)), "False") => None,
        (_, "False") => Some(Transition::SupportLost),
        (Some(("False", _)), "True") => Some(Transition::SupportRestored),
        (prev, "True")
            if new.reason == Rule::KonvoyNearingEnd.reason()
                && prev.map(|p| p.1) != Some(new.reason.as_str()) =>
        {
            Some(Transition::SupportEndingSoon)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Violation;

    fn eval(verdict: Verdict, rules: &[(Rule, Severity)]) -> Evaluation {
        Evaluation {
            verdict,
            violations: rules
                .iter()
                .map(|(r, s)| Violation {
                    exception: None,
                    rule: *r,
                    severity: *s,
                    message: format!("{} happened", r.id()),
                    field: None,
                })
                .collect(),
        }
    }

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn conditions_name_the_first_denial_and_keep_transition_times() {
        let denied = eval(
            Verdict::Denied,
            &[
                (Rule::SecondarySupport, Severity::Info),
                (Rule::KonvoyUnsupported, Severity::Deny),
                (Rule::Prerelease, Severity::Warn),
            ],
        );
        let c = supported_condition(&denied, Some(3), None, t("2026-01-01T00:00:00Z"));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "KonvoyUnsupported")
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(
            c.message,
            "[konvoy-unsupported] konvoy-unsupported happened; [prerelease] prerelease happened; [secondary-support] secondary-support happened"
        );
        let again = supported_condition(&denied, Some(4), Some(&c), t("2026-02-01T00:00:00Z"));
        assert_eq!(
            again.last_transition_time, c.last_transition_time,
            "no flip, same time"
        );
        let ok = supported_condition(
            &eval(Verdict::Allowed, &[]),
            Some(5),
            Some(&again),
            t("2026-03-01T00:00:00Z"),
        );
        assert_eq!(
            (ok.status.as_str(), ok.reason.as_str()),
            ("True", "Supported")
        );
        assert_eq!(ok.last_transition_time, t("2026-03-01T00:00:00Z"));
        let warned = supported_condition(
            &eval(Verdict::Warned, &[(Rule::KonvoyNearingEnd, Severity::Warn)]),
            None,
            None,
            t("2026-03-01T00:00:00Z"),
        );
        assert_eq!(
            (warned.status.as_str(), warned.reason.as_str()),
            ("True", "KonvoyNearingEnd")
        );
    }

    #[test]
    fn differs_ignores_only_the_time() {
        let a = supported_condition(
            &eval(Verdict::Allowed, &[]),
            Some(1),
            None,
            t("2026-01-01T00:00:00Z"),
        );
        let mut b = a.clone();
        b.last_transition_time = t("2027-01-01T00:00:00Z");
        assert!(!differs(Some(&a), &b));
        b.observed_generation = Some(2);
        assert!(differs(Some(&a), &b));
        assert!(differs(None, &a));
    }

    #[test]
    fn transitions() {
        let now = t("2026-01-01T00:00:00Z");
        let ok = supported_condition(&eval(Verdict::Allowed, &[]), None, None, now.clone());
        let lost = supported_condition(
            &eval(
                Verdict::Denied,
                &[(Rule::KonvoyUnsupported, Severity::Deny)],
            ),
            None,
            None,
            now.clone(),
        );
        let ending = supported_condition(
            &eval(Verdict::Warned, &[(Rule::KonvoyNearingEnd, Severity::Warn)]),
            None,
            None,
            now,
        );
        assert_eq!(transition(None, &ok), None);
        assert_eq!(transition(None, &lost), Some(Transition::SupportLost));
        assert_eq!(transition(Some(&ok), &lost), Some(Transition::SupportLost));
        assert_eq!(transition(Some(&lost), &lost), None);
        assert_eq!(
            transition(Some(&lost), &ok),
            Some(Transition::SupportRestored)
        );
        assert_eq!(
            transition(Some(&ok), &ending),
            Some(Transition::SupportEndingSoon)
        );
        assert_eq!(
            transition(None, &ending),
            Some(Transition::SupportEndingSoon)
        );
        assert_eq!(transition(Some(&ending), &ending), None);
        assert_eq!(
            transition(Some(&lost), &ending),
            Some(Transition::SupportRestored)
        );
    }

    #[test]
    fn excepted_objects_stay_unsupported_and_losing_cover_is_an_event() {
        let now = t("2026-01-01T00:00:00Z");
        let mut e = eval(
            Verdict::Warned,
            &[(Rule::KonvoyUnsupported, Severity::Warn)],
        );
        e.violations[0].exception = Some("supportgate/legacy-west".into());
        e.violations[0].message =
            "Konvoy 1.5 is out of support (excepted by SupportException supportgate/legacy-west until 2027-01-31: DR)".into();
        let excepted = supported_condition(&e, None, None, now.clone());
        assert_eq!(
            (excepted.status.as_str(), excepted.reason.as_str()),
            ("False", EXCEPTED)
        );
        assert!(
            excepted
                .message
                .contains("supportgate/legacy-west until 2027-01-31"),
            "{}",
            excepted.message
        );
        let lost = supported_condition(
            &eval(
                Verdict::Denied,
                &[(Rule::KonvoyUnsupported, Severity::Deny)],
            ),
            None,
            None,
            now.clone(),
        );
        let ok = supported_condition(&eval(Verdict::Allowed, &[]), None, None, now);
        assert_eq!(
            transition(Some(&excepted), &lost),
            Some(Transition::ExceptionExpired)
        );
        assert_eq!(
            transition(Some(&lost), &excepted),
            None,
            "granted: no event"
        );
        assert_eq!(transition(Some(&excepted), &excepted), None);
        assert_eq!(
            transition(Some(&excepted), &ok),
            Some(Transition::SupportRestored)
        );
        assert_eq!(transition(None, &excepted), Some(Transition::SupportLost));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let mut e = eval(Verdict::Denied, &[]);
        e.violations.push(Violation {
            exception: None,
            rule: Rule::VersionInvalid,
            severity: Severity::Deny,
            message: "é".repeat(40_000),
            field: None,
        });
        let c = supported_condition(&e, None, None, t("2026-01-01T00:00:00Z"));
        assert!(c.message.len() <= MAX_MESSAGE && c.message.ends_with("..."));
    }
}
