//! Table tests of the upgrade-path rules and `konvoy-version-mismatch`, through the one
//! evaluation path (`PolicySet::assess` with the old object, as the webhook calls it on UPDATE),
//! on the real KonvoyCluster and cluster.yaml shapes and the embedded default policy.

use std::sync::Arc;

use jiff::civil::date;
use serde_json::{Value, json};

use super::*;
use crate::exceptions::{CompiledException, ExceptionSet};
use crate::policy::DEFAULT_POLICY_YAML;
use crate::policyset::{PolicySet, Subject};
use crate::{Context, Evaluation, Verdict};

fn ctx() -> Context {
    Context::new(date(2026, 11, 24))
}

/// A KonvoyCluster on Konvoy `konvoy` and Kubernetes `k8s` (either may be null).
fn cluster(konvoy: Value, k8s: Value) -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": "c", "namespace": "kommander", "labels": {"environment": "staging"}},
        "spec": {
            "provisioner": {"provider": "aws", "version": konvoy},
            "cluster": {"kubernetes": {"version": k8s}}
        }
    })
}

fn c(konvoy: &str, k8s: &str) -> Value {
    cluster(json!(konvoy), json!(k8s))
}

fn policy_with(extra: &str) -> PolicySet {
    let yaml = DEFAULT_POLICY_YAML.replace(
        "  upgrades:\n    maxMinorStep: 1\n    allowDowngrade: false\n",
        extra,
    );
    assert_ne!(yaml, DEFAULT_POLICY_YAML, "the default names its upgrades");
    let p = Policy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"));
    PolicySet::from_policies(vec![Arc::new(p)])
}

fn update(set: &PolicySet, old: &Value, new: &Value, ctx: &Context) -> Evaluation {
    set.assess(Subject::update(new, Some(old)), ctx)
        .expect("a target matches")
        .evaluation
}

/// The new rules an evaluation carries: (rule, severity, field).
fn new_rules(e: &Evaluation) -> Vec<(Rule, Severity, String)> {
    e.violations
        .iter()
        .filter(|v| {
            matches!(
                v.rule,
                Rule::UpgradeSkipsMinor
                    | Rule::Downgrade
                    | Rule::KonvoyVersionMismatch
                    | Rule::VersionRemoved
            )
        })
        .map(|v| (v.rule, v.severity, v.field.clone().unwrap_or_default()))
        .collect()
}

