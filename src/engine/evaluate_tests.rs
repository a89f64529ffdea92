//! Table-driven tests of every rule, both sides of every boundary, on the real object shapes.

use std::collections::BTreeSet;

use jiff::civil::date;
use serde_json::{Value, json};

use super::*;
use crate::engine::policy::DEFAULT_POLICY_YAML;
use crate::engine::policyset::PolicySet;
use crate::engine::{MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, MAX_VIOLATIONS};

fn today() -> Date {
    date(2026, 11, 24)
}

fn ctx() -> Context {
    Context::new(today())
}

/// A Kommander KonvoyCluster in the shape the Kommander 1.x API serves.
fn kc(konvoy: Value, k8s: Value, kba: Value, kommander: Value) -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": "c", "namespace": "kommander", "labels": {"environment": "staging"}},
        "spec": {
            "provisioner": {"provider": "aws", "version": konvoy},
            "cluster": {
                "kubernetes": {"version": k8s},
                "addons": [
                    {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons", "configVersion": kba,
                     "addonsList": [{"name": "prometheus", "enabled": true}, {"name": "istio", "enabled": false}]},
                    {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander", "configVersion": kommander,
                     "addonsList": [{"name": "kommander", "enabled": true}]}
                ]
            }
        }
    })
}

/// A well-formed cluster on `konvoy` with Kubernetes `k8s`, addons tagged for its minor and the
/// Kommander minor that pairs with `konvoy`.
fn consistent(konvoy: &str, k8s: &str) -> Value {
    let kv: Version = konvoy.parse().unwrap();
    let k: Version = k8s.parse().unwrap();
    let kommander_minor = kv.minor().minor.saturating_sub(4);
    kc(
        json!(konvoy),
        json!(k8s),
        json!(format!("stable-{}-4.4.0", k.minor())),
        json!(format!("stable-{}-1.{kommander_minor}.0", k.minor())),
    )
}

fn policy() -> Policy {
    Policy::embedded_default()
}

fn eval_with(p: &Policy, obj: &Value, ctx: &Context) -> Evaluation {
    evaluate(p, obj, ctx).expect("a target matches")
}

fn rules(e: &Evaluation) -> BTreeSet<(Rule, Severity)> {
    e.violations
        .iter()
        .filter(|v| v.severity != Severity::Info)
        .map(|v| (v.rule, v.severity))
        .collect()
}

use Rule::*;
use Severity::{Deny, Info, Warn};

