//! Table tests of exceptions: both sides of every edge (expiry day, version scope, the cap,
//! the match fields), on the real KonvoyCluster shape and the embedded default policy.

use jiff::civil::date;
use serde_json::{Value, json};

use super::*;
use crate::Context;
use crate::policyset::PolicySet;
use crate::spec::ExceptionDocument;

fn today() -> Date {
    date(2026, 11, 24)
}

/// A Konvoy 1.5 cluster: unsupported (denied) under the embedded default policy, nothing else.
fn old_cluster() -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": "old-west", "namespace": "kommander", "labels": {"team": "acme"}},
        "spec": {
            "provisioner": {"provider": "aws", "version": "v1.5.3"},
            "cluster": {"kubernetes": {"version": "1.17.17"}}
        }
    })
}

/// An exception document as users write it, created on `created`.
fn exception(spec: Value, created: &str) -> ExceptionDocument {
    serde_json::from_value(json!({
        "apiVersion": "supportgate.dev/v1alpha1",
        "kind": "SupportException",
        "metadata": {"name": "legacy-west", "namespace": "supportgate",
                     "creationTimestamp": format!("{created}T10:00:00Z")},
        "spec": spec,
    }))
    .unwrap()
}

fn base() -> Value {
    json!({
        "reason": "DR cluster for ACME",
        "expires": "2027-01-31",
        "rules": ["konvoy-unsupported"],
        "match": {"namespaces": ["kommander"], "names": ["old-west"],
                  "kinds": [{"apiGroup": "kommander.mesosphere.io", "kind": "KonvoyCluster"}],
                  "selector": {"matchLabels": {"team": "acme"}}},
        "versions": {"konvoy": ["1.5"], "kubernetes": ["1.17"]}
    })
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer).unwrap() = new;
    v
}

fn evaluate(spec: Value, obj: &Value, today: Date) -> Evaluation {
    let x = CompiledException::compile(&exception(spec, "2026-11-20")).unwrap();
    let set = PolicySet::embedded_default();
    let ctx = Context::new(today).with_exceptions(Arc::new(ExceptionSet::new(vec![Arc::new(x)])));
    set.assess(obj, &ctx).unwrap().evaluation
}

fn excepted(e: &Evaluation) -> bool {
    let v = e
        .violations
        .iter()
        .find(|v| v.rule == Rule::KonvoyUnsupported)
        .expect("the rule still reports");
    match v.exception.as_deref() {
        Some(key) => {
            assert_eq!(key, "supportgate/legacy-west");
            assert_eq!(v.severity, Severity::Warn);
            assert_eq!(e.verdict, Verdict::Warned, "{e:#?}");
            assert!(
                v.message
                    .contains("excepted by SupportException supportgate/legacy-west until 2027-01-31: DR cluster for ACME"),
                "{}",
                v.message
            );
            true
        }
        None => {
            assert_eq!((v.severity, e.verdict), (Severity::Deny, Verdict::Denied));
            false
        }
    }
}

#[test]
fn a_matching_exception_turns_the_denial_into_a_warning() {
    assert!(!excepted(
        &PolicySet::embedded_default()
            .assess(&old_cluster(), &Context::new(today()))
            .unwrap()
            .evaluation
    ));
    assert!(excepted(&evaluate(base(), &old_cluster(), today())));
}