const KONVOY: &str = "spec.provisioner.version";
const K8S: &str = "spec.cluster.kubernetes.version";

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one case per upgrade step and policy, a table read top to bottom"
)]
fn the_upgrade_table() {
    use Rule::{Downgrade, UpgradeSkipsMinor, VersionRemoved};
    use Severity::{Deny, Warn};
    let default = PolicySet::embedded_default();
    let step2 = policy_with("  upgrades: {maxMinorStep: 2}\n");
    let downgrades = policy_with("  upgrades: {allowDowngrade: true}\n");
    let absent = policy_with("");
    type Case<'a> = (
        &'static str,
        &'a PolicySet,
        Value,
        Value,
        Vec<(Rule, Severity, &'static str)>,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "a step of exactly 1, Konvoy and Kubernetes",
            &default,
            c("v1.7.5", "1.19.15"),
            c("v1.8.5", "1.20.13"),
            vec![],
            &[],
        ),
        (
            "a step of 2 in Konvoy names the release to go through",
            &default,
            c("v1.6.3", "1.18.13"),
            c("v1.8.5", "1.18.13"),
            vec![(UpgradeSkipsMinor, Deny, KONVOY)],
            &[
                "from 1.6.3 to 1.8.5, 2 minors up",
                "one minor at a time",
                "(spec.upgrades.maxMinorStep: 1)",
                "upgrade to 1.7 first (1.7.5 with Kubernetes 1.19.15)",
            ],
        ),
        (
            "a step of 3 goes through the next minor",
            &default,
            c("v1.5.6", "1.17.17"),
            c("v1.8.5", "1.18.13"),
            vec![(UpgradeSkipsMinor, Deny, KONVOY)],
            &[
                "3 minors up",
                "upgrade to 1.6 first (1.6.3 with Kubernetes 1.18.13)",
            ],
        ),
        (
            "the defaults hold when spec.upgrades is absent",
            &absent,
            c("v1.6.3", "1.18.13"),
            c("v1.8.5", "1.18.13"),
            vec![(UpgradeSkipsMinor, Deny, KONVOY)],
            &["upgrade to 1.7 first"],
        ),
        (
            "a Kubernetes minor skipped",
            &default,
            c("v1.8.5", "1.18.13"),
            c("v1.8.5", "1.20.13"),
            vec![(UpgradeSkipsMinor, Deny, K8S)],
            &[
                "moves Kubernetes from 1.18.13 to 1.20.13, 2 minors up",
                "a control plane upgrades one minor at a time",
                "upgrade to Kubernetes 1.19 first (e.g. 1.19.15, the default of Konvoy 1.7)",
            ],
        ),
        (
            "both skipped: each reported at its field",
            &default,
            c("v1.6.3", "1.18.13"),
            c("v1.8.5", "1.20.13"),
            vec![
                (UpgradeSkipsMinor, Deny, KONVOY),
                (UpgradeSkipsMinor, Deny, K8S),
            ],
            &[],
        ),
        (
            "a patch-only change",
            &default,
            c("v1.8.4", "1.20.11"),
            c("v1.8.5", "1.20.13"),
            vec![],
            &[],
        ),
        (
            "unchanged",
            &default,
            c("v1.8.5", "1.20.13"),
            c("v1.8.5", "1.20.13"),
            vec![],
            &[],
        ),
        (
            "build metadata is no change",
            &default,
            c("v1.8.5", "1.20.13"),
            c("1.8.5", "1.20.13+d2iq.2"),
            vec![],
            &[],
        ),
        (
            "a downgrade of a Konvoy patch",
            &default,
            c("v1.8.5", "1.20.13"),
            c("v1.8.4", "1.20.13"),
            vec![(Downgrade, Deny, KONVOY)],
            &[
                "lowers Konvoy from 1.8.5 to 1.8.4",
                "spec.upgrades.allowDowngrade: false",
                "keep 1.8.5",
            ],
        ),
        (
            "a downgrade of a Kubernetes patch",
            &default,
            c("v1.8.5", "1.20.13"),
            c("v1.8.5", "1.20.11"),
            vec![(Downgrade, Deny, K8S)],
            &["lowers Kubernetes from 1.20.13 to 1.20.11"],
        ),
        (
            "a downgrade of two minors is a downgrade, not a skip",
            &default,
            c("v1.8.5", "1.18.13"),
            c("v1.6.3", "1.18.13"),
            vec![(Downgrade, Deny, KONVOY)],
            &[],
        ),
        (
            "a pre-release of the same patch is lower",
            &default,
            c("v1.8.5", "1.20.13"),
            c("v1.8.5-rc.1", "1.20.13"),
            vec![(Downgrade, Deny, KONVOY)],
            &[],
        ),
        (
            "allowDowngrade: true",
            &downgrades,
            c("v1.8.5", "1.20.13"),
            c("v1.7.5", "1.19.15"),
            vec![],
            &[],
        ),
        (
            "allowDowngrade keeps the step",
            &downgrades,
            c("v1.6.3", "1.18.13"),
            c("v1.8.5", "1.18.13"),
            vec![(UpgradeSkipsMinor, Deny, KONVOY)],
            &[],
        ),
        (
            "maxMinorStep 2: a step of 2",
            &step2,
            c("v1.6.3", "1.18.13"),
            c("v1.8.5", "1.20.13"),
            vec![],
            &[],
        ),
        (
            "maxMinorStep 2: a step of 3 goes through the furthest allowed",
            &step2,
            c("v1.5.6", "1.17.17"),
            c("v1.8.5", "1.20.13"),
            vec![
                (UpgradeSkipsMinor, Deny, KONVOY),
                (UpgradeSkipsMinor, Deny, K8S),
            ],
            &[
                "at most 2 minors at a time",
                "upgrade to 1.7 first (1.7.5 with Kubernetes 1.19.15)",
                "upgrade to Kubernetes 1.19 first",
            ],
        ),
        (
            "no old version: nothing to compare",
            &default,
            cluster(Value::Null, Value::Null),
            c("v1.8.5", "1.20.13"),
            vec![],
            &[],
        ),
        (
            // Not silently: the step cannot be judged, which is said (the new version is judged
            // on its own as on a create).
            "an invalid old version: the step cannot be checked",
            &default,
            c("latest", "1.18"),
            c("v1.8.5", "1.20.13"),
            vec![
                (UpgradeSkipsMinor, Warn, KONVOY),
                (UpgradeSkipsMinor, Warn, K8S),
            ],
            &[
                "the previous revision's Konvoy version `latest` is not a version, so the step to 1.8.5 cannot be checked",
                "Kubernetes version `1.18` is not a version",
            ],
        ),
        (
            "the Konvoy version unset: the first step around the upgrade rules",
            &default,
            c("v1.6.3", "1.18.13"),
            cluster(Value::Null, json!("1.18.13")),
            vec![(VersionRemoved, Deny, KONVOY)],
            &[
                "the update removes the Konvoy version (`v1.6.3`)",
                "restore the version",
            ],
        ),
        (
            "the Kubernetes version unset",
            &default,
            c("v1.8.5", "1.18.13"),
            cluster(json!("v1.8.5"), Value::Null),
            vec![(VersionRemoved, Deny, K8S)],
            &["removes the Kubernetes version (`1.18.13`)"],
        ),
        (
            "an invalid version removed is still removed",
            &default,
            c("latest", "1.18.13"),
            cluster(Value::Null, json!("1.18.13")),
            vec![(VersionRemoved, Deny, KONVOY)],
            &["(`latest`)"],
        ),
        (
            "no version before or after: nothing removed (version-missing speaks)",
            &default,
            cluster(Value::Null, json!("1.18.13")),
            cluster(Value::Null, json!("1.18.13")),
            vec![],
            &[],
        ),
    ];
    for (why, set, old, new, want, says) in cases {
        let e = update(set, &old, &new, &ctx());
        let want: Vec<_> = want
            .into_iter()
            .map(|(r, s, f)| (r, s, f.to_string()))
            .collect();
        assert_eq!(new_rules(&e), want, "{why}: {:#?}", e.violations);
        if want.iter().any(|(_, s, _)| *s == Severity::Deny) {
            assert_eq!(e.verdict, Verdict::Denied, "{why}");
        }
        let text: Vec<&str> = e
            .violations
            .iter()
            .filter(|v| {
                matches!(
                    v.rule,
                    Rule::UpgradeSkipsMinor | Rule::Downgrade | Rule::VersionRemoved
                )
            })
            .map(|v| v.message.as_str())
            .collect();
        for s in says {
            assert!(
                text.iter().any(|m| m.contains(s)),
                "{why}: no {s:?} in {text:#?}"
            );
        }
    }
}

