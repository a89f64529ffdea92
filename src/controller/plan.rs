//! What one reconcile should do, decided without I/O: from the previous state, the evaluation
//! and the sink, the effects (a condition patch, a PolicyReport entry, events). The reconcile
//! layer only gathers the inputs and applies what comes out, so every transition is testable
//! here in tables.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::EventType;

use crate::controller::condition::{Transition, differs, supported_condition, transition};
use crate::controller::ledger::Sink;
use crate::engine::Evaluation;

/// Event notes longer than this are cut: the events API rejects notes over 1 KiB.
const MAX_NOTE: usize = 1000;

/// Every place the last verdict on an object can be known from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Previous {
    /// The `Supported` condition the object carries (conditions sink only).
    pub on_object: Option<Condition>,
    /// What this process last decided, for as long as it has been running.
    pub remembered: Option<Condition>,
    /// The condition recorded in the object's PolicyReport (PolicyReport sink only): it
    /// survives a restart or a failover, which memory does not.
    pub in_report: Option<Condition>,
}

impl Previous {
    /// The last verdict, from the most authoritative place for the sink: the object itself
    /// where it holds a condition, otherwise memory and then the PolicyReport.
    pub fn for_sink(&self, sink: &Sink) -> Option<&Condition> {
        match sink {
            Sink::Conditions => self.on_object.as_ref().or(self.remembered.as_ref()),
            Sink::PolicyReport(_) => self.remembered.as_ref().or(self.in_report.as_ref()),
        }
    }

    /// Whether the PolicyReport has to be read to know the last verdict: only for PolicyReport
    /// kinds this process has not decided on yet (after a start or a failover).
    pub fn needs_report(sink: &Sink, remembered: Option<&Condition>) -> bool {
        matches!(sink, Sink::PolicyReport(_)) && remembered.is_none()
    }
}

/// Everything the plan depends on.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub evaluation: &'a Evaluation,
    pub sink: &'a Sink,
    pub previous: &'a Previous,
    pub generation: Option<i64>,
    /// Some policy asks for PolicyReports even where a condition can be written.
    pub always_report: bool,
    /// The policy (or policies) named in the report's results.
    pub policy: &'a str,
    pub now: Time,
}

/// A PolicyReport to write for the object.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportEntry {
    pub policy: String,
    /// Recorded in the report so the next process can read the verdict back.
    pub condition: Condition,
}

/// An event on the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
}

/// What to do, in the order to do it: report, condition, events.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    /// The verdict now, to remember whether or not anything is written.
    pub condition: Condition,
    pub report: Option<ReportEntry>,
    pub patch: Option<Condition>,
    pub events: Vec<Note>,
}

impl Effects {
    /// Whether anything the object shows changes.
    pub fn changed(&self) -> bool {
        self.report.is_some() || self.patch.is_some()
    }
}

pub fn plan(input: &Input<'_>) -> Effects {
    let previous = input.previous.for_sink(input.sink);
    let condition = supported_condition(
        input.evaluation,
        input.generation,
        previous,
        input.now.clone(),
    );
    let changed = differs(previous, &condition);
    let mut events = Vec::new();
    let report = (changed && (input.always_report || matches!(input.sink, Sink::PolicyReport(_))))
        .then(|| ReportEntry {
            policy: input.policy.to_string(),
            condition: condition.clone(),
        });
    if let Sink::PolicyReport(why) = input.sink
        && previous.is_none()
    {
        events.push(note(
            EventType::Normal,
            "VerdictInPolicyReport",
            format!("supportgate records this object's support verdict in a PolicyReport: {why}"),
        ));
    }
    if let Some(t) = transition(previous, &condition) {
        events.push(transition_note(t, &condition));
    }
    let patch = (changed && *input.sink == Sink::Conditions).then(|| condition.clone());
    Effects {
        condition,
        report,
        patch,
        events,
    }
}

fn transition_note(t: Transition, condition: &Condition) -> Note {
    let text = match t {
        Transition::SupportLost => format!("no longer supported: {}", condition.message),
        Transition::SupportRestored => "supported again by the version support policy".into(),
        Transition::SupportEndingSoon => condition.message.clone(),
        Transition::ExceptionExpired => {
            format!(
                "no longer covered by a SupportException: {}",
                condition.message
            )
        }
    };
    let type_ = if t.is_warning() {
        EventType::Warning
    } else {
        EventType::Normal
    };
    note(type_, t.reason(), text)
}

fn note(type_: EventType, reason: &'static str, mut text: String) -> Note {
    if text.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    Note {
        type_,
        reason,
        note: text,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
