use jiff::Timestamp;

use super::*;
use crate::engine::policy::DEFAULT_POLICY_YAML;

fn spec(yaml: &str) -> SupportPolicy {
    serde_norway::from_str(yaml).unwrap()
}

fn embedded() -> SupportPolicy {
    let sp = spec(DEFAULT_POLICY_YAML);
    assert_eq!(&*sp.spec, embedded_spec());
    sp
}

const NEW_RELEASE: &str = "  - version: \"1.9\"\n    releaseDate: \"2021-09-01\"\n    kubernetes: {min: 1.19.x, max: 1.21.x, default: 1.21.4}\n    kommander: \"1.5\"\n";

fn with_1_9() -> SupportPolicy {
    spec(&DEFAULT_POLICY_YAML.replace("  product:\n", &format!("  product:\n{NEW_RELEASE}")))
}

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

#[test]
fn the_condition_is_only_on_default_and_true_while_releases_are_missing() {
    let vendor = with_1_9().spec;
    let mut other = embedded();
    other.metadata.name = Some("site".into());
    assert_eq!(newer_vendor_condition(&other, &vendor, None, at(1)), None);

    let mut stored = embedded();
    stored.metadata.generation = Some(4);
    let c = newer_vendor_condition(&stored, &vendor, None, at(1)).unwrap();
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        ("NewerVendorPolicy", "True", "NewerVendorPolicy")
    );
    assert!(
        c.message
            .contains("knows Konvoy 1.9, which this policy lacks"),
        "{}",
        c.message
    );
    assert!(c.message.contains("supportgate default-policy --diff"));
    assert_eq!(c.observed_generation, Some(4));
    assert_eq!(c.last_transition_time, at(1));
    // Unchanged status keeps its transition time; a flip takes the new one.
    let again = newer_vendor_condition(&stored, &vendor, Some(&c), at(2)).unwrap();
    assert_eq!(again.last_transition_time, at(1));
    let done = newer_vendor_condition(&with_1_9(), &vendor, Some(&c), at(3)).unwrap();
    assert_eq!(
        (done.status.as_str(), done.reason.as_str()),
        ("False", "UpToDate")
    );
    assert_eq!(done.last_transition_time, at(3));
    // A local addition the vendor lacks is no reason to raise it.
    let local = newer_vendor_condition(&with_1_9(), &embedded().spec, None, at(1)).unwrap();
    assert_eq!(local.status, "False");
}

#[test]
fn the_event_is_sent_once_per_new_message() {
    let vendor = with_1_9().spec;
    let c = newer_vendor_condition(&embedded(), &vendor, None, at(1)).unwrap();
    assert_eq!(
        newer_vendor_event(None, &c).as_deref(),
        Some(c.message.as_str())
    );
    assert_eq!(newer_vendor_event(Some(&c), &c), None);
    let mut older = c.clone();
    older.message = "knows Konvoy 1.8".into();
    assert!(newer_vendor_event(Some(&older), &c).is_some());
    let up = newer_vendor_condition(&with_1_9(), &vendor, None, at(1)).unwrap();
    assert_eq!(newer_vendor_event(None, &up), None);
}

#[test]
fn the_hooks_find_the_condition_among_others() {
    let ready = Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "Valid".into(),
        message: String::new(),
        last_transition_time: at(1),
        observed_generation: None,
    };
    // The embedded default itself, as `default`: nothing missing.
    let c = condition_for(&embedded(), None, at(1)).unwrap();
    assert_eq!(c.status, "False");
    // One that lacks 1.8: True, and an event once.
    let mut older = embedded();
    older.spec.product.retain(|r| r.version != "1.8");
    let c = condition_for(&older, None, at(5)).unwrap();
    assert_eq!(c.status, "True");
    let stored = SupportPolicyStatus {
        conditions: vec![ready.clone()],
        ..Default::default()
    };
    let new = SupportPolicyStatus {
        conditions: vec![ready, c.clone()],
        ..Default::default()
    };
    assert_eq!(condition_in(Some(&new)), Some(&c));
    assert_eq!(event_note(Some(&stored), &new), Some(c.message.clone()));
    assert_eq!(event_note(Some(&new), &new), None);
    // The written status wins over the stored one for the transition time.
    let again = condition_for(&older, Some(&new), at(9)).unwrap();
    assert_eq!(again.last_transition_time, at(5));
}