/// Issue 28, path 3: unset the version (once admitted with a `version-missing` warning), then
/// set one two minors up. The first step is now refused, so the second never has a missing old
/// version to start from; the same holds for a downgrade.
#[test]
fn the_upgrade_rules_cannot_be_walked_around_in_two_steps() {
    let set = PolicySet::embedded_default();
    let unset = |k8s: &str| {
        let mut o = c("v1.6.3", k8s);
        // The key gone, not null: what `kubectl patch --type=json -p '[{"op":"remove",...}]'`
        // leaves.
        o["spec"]["provisioner"]
            .as_object_mut()
            .unwrap()
            .remove("version");
        o
    };
    for (from, to) in [("v1.6.3", "v1.8.5"), ("v1.8.5", "v1.6.3")] {
        let old = c(from, "1.18.13");
        let direct = update(&set, &old, &c(to, "1.18.13"), &ctx());
        assert_eq!(direct.verdict, Verdict::Denied, "{from} -> {to} directly");
        let first = update(&set, &old, &unset("1.18.13"), &ctx());
        assert_eq!(first.verdict, Verdict::Denied, "{from} -> unset");
        assert_eq!(
            first.denied_rules().into_iter().collect::<Vec<_>>(),
            [Rule::VersionRemoved],
            "{:#?}",
            first.violations
        );
    }
    // An object that never named a version is not newly denied by an unrelated edit: only what
    // was there can be removed (ratcheting-aware by construction).
    let never = cluster(Value::Null, json!("1.18.13"));
    let mut relabelled = never.clone();
    relabelled["metadata"]["labels"]["team"] = json!("a");
    let e = update(&set, &never, &relabelled, &ctx());
    assert_eq!(e.verdict, Verdict::Warned, "{:#?}", e.violations);
    assert!(!e.has_rule(Rule::VersionRemoved));
    assert!(e.has_rule(Rule::VersionMissing));
}

