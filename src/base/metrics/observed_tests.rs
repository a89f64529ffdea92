//! Unit tests of the observed gauges: vanished series go, countdowns are computed at scrape time.

use super::*;
use crate::base::metrics::Metrics;

fn fleet(verdict: &str, namespace: &str) -> FleetLabels {
    FleetLabels {
        kind: "KonvoyCluster".into(),
        namespace: namespace.into(),
        verdict: verdict.into(),
        reason: "KonvoyUnsupported".into(),
    }
}

#[test]
fn fleet_series_vanish_when_no_object_has_them() {
    let m = Metrics::new();
    m.observed.set_fleet(
        [(fleet("denied", "a"), 2), (fleet("denied", "b"), 1)].into(),
        None,
    );
    let text = m.encode();
    assert!(text.contains(r#"supportgate_objects{kind="KonvoyCluster",namespace="a",verdict="denied",reason="KonvoyUnsupported"} 2"#), "{text}");
    m.observed
        .set_fleet([(fleet("denied", "b"), 1)].into(), None);
    let text = m.encode();
    assert!(!text.contains(r#"namespace="a""#), "{text}");
    assert!(text.contains(r#"namespace="b""#), "{text}");
    assert!(
        !text.contains("supportgate_object_support{"),
        "opt in: {text}"
    );
}

#[test]
fn countdowns_are_computed_at_scrape_time() {
    let m = Metrics::new();
    let now = jiff::Timestamp::now().as_second();
    m.observed
        .set_certificate_source(Box::new(move || Some(now + 3 * 86_400)));
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let info = PolicyInfoLabels {
        policy: "p".into(),
        product: "Konvoy".into(),
        window: "N-2 of latest 1.8".into(),
        latest: "1.8".into(),
        supported: "1.8, 1.7, 1.6".into(),
    };
    m.observed.set_policies(vec![PolicyView {
        info,
        ready: false,
        next_change: Some(("end_of_support".into(), today + jiff::Span::new().days(10))),
    }]);
    let text = m.encode();
    let expires_in: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("supportgate_certificate_expires_in_seconds "))
        .and_then(|v| v.parse().ok())
        .expect(&text);
    assert!(
        (3.0 * 86_400.0 - 5.0..=3.0 * 86_400.0).contains(&expires_in),
        "{expires_in}"
    );
    assert!(
        text.contains(
            r#"supportgate_policy_next_change_days{policy="p",change="end_of_support"} 10"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"supportgate_policy_ready{policy="p"} 0"#),
        "{text}"
    );
    assert!(text.contains("# HELP supportgate_policy_info "), "{text}");
    // The next change moves to an exception's expiry: the old series goes, not left stale.
    let mut view = m.observed.published.lock().policies[0].clone();
    view.next_change = Some(("exception_expiry".into(), today + jiff::Span::new().days(4)));
    m.observed.set_policies(vec![view]);
    let text = m.encode();
    assert!(!text.contains(r#"change="end_of_support""#), "{text}");
    assert!(
        text.contains(
            r#"supportgate_policy_next_change_days{policy="p",change="exception_expiry"} 4"#
        ) && text.contains(r#"supportgate_policy_ready{policy="p"} 0"#),
        "{text}"
    );
    m.observed.clear_leader_state();
    assert!(!m.encode().contains(r#"policy="p""#));
}

fn exception(name: &str, objects: i64, expires: Option<jiff::civil::Date>) -> ExceptionView {
    ExceptionView {
        labels: ExceptionLabels {
            namespace: "supportgate".into(),
            exception: name.into(),
        },
        objects,
        ready: expires.is_some(),
        expires,
    }
}

#[test]
fn exception_series_follow_the_exceptions_and_count_down_at_scrape_time() {
    let m = Metrics::new();
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let expires = today + jiff::Span::new().days(9);
    m.observed.set_exceptions(vec![
        exception("legacy", 2, Some(expires)),
        exception("typo", 0, None),
    ]);
    let text = m.encode();
    let at = expires
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second();
    for want in [
        r#"supportgate_exception_objects{namespace="supportgate",exception="legacy"} 2"#
            .to_string(),
        r#"supportgate_exception_ready{namespace="supportgate",exception="legacy"} 1"#.to_string(),
        format!(
            r#"supportgate_exception_expiry_timestamp_seconds{{namespace="supportgate",exception="legacy"}} {at}"#
        ),
        r#"supportgate_exception_expires_in_days{namespace="supportgate",exception="legacy"} 9"#
            .to_string(),
        r#"supportgate_exception_ready{namespace="supportgate",exception="typo"} 0"#.to_string(),
        r#"supportgate_exception_objects{namespace="supportgate",exception="typo"} 0"#.to_string(),
    ] {
        assert!(text.contains(&want), "{want} missing from:\n{text}");
    }
    assert!(
        !text.contains(r#"_seconds{namespace="supportgate",exception="typo"}"#)
            && !text.contains(r#"_days{namespace="supportgate",exception="typo"}"#),
        "no expiry without a date: {text}"
    );
    // Deleted: its series go; the other's stay.
    m.observed.set_exceptions(vec![exception("typo", 0, None)]);
    let text = m.encode();
    assert!(!text.contains(r#"exception="legacy""#), "{text}");
    assert!(text.contains(r#"exception="typo""#), "{text}");
    m.observed.clear_leader_state();
    assert!(!m.encode().contains("exception=\""));
}