#[test]
fn expiry_day_edges() {
    let cases = [
        (date(2027, 1, 30), true, "the day before expiry"),
        (date(2027, 1, 31), false, "the expiry day"),
        (date(2027, 2, 1), false, "after"),
    ];
    for (day, want, why) in cases {
        assert_eq!(
            excepted(&evaluate(base(), &old_cluster(), day)),
            want,
            "{why}"
        );
    }
    let e = evaluate(base(), &old_cluster(), date(2027, 1, 30));
    assert!(
        e.violations[0].message.contains("it ends within 90 days"),
        "nearing expiry warns: {}",
        e.violations[0].message
    );
    let e = evaluate(
        with(base(), "/expires", json!("2027-04-30")),
        &old_cluster(),
        today(),
    );
    assert!(
        !e.violations[0].message.contains("ends within"),
        "far out: no warning"
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one case per scope and match field, a table read top to bottom"
)]
fn version_scope_and_match_fields() {
    let obj = old_cluster();
    let moved = with(obj.clone(), "/spec/provisioner/version", json!("v1.4.9"));
    let k8s_moved = with(
        obj.clone(),
        "/spec/cluster/kubernetes/version",
        json!("1.16.3"),
    );
    let cases: [(Value, &Value, bool, &str); 11] = [
        (base(), &moved, false, "konvoy moved off the listed minor"),
        (
            base(),
            &k8s_moved,
            false,
            "kubernetes moved off the listed minor",
        ),
        (
            with(base(), "/versions", json!({})),
            &k8s_moved,
            true,
            "no version scope",
        ),
        (
            with(base(), "/versions/konvoy", json!(["1.4", "1.5"])),
            &obj,
            true,
            "one of the minors",
        ),
        (
            with(base(), "/match/namespaces", json!(["other"])),
            &obj,
            false,
            "namespace",
        ),
        (
            with(base(), "/match/names", json!(["new-east"])),
            &obj,
            false,
            "name",
        ),
        (
            with(
                base(),
                "/match/kinds/0/apiGroup",
                json!("konvoy.mesosphere.io"),
            ),
            &obj,
            false,
            "kind group",
        ),
        (
            with(
                base(),
                "/match/selector",
                json!({"matchLabels": {"team": "other"}}),
            ),
            &obj,
            false,
            "selector",
        ),
        (
            with(base(), "/rules", json!(["kommander-mismatch"])),
            &obj,
            false,
            "another rule",
        ),
        (
            with(base(), "/match", json!({"namespaces": ["kommander"]})),
            &obj,
            true,
            "the namespace alone",
        ),
        (
            with(
                base(),
                "/match",
                json!({"namespaces": ["kommander"], "names": ["old-west"]}),
            ),
            &obj,
            true,
            "namespace and name",
        ),
    ];
    for (spec, o, want, why) in cases {
        assert_eq!(excepted(&evaluate(spec, o, today())), want, "{why}");
    }
}

#[test]
fn only_denials_of_listed_rules_are_excepted() {
    // A bad KBA ref on top: kba-kubernetes-mismatch stays a denial, so the verdict stays denied.
    let mut obj = old_cluster();
    obj["spec"]["cluster"]["addons"] = json!([{"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
        "configVersion": "stable-1.16-2.0.0", "addonsList": []}]);
    let e = evaluate(base(), &obj, today());
    assert_eq!(e.verdict, Verdict::Denied);
    let by_rule = |r| e.violations.iter().find(|v| v.rule == r).unwrap();
    assert_eq!(by_rule(Rule::KonvoyUnsupported).severity, Severity::Warn);
    assert_eq!(
        by_rule(Rule::KbaKubernetesMismatch).severity,
        Severity::Deny
    );
    assert_eq!(by_rule(Rule::KbaKubernetesMismatch).exception, None);
}

#[test]
fn the_cap_counts_from_creation() {
    let limits = Limits::of([&Policy::embedded_default()]);
    assert_eq!(limits.max_days, 180);
    let at = |expires: &str, created: &str| {
        CompiledException::compile(&exception(
            with(base(), "/expires", json!(expires)),
            created,
        ))
        .unwrap()
        .state(today(), limits)
    };
    // 2026-11-20 + 180 days = 2027-05-19.
    assert_eq!(at("2027-05-19", "2026-11-20"), ExceptionState::Active);
    let ExceptionState::Invalid(why) = at("2027-05-20", "2026-11-20") else {
        panic!("181 days is beyond the cap");
    };
    assert!(
        why.contains("181 days") && why.contains("maxExceptionDays"),
        "{why}"
    );
    let x = CompiledException::compile(&exception(
        with(base(), "/expires", json!("2027-05-20")),
        "2026-11-20",
    ))
    .unwrap();
    assert!(
        !excepted(&evaluate(
            with(base(), "/expires", json!("2027-05-20")),
            &old_cluster(),
            today()
        )),
        "an exception beyond the cap applies to nothing: {x:?}"
    );
    let strict = Policy::from_yaml(&crate::policy::DEFAULT_POLICY_YAML.replace(
        "supportWindow: 3",
        "supportWindow: 3\n  maxExceptionDays: 30",
    ))
    .unwrap();
    let l = Limits::of([&Policy::embedded_default(), &strict]);
    assert_eq!(l.max_days, 30, "the strictest policy caps");
}