#[test]
fn a_create_is_never_judged_as_an_upgrade() {
    let e = PolicySet::embedded_default()
        .assess(&c("v1.8.5", "1.20.13"), &ctx())
        .unwrap()
        .evaluation;
    assert_eq!(e.verdict, Verdict::Allowed, "{:#?}", e.violations);
}

#[test]
fn an_unsupported_cluster_may_still_upgrade_one_minor_at_a_time() {
    // Ratcheting forgives the old release's denial; the step rule still holds the path.
    let set = PolicySet::embedded_default();
    let one = update(
        &set,
        &c("v1.4.6", "1.16.14"),
        &c("v1.5.6", "1.16.14"),
        &ctx(),
    );
    assert_eq!(one.verdict, Verdict::Warned, "{:#?}", one.violations);
    assert!(new_rules(&one).is_empty());
    let two = update(
        &set,
        &c("v1.4.6", "1.16.14"),
        &c("v1.6.3", "1.16.14"),
        &ctx(),
    );
    assert_eq!(two.verdict, Verdict::Denied);
    assert_eq!(
        new_rules(&two),
        [(Rule::UpgradeSkipsMinor, Severity::Deny, KONVOY.to_string())]
    );
}

#[test]
fn an_update_that_relabels_a_skipped_cluster_is_not_ratcheted() {
    // The old object never carries an upgrade rule, so "already so before" cannot hold; an
    // UPDATE that changes nothing else keeps the denial of the step it makes.
    let set = PolicySet::embedded_default();
    let old = c("v1.6.3", "1.18.13");
    let mut new = c("v1.8.5", "1.18.13");
    new["metadata"]["labels"]["team"] = json!("payments");
    let e = update(&set, &old, &new, &ctx());
    let v = e
        .violations
        .iter()
        .find(|v| v.rule == Rule::UpgradeSkipsMinor)
        .expect("reported");
    assert_eq!(v.severity, Severity::Deny);
    assert!(!v.message.contains("already so before"), "{}", v.message);
}

fn exception(rules: Value) -> Arc<ExceptionSet> {
    let x: crate::spec::ExceptionDocument = serde_json::from_value(json!({
        "apiVersion": "supportgate.dev/v1alpha1",
        "kind": "SupportException",
        "metadata": {"name": "jump", "namespace": "supportgate",
                     "creationTimestamp": "2026-11-20T10:00:00Z"},
        "spec": {"reason": "vendor-assisted jump", "expires": "2027-01-31",
                 "rules": rules, "match": {"namespaces": ["kommander"], "names": ["c"]}},
    }))
    .unwrap();
    let x = CompiledException::compile(&x).unwrap();
    Arc::new(ExceptionSet::new(vec![Arc::new(x)]))
}

#[test]
fn an_exception_covers_upgrade_skips_minor_like_any_rule() {
    let set = PolicySet::embedded_default();
    let (old, new) = (c("v1.6.3", "1.18.13"), c("v1.8.5", "1.18.13"));
    let covered = ctx().with_exceptions(exception(json!(["upgrade-skips-minor"])));
    let e = update(&set, &old, &new, &covered);
    assert_eq!(e.verdict, Verdict::Warned, "{:#?}", e.violations);
    let v = e
        .violations
        .iter()
        .find(|v| v.rule == Rule::UpgradeSkipsMinor)
        .expect("the rule id stays");
    assert_eq!(v.severity, Severity::Warn);
    assert_eq!(v.exception.as_deref(), Some("supportgate/jump"));
    assert!(v.message.contains("upgrade to 1.7 first"), "{}", v.message);
    assert!(v.message.contains("supportgate/jump"), "{}", v.message);

    let other = ctx().with_exceptions(exception(json!(["downgrade"])));
    let e = update(&set, &old, &new, &other);
    assert_eq!(
        e.verdict,
        Verdict::Denied,
        "another rule's exception does not cover it"
    );
    let e = update(&set, &new, &old, &other);
    assert_eq!(e.verdict, Verdict::Warned, "it covers the downgrade back");
}

