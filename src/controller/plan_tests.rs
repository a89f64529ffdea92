use super::*;
use crate::engine::rules::{Rule, Severity};
use crate::engine::{Verdict, Violation};

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

fn ok() -> Evaluation {
    eval(Verdict::Allowed, &[])
}
fn lost() -> Evaluation {
    eval(
        Verdict::Denied,
        &[(Rule::KonvoyUnsupported, Severity::Deny)],
    )
}
fn ending() -> Evaluation {
    eval(Verdict::Warned, &[(Rule::KonvoyNearingEnd, Severity::Warn)])
}

fn t(s: &str) -> Time {
    Time(s.parse().unwrap())
}

/// The condition a previous run wrote for `e` at generation 1.
fn was(e: Evaluation) -> Option<Condition> {
    Some(supported_condition(
        &e,
        Some(1),
        None,
        t("2026-01-01T00:00:00Z"),
    ))
}

fn conditions() -> Sink {
    Sink::Conditions
}
fn report() -> Sink {
    Sink::PolicyReport("the CRD has no status subresource".into())
}

struct Row {
    name: &'static str,
    sink: Sink,
    previous: Previous,
    evaluation: Evaluation,
    generation: i64,
    always_report: bool,
    patch: bool,
    report: bool,
    events: &'static [&'static str],
}

fn row(name: &'static str, sink: Sink, previous: Previous, evaluation: Evaluation) -> Row {
    Row {
        name,
        sink,
        previous,
        evaluation,
        generation: 1,
        always_report: false,
        patch: false,
        report: false,
        events: &[],
    }
}

impl Row {
    fn patch(mut self) -> Self {
        self.patch = true;
        self
    }
    fn report(mut self) -> Self {
        self.report = true;
        self
    }
    fn events(mut self, e: &'static [&'static str]) -> Self {
        self.events = e;
        self
    }
    fn generation(mut self, g: i64) -> Self {
        self.generation = g;
        self
    }
    fn always_report(mut self) -> Self {
        self.always_report = true;
        self
    }
}

fn on_object(c: Option<Condition>) -> Previous {
    Previous {
        on_object: c,
        ..Previous::default()
    }
}
fn remembered(c: Option<Condition>) -> Previous {
    Previous {
        remembered: c,
        ..Previous::default()
    }
}
fn in_report(c: Option<Condition>) -> Previous {
    Previous {
        in_report: c,
        ..Previous::default()
    }
}

/// Conditions kinds: new objects and every transition.
fn transition_rows() -> Vec<Row> {
    let none = Previous::default;
    vec![
        // A new object: nobody has been told yet.
        row("new, supported", conditions(), none(), ok()).patch(),
        row("new, unsupported", conditions(), none(), lost())
            .patch()
            .events(&["SupportLost"]),
        row("new, nearing end", conditions(), none(), ending())
            .patch()
            .events(&["SupportEndingSoon"]),
        // Transitions seen on the object.
        row(
            "supported -> lost",
            conditions(),
            on_object(was(ok())),
            lost(),
        )
        .patch()
        .events(&["SupportLost"]),
        row(
            "lost -> restored",
            conditions(),
            on_object(was(lost())),
            ok(),
        )
        .patch()
        .events(&["SupportRestored"]),
        row(
            "lost -> nearing end",
            conditions(),
            on_object(was(lost())),
            ending(),
        )
        .patch()
        .events(&["SupportRestored"]),
        row(
            "supported -> nearing end",
            conditions(),
            on_object(was(ok())),
            ending(),
        )
        .patch()
        .events(&["SupportEndingSoon"]),
        row(
            "nearing end -> supported",
            conditions(),
            on_object(was(ending())),
            ok(),
        )
        .patch(),
    ]
}

/// Conditions kinds: nothing or little changed, and where the last verdict comes from.
fn steady_rows() -> Vec<Row> {
    vec![
        // Nothing changed: no effects at all.
        row(
            "unchanged, supported",
            conditions(),
            on_object(was(ok())),
            ok(),
        ),
        row(
            "unchanged, lost",
            conditions(),
            on_object(was(lost())),
            lost(),
        ),
        row(
            "unchanged, nearing end",
            conditions(),
            on_object(was(ending())),
            ending(),
        ),
        // A new generation with the same verdict updates observedGeneration, silently.
        row("new generation", conditions(), on_object(was(ok())), ok())
            .generation(2)
            .patch(),
        // Conditions kinds: the object is the truth, memory only fills in.
        row(
            "from memory, unchanged",
            conditions(),
            remembered(was(lost())),
            lost(),
        ),
        row(
            "object wins over memory",
            conditions(),
            Previous {
                on_object: was(lost()),
                remembered: was(ok()),
                in_report: None,
            },
            ok(),
        )
        .patch()
        .events(&["SupportRestored"]),
        row(
            "a report is no state for conditions kinds",
            conditions(),
            in_report(was(lost())),
            lost(),
        )
        .patch()
        .events(&["SupportLost"]),
    ]
}