#[test]
fn the_table() {
    let p = policy();
    type Case = (&'static str, Value, Verdict, Vec<(Rule, Severity)>);
    let cases: Vec<Case> = vec![
        (
            "1.8 latest",
            consistent("v1.8.5", "1.20.13"),
            Verdict::Allowed,
            vec![],
        ),
        (
            "1.7 in window",
            consistent("v1.7.5", "1.19.15"),
            Verdict::Allowed,
            vec![],
        ),
        (
            "1.6 oldest in window",
            consistent("v1.6.3", "1.18.13"),
            Verdict::Warned,
            vec![(KonvoyNearingEnd, Warn)],
        ),
        (
            "1.5 known, out of window",
            consistent("v1.5.6", "1.17.17"),
            Verdict::Denied,
            vec![(KonvoyUnsupported, Deny)],
        ),
        (
            "1.4 known, out of window",
            consistent("v1.4.6", "1.16.14"),
            Verdict::Denied,
            vec![(KonvoyUnsupported, Deny)],
        ),
        (
            "1.9 unknown",
            consistent("v1.9.0", "1.21.1"),
            Verdict::Denied,
            vec![(KonvoyUnsupported, Deny)],
        ),
        (
            "2.0 unknown",
            consistent("v2.0.0", "1.21.3"),
            Verdict::Denied,
            vec![(KonvoyUnsupported, Deny)],
        ),
        // Kubernetes range of 1.8: 1.18.x to 1.20.x, both sides of both ends.
        (
            "k8s below min",
            consistent("v1.8.5", "1.17.17"),
            Verdict::Denied,
            vec![(KubernetesOutOfRange, Deny)],
        ),
        (
            "k8s at min",
            consistent("v1.8.5", "1.18.0"),
            Verdict::Allowed,
            vec![],
        ),
        (
            "k8s at max",
            consistent("v1.8.5", "1.20.99"),
            Verdict::Allowed,
            vec![],
        ),
        (
            "k8s above max",
            consistent("v1.8.5", "1.21.0"),
            Verdict::Denied,
            vec![(KubernetesOutOfRange, Deny)],
        ),
        // Konvoy 1.5's exact minimum 1.15.4 (still out of window).
        (
            "exact min, below",
            consistent("v1.5.6", "1.15.3"),
            Verdict::Denied,
            vec![(KonvoyUnsupported, Deny), (KubernetesOutOfRange, Deny)],
        ),
        (
            "exact min, at",
            consistent("v1.5.6", "1.15.4"),
            Verdict::Denied,
            vec![(KonvoyUnsupported, Deny)],
        ),
        (
            "build metadata ignored",
            consistent("v1.8.5", "1.20.13+d2iq.2"),
            Verdict::Allowed,
            vec![],
        ),
        (
            "fips build",
            consistent("1.8.5", "1.20.13+fips.1"),
            Verdict::Allowed,
            vec![],
        ),
        (
            "KBA for another minor",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("stable-1.19-3.2.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(KbaKubernetesMismatch, Deny)],
        ),
        (
            "Kommander of another minor",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.3.0"),
            ),
            Verdict::Denied,
            vec![(KommanderMismatch, Deny)],
        ),
        (
            "Kommander built for another Kubernetes",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.19-1.4.4"),
            ),
            Verdict::Denied,
            vec![(KommanderMismatch, Deny)],
        ),
        (
            "the docs' own install sample",
            kc(
                json!("v1.7.0"),
                json!("1.20.13"),
                json!("stable-1.19-3.2.0"),
                json!("stable-1.19-1.3.0"),
            ),
            Verdict::Denied,
            vec![
                (KubernetesOutOfRange, Deny),
                (KbaKubernetesMismatch, Deny),
                (KommanderMismatch, Deny),
            ],
        ),
        (
            "testing channel",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("testing-1.20-4.5.0-rc.1"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Warned,
            vec![(Prerelease, Warn)],
        ),
        (
            "untested channel Kommander",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("stable-1.20-4.4.0"),
                json!("untested-1.20-1.4.5"),
            ),
            Verdict::Warned,
            vec![(Prerelease, Warn)],
        ),
        (
            "Konvoy pre-release",
            consistent("v1.8.0-rc.1", "1.20.6"),
            Verdict::Warned,
            vec![(Prerelease, Warn)],
        ),
        (
            "Kubernetes pre-release",
            consistent("v1.8.5", "1.20.0-beta.1"),
            Verdict::Warned,
            vec![(Prerelease, Warn)],
        ),
        (
            "KBA ref master",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("master"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Warned,
            vec![(RefUnrecognized, Warn)],
        ),
        (
            "legacy KBA tag",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!("stable-1.16.4-1.2.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Warned,
            vec![(RefUnrecognized, Warn)],
        ),
        (
            "Konvoy latest",
            kc(
                json!("latest"),
                json!("1.20.13"),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            "Kubernetes wildcard",
            kc(
                json!("v1.8.5"),
                json!("1.20.x"),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            "Kubernetes empty",
            kc(
                json!("v1.8.5"),
                json!(""),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            "Kubernetes as a YAML float",
            kc(
                json!("v1.8.5"),
                json!(1.2),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            "Konvoy as an object",
            kc(
                json!({"v": 1}),
                json!("1.20.13"),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            "KBA ref as a number",
            kc(
                json!("v1.8.5"),
                json!("1.20.13"),
                json!(4.4),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            "unset refs are not violations; unset versions are version-missing",
            kc(Value::Null, Value::Null, Value::Null, Value::Null),
            Verdict::Warned,
            vec![(VersionMissing, Warn)],
        ),
        (
            "an unset Kubernetes version alone is version-missing",
            kc(
                json!("v1.8.5"),
                Value::Null,
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Warned,
            vec![(VersionMissing, Warn)],
        ),
        (
            "unicode digits are not digits",
            kc(
                json!("v１.８.５"),
                json!("1.20.13"),
                json!("stable-1.20-4.4.0"),
                json!("stable-1.20-1.4.4"),
            ),
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
    ];
    let mut failures = Vec::new();
    for (name, obj, verdict, expected) in cases {
        let e = eval_with(&p, &obj, &ctx());
        let want: BTreeSet<_> = expected.into_iter().collect();
        if e.verdict != verdict || rules(&e) != want {
            failures.push(format!("{name}: got {:?} {:#?}", e.verdict, e.violations));
        }
        for v in &e.violations {
            assert!(v.field.is_some(), "{name}: every violation names its field");
            assert!(!v.message.is_empty());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn messages_say_what_is_wrong_what_is_supported_and_how_to_fix_it() {
    let p = policy();
    let e = eval_with(&p, &consistent("v1.5.6", "1.17.17"), &ctx());
    assert_eq!(
        e.first_denial().unwrap().message,
        "Konvoy 1.5.6 is out of support: supported are 1.8.x, 1.7.x, 1.6.x (N-2 of latest 1.8); upgrade to 1.6 or later (Konvoy 1.6 supports Kubernetes 1.16.x to 1.18.x and pairs with Kommander 1.2.x)"
    );
    assert_eq!(
        e.first_denial().unwrap().field.as_deref(),
        Some("spec.provisioner.version")
    );

    let e = eval_with(&p, &consistent("v1.8.5", "1.21.0"), &ctx());
    let m = &e.first_denial().unwrap().message;
    assert!(
        m.contains("1.18.x to 1.20.x")
            && m.contains("1.20.6")
            && m.contains("spec.cluster.kubernetes.version"),
        "{m}"
    );

    let e = eval_with(&p, &consistent("v1.9.0", "1.21.1"), &ctx());
    let m = &e.first_denial().unwrap().message;
    assert!(
        m.contains("not a release this policy knows") && m.contains("1.8.x, 1.7.x, 1.6.x"),
        "{m}"
    );

    let e = eval_with(
        &p,
        &kc(
            json!("v1.8.5"),
            json!("1.20.13"),
            json!("stable-1.20-4.4.0"),
            json!("stable-1.20-1.3.0"),
        ),
        &ctx(),
    );
    let m = &e.first_denial().unwrap().message;
    assert!(
        m.contains("requires Kommander 1.4.x") && m.contains("stable-1.20-1.4.<patch>"),
        "{m}"
    );

    let e = eval_with(
        &p,
        &kc(
            json!("v1.8.5"),
            json!(1.2),
            json!("stable-1.20-4.4.0"),
            json!("stable-1.20-1.4.4"),
        ),
        &ctx(),
    );
    let m = &e.first_denial().unwrap().message;
    assert!(m.contains("number 1.2") && m.contains("quote it"), "{m}");

    let e = eval_with(&p, &consistent("v1.6.3", "1.18.13"), &ctx());
    let w = e.of(Warn).next().unwrap();
    assert!(
        w.message.contains("oldest supported minor") && w.message.contains("1.7 or later"),
        "{}",
        w.message
    );
}

fn with_addon(mut obj: Value, name: &str, enabled: bool, env: &str) -> Value {
    obj["spec"]["cluster"]["addons"][0]["addonsList"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": name, "enabled": enabled}));
    obj["metadata"]["labels"]["environment"] = json!(env);
    obj
}

#[test]
fn experimental_addons_deny_on_production_and_warn_elsewhere() {
    let p = policy();
    let base = consistent("v1.8.5", "1.20.13");
    for (addon, enabled, env, want) in [
        ("istio", true, "production", Some(Deny)),
        ("istio", true, "staging", Some(Warn)),
        ("kiali", true, "production", Some(Deny)),
        ("Jaeger", true, "dev", Some(Warn)),
        ("istio", false, "production", None),
        ("traefik", true, "production", None),
    ] {
        let e = eval_with(&p, &with_addon(base.clone(), addon, enabled, env), &ctx());
        let got = e
            .violations
            .iter()
            .find(|v| v.rule == ExperimentalComponent)
            .map(|v| v.severity);
        assert_eq!(
            got, want,
            "{addon} enabled={enabled} on {env}: {:#?}",
            e.violations
        );
    }
    let e = eval_with(&p, &with_addon(base, "istio", true, "production"), &ctx());
    let m = &e.first_denial().unwrap().message;
    assert!(
        m.contains("environment=production") && m.contains("enabled: false"),
        "{m}"
    );
}

#[test]
fn production_selector_is_the_policys() {
    let yaml = DEFAULT_POLICY_YAML.replace(
        "    matchLabels:\n      environment: production\n",
        "    matchExpressions:\n    - {key: tier, operator: In, values: [prod, critical]}\n",
    );
    let p = Policy::from_yaml(&yaml).unwrap();
    let mut obj = with_addon(consistent("v1.8.5", "1.20.13"), "istio", true, "production");
    let e = eval_with(&p, &obj, &ctx());
    assert_eq!(
        e.verdict,
        Verdict::Warned,
        "environment=production is not production under this policy"
    );
    obj["metadata"]["labels"]["tier"] = json!("critical");
    assert_eq!(eval_with(&p, &obj, &ctx()).verdict, Verdict::Denied);
}

#[test]
fn secondary_support_is_a_note_not_a_verdict() {
    let p = policy();
    let e = eval_with(&p, &consistent("v1.8.5", "1.20.13"), &ctx());
    assert_eq!(e.verdict, Verdict::Allowed);
    let notes: Vec<_> = e.of(Info).collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].rule, SecondarySupport);
    assert!(
        notes[0]
            .message
            .starts_with("addons kommander, prometheus are under secondary support"),
        "{}",
        notes[0].message
    );

    let no_addons = DEFAULT_POLICY_YAML.replace("    addons: true\n", "    addons: false\n");
    let p2 = Policy::from_yaml(&no_addons).unwrap();
    assert!(
        eval_with(&p2, &consistent("v1.8.5", "1.20.13"), &ctx())
            .violations
            .is_empty()
    );
}

fn addon(kba: &str, min: Option<&str>, max: Option<&str>, name: &str) -> Value {
    let mut k = serde_json::Map::new();
    if let Some(m) = min {
        k.insert("minSupportedVersion".into(), json!(m));
    }
    if let Some(m) = max {
        k.insert("maxSupportedVersion".into(), json!(m));
    }
    json!({
        "apiVersion": "kubeaddons.mesosphere.io/v1beta2",
        "kind": "Addon",
        "metadata": {
            "name": name, "namespace": "kubeaddons",
            "labels": {"kubeaddons.mesosphere.io/name": name},
            "annotations": {"catalog.kubeaddons.mesosphere.io/origin-repository-version": kba}
        },
        "spec": {"kubernetes": k, "chartReference": {"chart": name, "version": "1.0.0"}}
    })
}

#[test]
fn addons_are_checked_against_the_hosting_cluster() {
    let p = policy();
    let on = |v: &str| Context::new(today()).with_hosting_kubernetes(Some(v.parse().unwrap()));
    let cases = [
        (
            addon("stable-1.20-4.4.0", Some("v1.15.6"), None, "prometheus"),
            "1.20.13",
            Verdict::Allowed,
            vec![],
        ),
        (
            addon("stable-1.20-4.4.0", Some("v1.15.6"), None, "prometheus"),
            "1.15.5",
            Verdict::Denied,
            vec![
                (AddonKubernetesIncompatible, Deny),
                (KbaKubernetesMismatch, Deny),
            ],
        ),
        (
            addon("stable-1.15-4.4.0", Some("v1.15.6"), None, "prometheus"),
            "1.15.6",
            Verdict::Allowed,
            vec![],
        ),
        (
            addon(
                "stable-1.20-4.4.0",
                Some("1.16.0"),
                Some("1.20.x"),
                "velero",
            ),
            "1.20.13",
            Verdict::Allowed,
            vec![],
        ),
        (
            addon(
                "stable-1.21-4.4.0",
                Some("1.16.0"),
                Some("1.20.x"),
                "velero",
            ),
            "1.21.1",
            Verdict::Denied,
            vec![(AddonKubernetesIncompatible, Deny)],
        ),
        (
            addon("stable-1.19-3.2.0", Some("1.16.0"), None, "velero"),
            "1.20.13",
            Verdict::Denied,
            vec![(KbaKubernetesMismatch, Deny)],
        ),
        (
            addon("stable-1.20-4.4.0", Some("one"), None, "velero"),
            "1.20.13",
            Verdict::Denied,
            vec![(VersionInvalid, Deny)],
        ),
        (
            addon("stable-1.20-4.4.0", None, None, "istio"),
            "1.20.13",
            Verdict::Warned,
            vec![(ExperimentalComponent, Warn)],
        ),
    ];
    for (obj, hosting, verdict, want) in cases {
        let e = eval_with(&p, &obj, &on(hosting));
        let want: BTreeSet<_> = want.into_iter().collect();
        assert_eq!(
            (e.verdict, rules(&e)),
            (verdict, want),
            "{} on {hosting}: {:#?}",
            obj["metadata"]["name"],
            e.violations
        );
    }
    // Without the hosting version the range cannot be checked, but the object is still read.
    let e = eval_with(
        &p,
        &addon("stable-1.20-4.4.0", Some("v1.15.6"), None, "prometheus"),
        &ctx(),
    );
    assert_eq!(e.verdict, Verdict::Allowed);
    let e = eval_with(
        &p,
        &addon("stable-1.20-4.4.0", Some("v1.21.0"), None, "prometheus"),
        &on("1.20.13"),
    );
    assert!(
        e.first_denial()
            .unwrap()
            .message
            .contains("needs Kubernetes 1.21.0 or newer"),
        "{:?}",
        e.first_denial()
    );
}

#[test]
fn kudo_operators_under_secondary_support() {
    let p = policy();
    let inst = |op: &str| {
        json!({"apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": "x", "labels": {"kudo.dev/operator": op}}, "spec": {"operatorVersion": {"name": format!("{op}-1.0.0")}}})
    };
    for op in ["kafka", "cassandra", "Spark"] {
        let e = eval_with(&p, &inst(op), &ctx());
        assert_eq!(e.verdict, Verdict::Allowed);
        assert!(e.has_rule(SecondarySupport), "{op}");
    }
    assert!(
        eval_with(&p, &inst("zookeeper"), &ctx())
            .violations
            .is_empty()
    );
}

#[test]
fn untargeted_kinds_are_not_evaluated() {
    let p = policy();
    assert!(
        evaluate(
            &p,
            &json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            &ctx()
        )
        .is_none()
    );
    assert!(
        evaluate(
            &p,
            &json!({"apiVersion": "kommander.mesosphere.io/v1beta2", "kind": "KonvoyCluster"}),
            &ctx()
        )
        .is_none()
    );
    assert!(evaluate(&p, &json!({"kind": "KonvoyCluster"}), &ctx()).is_none());
    assert!(evaluate(&p, &json!("a string"), &ctx()).is_none());
}

#[test]
fn cluster_configuration_and_provisioner_presets() {
    let p = policy();
    let (objs, errs) = crate::cli::input::parse_objects(
        "cluster.yaml",
        include_str!("../../examples/clusters/cluster.yaml"),
    );
    assert!(errs.is_empty());
    for o in &objs {
        assert_eq!(
            eval_with(&p, &o.object, &ctx()).verdict,
            Verdict::Allowed,
            "{}",
            o.object["kind"]
        );
    }
    let mut cc = objs[1].object.clone();
    cc["spec"]["version"] = json!("v1.5.0");
    cc["spec"]["kubernetes"]["version"] = json!("1.17.8");
    let e = eval_with(&p, &cc, &ctx());
    // KBA 1.20 on 1.17, Kommander 1.4 on Konvoy 1.5 and on Kubernetes 1.17, Konvoy out of window.
    assert_eq!(
        rules(&e),
        BTreeSet::from([
            (KonvoyUnsupported, Deny),
            (KbaKubernetesMismatch, Deny),
            (KommanderMismatch, Deny)
        ])
    );
    assert_eq!(
        e.of(Deny).filter(|v| v.rule == KommanderMismatch).count(),
        2
    );
    let mut prov = objs[0].object.clone();
    prov["spec"]["version"] = json!("v1.4.6");
    assert_eq!(
        rules(&eval_with(&p, &prov, &ctx())),
        BTreeSet::from([(KonvoyUnsupported, Deny)])
    );
}

#[test]
fn a_new_release_moves_the_window_and_the_verdicts() {
    let with_19 = DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x, default: 1.21.2}\n    kommander: \"1.5\"\n",
    );
    let p = Policy::from_yaml(&with_19).unwrap();
    let e = eval_with(&p, &consistent("v1.6.3", "1.18.13"), &ctx());
    assert_eq!(e.verdict, Verdict::Denied);
    assert_eq!(
        e.first_denial().unwrap().message,
        "Konvoy 1.6.3 is out of support: supported are 1.9.x, 1.8.x, 1.7.x (N-2 of latest 1.9); upgrade to 1.7 or later (Konvoy 1.7 supports Kubernetes 1.17.x to 1.19.x and pairs with Kommander 1.3.x)"
    );
    assert_eq!(
        eval_with(&p, &consistent("v1.7.5", "1.19.15"), &ctx()).verdict,
        Verdict::Warned
    );
    assert_eq!(
        eval_with(&p, &consistent("v1.9.0", "1.21.2"), &ctx()).verdict,
        Verdict::Allowed
    );
}

#[test]
fn dates_move_verdicts() {
    let yaml = DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"1.9\"\n    releaseDate: \"2027-01-15\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n    kommander: \"1.5\"\n",
    );
    let p = Policy::from_yaml(&yaml).unwrap();
    let old = consistent("v1.6.3", "1.18.13");
    assert_eq!(
        eval_with(&p, &old, &Context::new(date(2027, 1, 14))).verdict,
        Verdict::Warned
    );
    assert_eq!(
        eval_with(&p, &old, &Context::new(date(2027, 1, 15))).verdict,
        Verdict::Denied
    );
    // A cluster already on the unreleased minor is a pre-release until its day.
    let early = consistent("v1.9.0", "1.21.0");
    let e = eval_with(&p, &early, &Context::new(date(2027, 1, 14)));
    assert_eq!(rules(&e), BTreeSet::from([(Prerelease, Warn)]));
    assert_eq!(
        eval_with(&p, &early, &Context::new(date(2027, 1, 15))).verdict,
        Verdict::Allowed
    );
}

#[test]
fn a_policy_with_its_own_targets() {
    let yaml = format!(
        "{DEFAULT_POLICY_YAML}  targets:\n  - apiGroup: example.com\n    kind: Platform\n    resource: platforms\n    fields:\n      productVersion: $.spec.platformVersion\n      kubernetesVersion: $.status.kubernetesVersion\n"
    );
    let p = Policy::from_yaml(&yaml).unwrap();
    assert_eq!(p.targets().len(), 1, "named targets replace the presets");
    let obj = json!({"apiVersion": "example.com/v1", "kind": "Platform",
        "spec": {"platformVersion": "1.8.1"}, "status": {"kubernetesVersion": "1.22.0"}});
    let e = eval_with(&p, &obj, &ctx());
    assert_eq!(rules(&e), BTreeSet::from([(KubernetesOutOfRange, Deny)]));
    assert_eq!(
        e.first_denial().unwrap().field.as_deref(),
        Some("status.kubernetesVersion")
    );
    assert!(evaluate(&p, &consistent("v1.5.6", "1.17.17"), &ctx()).is_none());
}

#[test]
fn denied_rules_for_ratcheting() {
    let p = policy();
    let e = eval_with(
        &p,
        &kc(
            json!("v1.5.6"),
            json!("1.20.13"),
            json!("stable-1.19-3.2.0"),
            json!("stable-1.20-1.1.0"),
        ),
        &ctx(),
    );
    assert_eq!(
        e.denied_rules(),
        BTreeSet::from([
            KonvoyUnsupported,
            KubernetesOutOfRange,
            KbaKubernetesMismatch
        ])
    );
}

#[test]
fn hostile_shapes_do_not_panic() {
    let p = policy();
    let shapes = [
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster"}),
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster", "spec": "x"}),
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster", "spec": {"cluster": {"addons": "x"}}}),
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster", "spec": {"cluster": {"addons": [1, null, {"addonsList": 3}]}}}),
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster", "metadata": {"labels": [1]}, "spec": {"cluster": {"addons": [{"configRepository": 5, "addonsList": [{"name": "istio", "enabled": true}]}]}}}),
    ];
    for s in shapes {
        let _ = eval_with(&p, &s, &ctx());
    }
    // 10,000 addons in one spec: still evaluated, one note.
    let mut big = consistent("v1.8.5", "1.20.13");
    let list: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("a{i}"), "enabled": true}))
        .collect();
    big["spec"]["cluster"]["addons"][0]["addonsList"] = Value::Array(list);
    let e = eval_with(&p, &big, &ctx());
    assert_eq!(e.verdict, Verdict::Allowed);
    assert_eq!(e.of(Info).count(), 1);
}

/// The admission path: `new` as an UPDATE of `old`, through the policy set.
fn update_with(p: &Policy, old: &Value, new: &Value) -> Evaluation {
    PolicySet::from_policies(vec![std::sync::Arc::new(p.clone())])
        .assess(new, Some(old), &ctx())
        .expect("a target matches")
        .evaluation
}

fn platform_policy(fields: &str) -> Policy {
    let yaml = format!(
        "{DEFAULT_POLICY_YAML}  targets:\n  - apiGroup: example.com\n    kind: Platform\n    resource: platforms\n    fields:\n{fields}"
    );
    Policy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn ratcheting_reads_keys_with_quotes_and_dots_by_pointer() {
    // A key holding `']` and `.`: its display form `spec['a.b']['c']d']` cannot be parsed back.
    let p = platform_policy("      productVersion: \"$.spec['a.b']['c\\\\']d']\"\n");
    let obj = |v: &str, team: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Platform",
            "metadata": {"name": "x", "labels": {"team": team}},
            "spec": {"a.b": {"c']d": v}}})
    };
    let old = obj("v1.5.6", "a");
    assert_eq!(eval_with(&p, &old, &ctx()).verdict, Verdict::Denied);
    let e = update_with(&p, &old, &obj("v1.5.6", "b"));
    assert_eq!(e.verdict, Verdict::Warned, "unchanged: {:#?}", e.violations);
    assert_eq!(
        e.violations[0].field.as_deref(),
        Some("spec['a.b']['c']d']")
    );
    let e = update_with(&p, &old, &obj("v1.4.6", "b"));
    assert_eq!(e.verdict, Verdict::Denied, "a downgrade is still denied");
}

#[test]
fn ratcheting_tells_apart_fields_whose_display_is_cut() {
    // Two annotation keys that agree on more than the display limit: their displayed fields are
    // the same, their pointers are not.
    let p = platform_policy(
        "      productVersion: $.spec.version\n      kubernetesVersion: $.spec.k8s\n      kbaRef: \"$.metadata.annotations[*]\"\n",
    );
    let long = "k".repeat(MAX_FIELD_CHARS + 50);
    let (a, b) = (format!("{long}-a"), format!("{long}-b"));
    let obj = |va: &str, vb: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Platform",
            "metadata": {"name": "x", "annotations": {a.clone(): va, b.clone(): vb}},
            "spec": {"version": "v1.8.5", "k8s": "1.20.13"}})
    };
    let old = obj("stable-1.19-4.4.0", "stable-1.20-4.4.0");
    let before = eval_with(&p, &old, &ctx());
    assert_eq!(
        before.denied_rules(),
        BTreeSet::from([KbaKubernetesMismatch])
    );
    let new = obj("stable-1.19-4.4.0", "stable-1.19-4.4.0");
    let after = eval_with(&p, &new, &ctx());
    assert_eq!(
        after.of(Deny).count(),
        2,
        "one per key: {:#?}",
        after.violations
    );
    let fields: BTreeSet<_> = after.of(Deny).map(|v| v.field.clone()).collect();
    assert_eq!(
        fields.len(),
        1,
        "the display forms are cut to the same text"
    );
    let e = update_with(&p, &old, &new);
    assert_eq!(
        e.verdict,
        Verdict::Denied,
        "the new mismatch at the second key is not the old one: {:#?}",
        e.violations
    );
    assert_eq!(e.of(Deny).count(), 1);
    assert_eq!(e.of(Warn).count(), 1);
}