#[test]
fn max_minor_step_below_one_is_refused() {
    for step in ["0", "-1"] {
        let yaml = DEFAULT_POLICY_YAML.replace("maxMinorStep: 1", &format!("maxMinorStep: {step}"));
        let Err(crate::policy::PolicyError::Invalid(p)) = Policy::from_yaml(&yaml) else {
            panic!("{step}: accepted")
        };
        assert!(
            p.iter()
                .any(|m| m == "spec.upgrades.maxMinorStep: must be at least 1"),
            "{p:?}"
        );
    }
    let p = Policy::embedded_default();
    assert_eq!(p.upgrades.max_minor_step, 1);
    assert!(!p.upgrades.allow_downgrade);
}

#[test]
fn steps_count_minors_and_known_releases_across_majors() {
    let m = Minor::new;
    assert_eq!(minor_step(m(1, 6), m(1, 7), &[]), 1);
    assert_eq!(minor_step(m(1, 6), m(1, 8), &[]), 2);
    assert_eq!(minor_step(m(1, 8), m(1, 8), &[]), 0);
    assert_eq!(minor_step(m(1, 8), m(1, 6), &[]), 0);
    let known = [m(2, 1), m(2, 0), m(1, 8), m(1, 7)];
    assert_eq!(minor_step(m(1, 8), m(2, 0), &known), 1);
    assert_eq!(minor_step(m(1, 7), m(2, 1), &known), 3);
    assert_eq!(minor_step(m(1, 8), m(3, 0), &known), 2);
    assert_eq!(
        minor_step(m(1, 9), m(2, 0), &[]),
        1,
        "nothing known: one step"
    );
}

#[test]
fn across_majors_the_next_known_release_is_the_way_through() {
    let yaml = DEFAULT_POLICY_YAML.replace(
        "  product:\n",
        "  product:\n  - version: \"2.1\"\n    kubernetes: {min: 1.21.x, max: 1.21.x, default: 1.21.6}\n  - version: \"2.0\"\n    latestPatch: 2.0.1\n    kubernetes: {min: 1.21.x, max: 1.21.x, default: 1.21.3}\n",
    );
    let set = PolicySet::from_policies(vec![Arc::new(Policy::from_yaml(&yaml).unwrap())]);
    let e = update(&set, &c("v1.8.5", "1.21.3"), &c("v2.0.1", "1.21.3"), &ctx());
    assert!(
        new_rules(&e).is_empty(),
        "1.8 to 2.0 is one step: {:#?}",
        e.violations
    );
    let e = update(&set, &c("v1.8.5", "1.21.3"), &c("v2.1.0", "1.21.3"), &ctx());
    let v = e
        .violations
        .iter()
        .find(|v| v.rule == Rule::UpgradeSkipsMinor)
        .expect("two steps");
    assert!(
        v.message
            .contains("upgrade to 2.0 first (2.0.1 with Kubernetes 1.21.3)"),
        "{}",
        v.message
    );
}

#[test]
fn latest_patch_must_be_of_its_release() {
    let yaml = DEFAULT_POLICY_YAML.replace("latestPatch: 1.7.5", "latestPatch: 1.8.1");
    let Err(crate::policy::PolicyError::Invalid(p)) = Policy::from_yaml(&yaml) else {
        panic!("accepted")
    };
    assert!(
        p.iter()
            .any(|m| m == "spec.product[1].latestPatch: 1.8.1 is not a patch of 1.7"),
        "{p:?}"
    );
    let yaml = DEFAULT_POLICY_YAML.replace("    latestPatch: 1.7.5\n", "");
    let set = PolicySet::from_policies(vec![Arc::new(Policy::from_yaml(&yaml).unwrap())]);
    let e = update(
        &set,
        &c("v1.6.3", "1.18.13"),
        &c("v1.8.5", "1.18.13"),
        &ctx(),
    );
    assert!(
        e.violations.iter().any(|v| v
            .message
            .contains("upgrade to 1.7 first (1.7.x with Kubernetes 1.19.15)")),
        "{:#?}",
        e.violations
    );
}

// ---- konvoy-version-mismatch ------------------------------------------------------------------

fn with_cluster_version(mut o: Value, v: Value) -> Value {
    o["spec"]["cluster"]["version"] = v;
    o
}