/// PolicyReports: asked for by a policy, or the only place a verdict can go.
fn report_rows() -> Vec<Row> {
    let none = Previous::default;
    vec![
        // Some policy wants PolicyReports everywhere.
        row(
            "always report, changed",
            conditions(),
            on_object(was(ok())),
            lost(),
        )
        .always_report()
        .patch()
        .report()
        .events(&["SupportLost"]),
        row(
            "always report, unchanged",
            conditions(),
            on_object(was(ok())),
            ok(),
        )
        .always_report(),
        // PolicyReport kinds: the report, never the object.
        row("report kind, new, supported", report(), none(), ok())
            .report()
            .events(&["VerdictInPolicyReport"]),
        row("report kind, new, unsupported", report(), none(), lost())
            .report()
            .events(&["VerdictInPolicyReport", "SupportLost"]),
        row(
            "report kind, from memory, unchanged",
            report(),
            remembered(was(lost())),
            lost(),
        ),
        row(
            "report kind, after a restart, unchanged",
            report(),
            in_report(was(lost())),
            lost(),
        ),
        row(
            "report kind, after a restart, lost",
            report(),
            in_report(was(ok())),
            lost(),
        )
        .report()
        .events(&["SupportLost"]),
        row(
            "report kind, after a restart, restored",
            report(),
            in_report(was(lost())),
            ok(),
        )
        .report()
        .events(&["SupportRestored"]),
        row(
            "report kind, memory wins over the report",
            report(),
            Previous {
                on_object: None,
                remembered: was(lost()),
                in_report: was(ok()),
            },
            lost(),
        ),
        row(
            "report kind ignores the object",
            report(),
            on_object(was(lost())),
            lost(),
        )
        .report()
        .events(&["VerdictInPolicyReport", "SupportLost"]),
    ]
}

fn rows() -> Vec<Row> {
    [transition_rows(), steady_rows(), report_rows()]
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn every_transition_plans_the_right_effects() {
    let now = t("2026-06-01T00:00:00Z");
    for r in rows() {
        let e = plan(&Input {
            evaluation: &r.evaluation,
            sink: &r.sink,
            previous: &r.previous,
            generation: Some(r.generation),
            always_report: r.always_report,
            policy: "default",
            now: now.clone(),
        });
        let reasons: Vec<&str> = e.events.iter().map(|n| n.reason).collect();
        assert_eq!(
            (e.patch.is_some(), e.report.is_some(), reasons.as_slice()),
            (r.patch, r.report, r.events),
            "{}: (patch, report, events)",
            r.name
        );
        assert_eq!(e.changed(), r.patch || r.report, "{}", r.name);
        assert_eq!(e.condition.observed_generation, Some(r.generation));
        if let Some(p) = &e.patch {
            assert_eq!(
                p, &e.condition,
                "{}: the patch is the new condition",
                r.name
            );
        }
        if let Some(rep) = &e.report {
            assert_eq!(rep.condition, e.condition, "{}", r.name);
            assert_eq!(rep.policy, "default");
        }
        // The transition time moves only when the status flips.
        let previous = r.previous.for_sink(&r.sink);
        let expected_time = match previous {
            Some(p) if p.status == e.condition.status => p.last_transition_time.clone(),
            _ => now.clone(),
        };
        assert_eq!(
            e.condition.last_transition_time, expected_time,
            "{}",
            r.name
        );
    }
}

#[test]
fn events_carry_the_message_and_type() {
    let e = plan(&Input {
        evaluation: &lost(),
        sink: &report(),
        previous: &Previous::default(),
        generation: None,
        always_report: false,
        policy: "default",
        now: t("2026-06-01T00:00:00Z"),
    });
    assert_eq!(e.events[0].type_, EventType::Normal);
    assert!(
        e.events[0]
            .note
            .ends_with("the CRD has no status subresource"),
        "{}",
        e.events[0].note
    );
    assert_eq!(e.events[1].type_, EventType::Warning);
    assert_eq!(
        e.events[1].note,
        "no longer supported: [konvoy-unsupported] konvoy-unsupported happened"
    );
    let restored = plan(&Input {
        evaluation: &ok(),
        sink: &conditions(),
        previous: &on_object(was(lost())),
        generation: None,
        always_report: false,
        policy: "default",
        now: t("2026-06-01T00:00:00Z"),
    });
    assert_eq!(restored.events[0].type_, EventType::Normal);
}

#[test]
fn long_notes_are_cut_on_a_char_boundary() {
    let mut e = lost();
    e.violations[0].message = "é".repeat(2_000);
    let out = plan(&Input {
        evaluation: &e,
        sink: &conditions(),
        previous: &Previous::default(),
        generation: None,
        always_report: false,
        policy: "default",
        now: t("2026-06-01T00:00:00Z"),
    });
    let note = &out.events[0].note;
    assert!(
        note.len() <= MAX_NOTE && note.ends_with("..."),
        "{}",
        note.len()
    );
}

#[test]
fn the_report_is_read_only_when_memory_has_nothing() {
    let c = was(ok());
    assert!(Previous::needs_report(&report(), None));
    assert!(!Previous::needs_report(&report(), c.as_ref()));
    assert!(!Previous::needs_report(&conditions(), None));
}