#[test]
fn ratcheting_allows_edits_and_upgrades_but_not_new_or_worse_violations() {
    let p = policy();
    let upd = |old: &Value, new: &Value| update_with(&p, old, new);

    let old = consistent("v1.5.6", "1.17.17");
    // Relabelling an out-of-support cluster.
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["team"] = json!("payments");
    let e = upd(&old, &relabelled);
    assert_eq!(e.verdict, Verdict::Warned, "{:#?}", e.violations);
    assert!(
        e.violations
            .iter()
            .any(|v| v.rule == KonvoyUnsupported && v.message.contains("already so before"))
    );
    // A patch upgrade that stays out of support, and one step that reaches support.
    assert_eq!(
        upd(&old, &consistent("v1.5.7", "1.17.17")).verdict,
        Verdict::Warned
    );
    assert_eq!(
        upd(
            &consistent("v1.4.6", "1.16.14"),
            &consistent("v1.5.6", "1.16.14")
        )
        .verdict,
        Verdict::Warned
    );
    let upgraded = consistent("v1.6.0", "1.17.17");
    assert_eq!(
        upd(&old, &upgraded).verdict,
        Verdict::Warned,
        "1.5 -> 1.6 reaches the window (nearing end)"
    );
    // Downgrades and new violations are refused.
    assert_eq!(
        upd(&old, &consistent("v1.4.6", "1.16.14")).verdict,
        Verdict::Denied
    );
    let supported = consistent("v1.8.5", "1.20.13");
    assert_eq!(
        upd(&supported, &consistent("v1.5.6", "1.17.17")).verdict,
        Verdict::Denied
    );
    let mut kba_broken = old.clone();
    kba_broken["spec"]["cluster"]["addons"][0]["configVersion"] = json!("stable-1.19-3.2.0");
    let e = upd(&old, &kba_broken);
    assert_eq!(e.verdict, Verdict::Denied);
    assert_eq!(e.denied_rules(), BTreeSet::from([KbaKubernetesMismatch]));
    // A Konvoy upgrade whose Kubernetes range no longer holds the unchanged version is new.
    let e = upd(
        &supported,
        &kc(
            json!("v1.8.5"),
            json!("1.21.0"),
            json!("stable-1.21-4.4.0"),
            json!("stable-1.21-1.4.4"),
        ),
    );
    assert_eq!(e.denied_rules(), BTreeSet::from([KubernetesOutOfRange]));
}