#[test]
fn a_konvoycluster_names_one_konvoy_version() {
    use Rule::{KonvoyVersionMismatch, VersionInvalid};
    use Severity::Deny;
    let set = PolicySet::embedded_default();
    let base = c("v1.8.5", "1.20.13");
    type Case = (&'static str, Value, Vec<(Rule, Severity, &'static str)>);
    let cases: Vec<Case> = vec![
        ("unset", base.clone(), vec![]),
        (
            "the same",
            with_cluster_version(base.clone(), json!("v1.8.5")),
            vec![],
        ),
        (
            "the same without the v",
            with_cluster_version(base.clone(), json!("1.8.5")),
            vec![],
        ),
        (
            "another patch",
            with_cluster_version(base.clone(), json!("v1.8.4")),
            vec![(KonvoyVersionMismatch, Deny, "spec.cluster.version")],
        ),
        (
            "another minor",
            with_cluster_version(base.clone(), json!("v1.7.0")),
            vec![(KonvoyVersionMismatch, Deny, "spec.cluster.version")],
        ),
        (
            "only spec.cluster.version: it is the version",
            with_cluster_version(cluster(Value::Null, json!("1.20.13")), json!("v1.8.5")),
            vec![],
        ),
    ];
    for (why, obj, want) in cases {
        let e = set.assess(&obj, &ctx()).unwrap().evaluation;
        let want: Vec<_> = want
            .into_iter()
            .map(|(r, s, f)| (r, s, f.to_string()))
            .collect();
        assert_eq!(new_rules(&e), want, "{why}: {:#?}", e.violations);
        assert_eq!(
            e.verdict,
            if want.is_empty() {
                Verdict::Allowed
            } else {
                Verdict::Denied
            },
            "{why}: {:#?}",
            e.violations
        );
    }
    let e = set
        .assess(&with_cluster_version(base.clone(), json!("v1.7.0")), &ctx())
        .unwrap()
        .evaluation;
    let v = e.first_denial().unwrap();
    assert_eq!(
        v.message,
        "names Konvoy 1.7.0, but `spec.provisioner.version` names 1.8.5; Konvoy reads its version from both the ClusterProvisioner and the ClusterConfiguration, and they must agree: set both to the same version"
    );
    let e = set
        .assess(&with_cluster_version(base, json!("latest")), &ctx())
        .unwrap()
        .evaluation;
    assert_eq!(
        e.denied_rules().into_iter().collect::<Vec<_>>(),
        [VersionInvalid],
        "{:#?}",
        e.violations
    );
    assert_eq!(
        e.first_denial().unwrap().field.as_deref(),
        Some("spec.cluster.version")
    );
}

fn cluster_yaml(kind: &str, version: Value) -> Value {
    json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": kind,
           "metadata": {"name": "prod-east"},
           "spec": {"version": version, "kubernetes": {"version": "1.20.13"}}})
}

#[test]
fn a_configuration_agrees_with_its_provisioner() {
    let set = PolicySet::embedded_default();
    let cfg = cluster_yaml("ClusterConfiguration", json!("v1.8.5"));
    let judge = |prov: &Value| {
        let paired = Subject {
            object: &cfg,
            old: None,
            paired: Some(prov),
        };
        set.assess(paired, &ctx()).unwrap().evaluation
    };
    let same = judge(&cluster_yaml("ClusterProvisioner", json!("1.8.5")));
    assert_eq!(same.verdict, Verdict::Allowed, "{:#?}", same.violations);
    let unset = judge(&cluster_yaml("ClusterProvisioner", Value::Null));
    assert!(new_rules(&unset).is_empty());
    let other = judge(&cluster_yaml("ClusterProvisioner", json!("v1.8.4")));
    assert_eq!(other.verdict, Verdict::Denied);
    assert_eq!(
        new_rules(&other),
        [(
            Rule::KonvoyVersionMismatch,
            Severity::Deny,
            "spec.version".to_string()
        )]
    );
    assert!(
        other.violations[0].message.starts_with(
            "names Konvoy 1.8.5, but ClusterProvisioner prod-east (`spec.version`) names 1.8.4;"
        ),
        "{}",
        other.violations[0].message
    );
    let untargeted =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "prod-east"}});
    assert_eq!(judge(&untargeted).verdict, Verdict::Allowed);
}
