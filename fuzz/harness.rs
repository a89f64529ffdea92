//! What every fuzz target checks, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and
//! the corpus replay test (`tests/fuzz_corpus.rs`), so a found input is replayed through exactly
//! the code that found it.
//!
//! Besides "no panic", each check asserts a property that holds for every input: parsers
//! round-trip through their `Display`, and an answered review is a well-formed AdmissionReview
//! whose `allowed` agrees with the decision.

#![allow(dead_code)]

use std::sync::LazyLock;

use serde_json::Value;
use supportgate::cli::input;
use supportgate::engine::Context;
use supportgate::engine::Verdict;
use supportgate::engine::policyset::PolicySet;
use supportgate::engine::tag::ReleaseTag;
use supportgate::engine::version::{Bound, Minor, Version};
use supportgate::webhook::admission::{Outcome, review};

static POLICIES: LazyLock<PolicySet> = LazyLock::new(PolicySet::embedded_default);

fn context() -> Context {
    Context::new(jiff::civil::date(2026, 11, 24))
        .with_hosting_kubernetes(Some(Version::new(1, 20, 13)))
}

/// Decodes an AdmissionReview and decides it, as the webhook's request path does.
pub fn admission_review(data: &[u8]) {
    let Ok((answer, decision)) = review(data, &POLICIES, &context(), None) else {
        return;
    };
    let v: Value = serde_json::from_slice(&answer).expect("the answer is JSON");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1", "{v}");
    assert_eq!(v["kind"], "AdmissionReview", "{v}");
    let allowed = v["response"]["allowed"]
        .as_bool()
        .expect("response.allowed is a boolean");
    assert_eq!(
        allowed,
        decision.verdict != Outcome::Judged(Verdict::Denied),
        "{v}"
    );
    assert!(v["response"]["uid"].is_string(), "{v}");
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

pub fn version(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(v) = s.parse::<Version>() {
        let shown = v.to_string();
        let again: Version = shown
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} parsed, but its display {shown:?} does not: {e}"));
        assert_eq!(again, v, "{s:?} -> {shown:?}");
        assert_eq!(v.minor(), Minor::new(v.major(), v.triple().1));
    }
}

pub fn minor(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(m) = s.parse::<Minor>() {
        let shown = m.to_string();
        let again: Minor = shown
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} parsed, but its display {shown:?} does not: {e}"));
        assert_eq!(again, m, "{s:?} -> {shown:?}");
    }
}

pub fn bound(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(b) = s.parse::<Bound>() {
        let shown = b.to_string();
        let again: Bound = shown
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} parsed, but its display {shown:?} does not: {e}"));
        assert_eq!(again, b, "{s:?} -> {shown:?}");
        // A bound used as a range [b, b] always admits its own lowest version.
        let (ma, mi, p) = b.lowest();
        let v = Version::new(ma, mi, p);
        assert!(b.admits_as_min(&v) && b.admits_as_max(&v), "{s:?}");
        assert!(b.le_as_range(&b), "{s:?}");
    }
}

pub fn release_tag(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(t) = s.parse::<ReleaseTag>() {
        let shown = t.to_string();
        let again: ReleaseTag = shown
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} parsed, but its display {shown:?} does not: {e}"));
        assert_eq!(again, t, "{s:?} -> {shown:?}");
    }
}

/// Reads manifests as `supportgate check` does.
pub fn parse_objects(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let (objects, _errors) = input::parse_objects("fuzz.yaml", s);
    for o in &objects {
        assert!(o.object.get("apiVersion").is_some_and(Value::is_string));
        assert!(o.object.get("kind").is_some_and(Value::is_string));
        assert!(o.document >= 1);
    }
}