#[test]
fn hostile_sizes_stay_bounded_and_fast() {
    let p = policy();
    let mut big = consistent("v1.8.5", "1.20.13");
    big["metadata"]["labels"]["environment"] = json!("production");
    let list: Vec<Value> = (0..50_000).map(|i| json!({"name": if i % 2 == 0 { "istio".to_string() } else { format!("istio-{i}") }, "enabled": true})).collect();
    big["spec"]["cluster"]["addons"][0]["addonsList"] = Value::Array(list);
    let started = std::time::Instant::now();
    let e = eval_with(&p, &big, &ctx());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(e.verdict, Verdict::Denied);
    assert!(e.violations.len() <= MAX_VIOLATIONS);
    assert!(
        e.violations
            .iter()
            .any(|v| v.message.contains("more violations not listed"))
    );

    let huge = "9".repeat(1 << 20);
    let e = eval_with(
        &p,
        &consistent("v1.8.5", "1.20.13").tap_version(&huge),
        &ctx(),
    );
    assert_eq!(e.verdict, Verdict::Denied);
    assert!(
        e.violations
            .iter()
            .all(|v| v.message.chars().count() <= MAX_MESSAGE_CHARS + 1)
    );
}

trait TapVersion {
    fn tap_version(self, v: &str) -> Value;
}