#[test]
fn bad_input_is_refused_with_every_problem() {
    let cases = [
        (
            with(base(), "/expires", json!("2027-02-30")),
            "spec.expires",
        ),
        (
            with(base(), "/rules", json!(["no-such-rule"])),
            "unknown rule id `no-such-rule`",
        ),
        (with(base(), "/rules", json!([])), "at least one rule id"),
        (
            with(base(), "/match", json!({})),
            "spec.match.namespaces is required",
        ),
        (
            with(base(), "/match", json!({"names": []})),
            "spec.match.namespaces is required",
        ),
        (with(base(), "/reason", json!("  ")), "spec.reason"),
        (
            with(
                base(),
                "/match/selector",
                json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
            ),
            "spec.match.selector",
        ),
    ];
    for (spec, want) in cases {
        let err = CompiledException::compile(&exception(spec, "2026-11-20")).unwrap_err();
        assert!(err.to_string().contains(want), "{err} lacks {want}");
        assert!(
            err.to_string()
                .starts_with("SupportException supportgate/legacy-west:"),
            "{err}"
        );
    }
}

#[test]
fn next_expiry_is_the_earliest_future_one() {
    let mk = |expires: &str| {
        Arc::new(
            CompiledException::compile(&exception(
                with(base(), "/expires", json!(expires)),
                "2026-11-20",
            ))
            .unwrap(),
        )
    };
    let set = ExceptionSet::new(vec![mk("2027-01-31"), mk("2026-12-01"), mk("2026-11-24")]);
    assert_eq!(set.next_expiry(today()), Some(date(2026, 12, 1)));
    assert_eq!(set.next_expiry(date(2027, 1, 31)), None);
}

#[test]
fn the_next_change_is_the_warning_start_or_the_expiry() {
    let set = PolicySet::embedded_default();
    let e = evaluate(base(), &old_cluster(), today());
    let x = CompiledException::compile(&exception(base(), "2026-11-20")).unwrap();
    let xs = ExceptionSet::new(vec![Arc::new(x)]);
    let p = || set.policies().iter().map(|p| &**p);
    // 2027-01-31 minus 90 days is 2026-11-02, already past: the expiry is next.
    assert_eq!(xs.next_change(p(), &e, today()), Some(date(2027, 1, 31)));
    assert_eq!(
        xs.next_change(p(), &e, date(2026, 10, 1)),
        Some(date(2026, 11, 2))
    );
    let plain = set
        .assess(&old_cluster(), &Context::new(today()))
        .unwrap()
        .evaluation;
    assert_eq!(
        xs.next_change(p(), &plain, today()),
        None,
        "not covered: no requeue"
    );
}

/// A policy's own verdict (what its status counts) follows the exceptions as the merged one does.
#[test]
fn per_policy_verdicts_count_an_excepted_object_as_warned() {
    let per_policy = |spec: Value| {
        let x = CompiledException::compile(&exception(spec, "2026-11-20")).unwrap();
        let ctx =
            Context::new(today()).with_exceptions(Arc::new(ExceptionSet::new(vec![Arc::new(x)])));
        let a = PolicySet::embedded_default()
            .assess(&old_cluster(), &ctx)
            .unwrap();
        (a.evaluation.verdict, a.per_policy[0].verdict)
    };
    assert_eq!(per_policy(base()), (Verdict::Warned, Verdict::Warned));
    let other_rule = with(base(), "/rules", json!(["kommander-mismatch"]));
    assert_eq!(per_policy(other_rule), (Verdict::Denied, Verdict::Denied));
}