impl TapVersion for Value {
    fn tap_version(mut self, v: &str) -> Value {
        self["spec"]["provisioner"]["version"] = json!(v);
        self
    }
}

#[test]
fn a_missing_version_is_never_ratcheted() {
    // Fail closed: with `missingVersion: Deny`, an object that names no version stays denied on
    // UPDATE (there is no value to compare); the way out is to set the version.
    let p = Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  missingVersion: Deny\n")).unwrap();
    let old = kc(
        Value::Null,
        json!("1.20.13"),
        json!("stable-1.20-4.4.0"),
        json!("stable-1.20-1.4.4"),
    );
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["team"] = json!("payments");
    let e = update_with(&p, &old, &relabelled);
    assert_eq!(e.denied_rules(), BTreeSet::from([VersionMissing]));
    let mut fixed = old.clone();
    fixed["spec"]["provisioner"]["version"] = json!("v1.8.5");
    assert_eq!(update_with(&p, &old, &fixed).verdict, Verdict::Allowed);
}

#[test]
fn version_invalid_messages_do_not_repeat_the_field() {
    // Every surface prints `field: message`; the message must not start with the field again.
    for (raw, starts) in [
        (json!("1.8"), "`1.8` is not a version"),
        (json!(""), "empty; set the Konvoy version"),
        (json!(1.8), "the number 1.8, not a version string"),
    ] {
        let mut obj = consistent("v1.8.5", "1.20.13");
        obj["spec"]["provisioner"]["version"] = raw;
        let e = eval_with(&policy(), &obj, &ctx());
        let v = e.first_denial().expect("denied");
        assert_eq!(v.rule, VersionInvalid);
        assert_eq!(v.field.as_deref(), Some("spec.provisioner.version"));
        assert!(v.message.starts_with(starts), "{}", v.message);
        assert!(
            !v.message.contains("spec.provisioner.version"),
            "{}",
            v.message
        );
    }
}