/// Issue 28, path 5: a trusted exception meant for one tenant's `legacy-dr` must not cover a
/// `legacy-dr` another tenant creates in their own namespace.
fn tenant_cluster(namespace: &str) -> Value {
    let mut c = old_cluster();
    c["metadata"] =
        json!({"name": "legacy-dr", "namespace": namespace, "labels": {"team": "acme"}});
    c
}

fn scoped(m: Value) -> Value {
    let spec = with(base(), "/match", m);
    with(spec, "/versions", json!({}))
}

fn refusal(spec: Value) -> String {
    CompiledException::compile(&exception(spec, "2026-11-20"))
        .expect_err("an exception without namespace scope must not compile")
        .to_string()
}

#[test]
fn an_exception_without_namespaces_is_refused() {
    let unscoped = [
        json!({"names": ["legacy-dr"]}),
        json!({"selector": {"matchLabels": {"team": "acme"}}}),
        json!({"kinds": [{"apiGroup": "kommander.mesosphere.io", "kind": "KonvoyCluster"}]}),
        json!({"names": ["legacy-dr"], "selector": {"matchLabels": {"team": "acme"}}}),
        json!({"namespaces": [], "names": ["legacy-dr"]}),
    ];
    for m in unscoped {
        let err = refusal(scoped(m.clone()));
        assert!(
            err.contains("spec.match.namespaces is required")
                && err.contains("[\"*\"] for every namespace"),
            "{m}: {err}"
        );
    }
}

#[test]
fn the_wildcard_must_stand_alone_and_names_must_not_be_empty() {
    let err = refusal(scoped(json!({"namespaces": ["*", "team-a"]})));
    assert!(
        err.contains("\"*\" (every namespace) must be the only entry"),
        "{err}"
    );
    let err = refusal(scoped(json!({"namespaces": [""]})));
    assert!(err.contains("an empty namespace name"), "{err}");
    // Every problem at once: the missing scope does not hide a bad rule id.
    let err = refusal(with(
        scoped(json!({"names": ["x"]})),
        "/rules",
        json!(["no-such-rule"]),
    ));
    assert!(
        err.contains("no-such-rule") && err.contains("namespaces is required"),
        "{err}"
    );
}

#[test]
fn a_scoped_exception_covers_only_its_namespaces() {
    let team_a = scoped(json!({"namespaces": ["team-a"], "names": ["legacy-dr"]}));
    assert!(excepted(&evaluate(
        team_a.clone(),
        &tenant_cluster("team-a"),
        today()
    )));
    assert!(
        !excepted(&evaluate(team_a, &tenant_cluster("team-b"), today())),
        "the same name in another namespace is not covered"
    );
    let by_label = scoped(json!({"namespaces": ["team-a", "team-c"],
                                 "selector": {"matchLabels": {"team": "acme"}}}));
    assert!(excepted(&evaluate(
        by_label.clone(),
        &tenant_cluster("team-c"),
        today()
    )));
    assert!(!excepted(&evaluate(
        by_label,
        &tenant_cluster("team-b"),
        today()
    )));
}

#[test]
fn the_spelled_out_wildcard_covers_every_namespace() {
    let all = scoped(json!({"namespaces": ["*"], "names": ["legacy-dr"]}));
    for ns in ["team-a", "team-b", "kommander"] {
        assert!(
            excepted(&evaluate(all.clone(), &tenant_cluster(ns), today())),
            "{ns}"
        );
    }
    // The name still narrows it.
    let mut other = tenant_cluster("team-b");
    other["metadata"]["name"] = json!("prod");
    assert!(!excepted(&evaluate(all, &other, today())));
}

#[test]
fn a_cluster_scoped_object_is_reached_only_by_the_wildcard() {
    let mut obj = tenant_cluster("team-a");
    obj["metadata"].as_object_mut().unwrap().remove("namespace");
    let named = scoped(json!({"namespaces": ["team-a"], "names": ["legacy-dr"]}));
    assert!(!excepted(&evaluate(named, &obj, today())));
    let all = scoped(json!({"namespaces": ["*"], "names": ["legacy-dr"]}));
    assert!(excepted(&evaluate(all, &obj, today())));
}
