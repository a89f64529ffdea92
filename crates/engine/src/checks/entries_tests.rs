//! Issue 28, path 4: the KBA and Kommander checks cannot be evaded by respelling the repository,
//! and what the policy cannot identify on a production cluster is named.

use std::sync::Arc;

use jiff::civil::date;
use serde_json::{Value, json};

use crate::policy::{DEFAULT_POLICY_YAML, Policy};
use crate::policyset::{PolicySet, Subject};
use crate::rules::{Rule, Severity};
use crate::{Context, Evaluation, Verdict};

const KBA: &str = "https://github.com/mesosphere/kubernetes-base-addons";
const KOMMANDER: &str = "https://github.com/mesosphere/kubeaddons-kommander";

fn ctx() -> Context {
    Context::new(date(2026, 11, 24))
}

/// A Konvoy 1.8.5 KonvoyCluster on Kubernetes 1.20.13 with these addons entries.
fn cluster(env: &str, addons: Value) -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": "c", "namespace": "kommander", "labels": {"environment": env}},
        "spec": {
            "provisioner": {"version": "v1.8.5"},
            "cluster": {"kubernetes": {"version": "1.20.13"}, "addons": addons}
        }
    })
}

fn entry(repo: &str, version: Option<&str>) -> Value {
    let mut e =
        json!({"configRepository": repo, "addonsList": [{"name": "traefik", "enabled": false}]});
    if let Some(v) = version {
        e["configVersion"] = json!(v);
    }
    e
}

fn assess(set: &PolicySet, obj: &Value) -> Evaluation {
    set.assess(obj, &ctx()).expect("targeted").evaluation
}

/// (rule, severity, field) of every warning and denial.
fn found(e: &Evaluation) -> Vec<(Rule, Severity, String)> {
    e.violations
        .iter()
        .filter(|v| v.severity != Severity::Info)
        .map(|v| (v.rule, v.severity, v.field.clone().unwrap_or_default()))
        .collect()
}

/// The KBA ref `stable-1.18-3.0.0` is for Kubernetes 1.18, the cluster runs 1.20: denied in the
/// canonical spelling, and in every respelling git would clone the same repository from.
#[test]
fn a_respelled_kba_repository_is_checked_exactly_as_the_canonical_one() {
    let set = PolicySet::embedded_default();
    let kommander = entry(KOMMANDER, Some("stable-1.20-1.4.4"));
    let canonical = assess(
        &set,
        &cluster(
            "production",
            json!([entry(KBA, Some("stable-1.18-3.0.0")), kommander]),
        ),
    );
    let want = vec![(
        Rule::KbaKubernetesMismatch,
        Severity::Deny,
        "spec.cluster.addons[0].configVersion".to_string(),
    )];
    assert_eq!(found(&canonical), want, "{:#?}", canonical.violations);
    for repo in [
        "https://github.com/Mesosphere/Kubernetes-Base-Addons",
        "Mesosphere/Kubernetes-Base-Addons",
        "https://GitHub.com/mesosphere/kubernetes-base-addons",
        "https://github.com/mesosphere/kubernetes-base-addons.git",
        "https://github.com/mesosphere/kubernetes-base-addons/",
        "https://github.com/mesosphere/kubernetes-base-addons.git/",
        "https://github.com/mesosphere/kubernetes-base-addons#stable-1.18-3.0.0",
        "https://github.com/mesosphere/kubernetes-base-addons?ref=stable-1.18-3.0.0",
        "git@github.com:mesosphere/kubernetes-base-addons.git",
    ] {
        for env in ["production", "staging"] {
            let obj = cluster(
                env,
                json!([entry(repo, Some("stable-1.18-3.0.0")), kommander]),
            );
            let e = assess(&set, &obj);
            assert_eq!(found(&e), want, "{repo} on {env}: {:#?}", e.violations);
            assert_eq!(e.verdict, Verdict::Denied, "{repo}");
            assert_eq!(
                e.violations[0].message, canonical.violations[0].message,
                "{repo}"
            );
        }
    }
    // The Kommander entry likewise: a respelled repository on the wrong Kubernetes minor.
    let obj = cluster(
        "staging",
        json!([
            entry(KBA, Some("stable-1.20-4.4.0")),
            entry(
                "HTTPS://GITHUB.COM/MESOSPHERE/KUBEADDONS-KOMMANDER.GIT/",
                Some("stable-1.19-1.4.4")
            )
        ]),
    );
    let e = assess(&set, &obj);
    assert_eq!(
        found(&e),
        [(
            Rule::KommanderMismatch,
            Severity::Deny,
            "spec.cluster.addons[1].configVersion".into()
        )],
        "{:#?}",
        e.violations
    );
}

#[test]
fn a_ref_only_in_the_url_is_judged_as_the_ref() {
    let set = PolicySet::embedded_default();
    let kommander = entry(KOMMANDER, Some("stable-1.20-1.4.4"));
    for (repo, want) in [
        (
            "https://github.com/mesosphere/kubernetes-base-addons#stable-1.18-3.0.0",
            vec![Rule::KbaKubernetesMismatch],
        ),
        (
            "https://github.com/mesosphere/kubernetes-base-addons.git?ref=stable-1.18-3.0.0",
            vec![Rule::KbaKubernetesMismatch],
        ),
        (
            "https://github.com/mesosphere/kubernetes-base-addons#stable-1.20-4.4.0",
            vec![],
        ),
        (
            "https://github.com/mesosphere/kubernetes-base-addons#master",
            vec![Rule::RefUnrecognized],
        ),
    ] {
        let obj = cluster("staging", json!([entry(repo, None), kommander]));
        let e = assess(&set, &obj);
        let rules: Vec<Rule> = found(&e).into_iter().map(|f| f.0).collect();
        assert_eq!(rules, want, "{repo}: {:#?}", e.violations);
        // Named at the repository field, which holds the ref; no fix rewrites the URL.
        for v in &e.violations {
            assert_eq!(
                v.field.as_deref(),
                Some("spec.cluster.addons[0].configRepository")
            );
        }
        let a = set.assess(&obj, &ctx()).unwrap();
        assert!(
            a.fix
                .iter()
                .all(|c| !c.pointer.ends_with("configRepository")),
            "{:?}",
            a.fix
        );
    }
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one case per kind of unidentified entry, a table read top to bottom"
)]
fn what_the_policy_cannot_identify_is_named_on_production_clusters() {
    let set = PolicySet::embedded_default();
    let kba = entry(KBA, Some("stable-1.20-4.4.0"));
    let kommander = entry(KOMMANDER, Some("stable-1.20-1.4.4"));
    let second = "spec.cluster.addons[1].configRepository".to_string();
    type Case = (
        &'static str,
        Value,
        Vec<(Rule, Severity, String)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a foreign repository",
            entry(
                "https://github.com/acme/kubernetes-base-addons-fork",
                Some("stable-1.18-3.0.0"),
            ),
            vec![(Rule::RefUnidentified, Severity::Warn, second.clone())],
            "comes from `https://github.com/acme/kubernetes-base-addons-fork`, which the policy does not identify",
        ),
        (
            "no repository at all",
            json!({"configVersion": "stable-1.18-3.0.0"}),
            vec![(
                Rule::RefUnidentified,
                Severity::Warn,
                "spec.cluster.addons[1]".into(),
            )],
            "names no configRepository",
        ),
        (
            "a KBA entry without any ref",
            entry(
                "https://github.com/mesosphere/kubernetes-base-addons.git",
                None,
            ),
            vec![(Rule::RefUnidentified, Severity::Warn, second.clone())],
            "names no ref (configVersion is unset",
        ),
        (
            "a URL ref other than configVersion",
            entry(
                "https://github.com/mesosphere/kubernetes-base-addons#stable-1.18-3.0.0",
                Some("stable-1.20-4.4.0"),
            ),
            vec![(Rule::RefUnidentified, Severity::Warn, second.clone())],
            "carries ref `stable-1.18-3.0.0`, but the entry also names `stable-1.20-4.4.0`",
        ),
        (
            "the same ref in both: nothing to say",
            entry(
                "https://github.com/mesosphere/kubernetes-base-addons#stable-1.20-4.4.0",
                Some("stable-1.20-4.4.0"),
            ),
            vec![],
            "",
        ),
    ];
    let deny =
        Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  unidentifiedRefs: Deny\n")).unwrap();
    let deny = PolicySet::from_policies(vec![Arc::new(deny)]);
    for (why, extra, want, says) in cases {
        let prod = cluster("production", json!([kba, extra, kommander]));
        let e = assess(&set, &prod);
        assert_eq!(found(&e), want, "{why}: {:#?}", e.violations);
        if !want.is_empty() {
            assert_eq!(e.verdict, Verdict::Warned, "{why}");
            assert!(
                e.violations.iter().any(|v| v.message.contains(says)),
                "{why}: {:#?}",
                e.violations
            );
            assert!(
                e.violations
                    .iter()
                    .any(|v| v.message.contains("spec.unidentifiedRefs: Deny"))
            );
            // spec.unidentifiedRefs: Deny closes it.
            let e = assess(&deny, &prod);
            assert_eq!(e.verdict, Verdict::Denied, "{why}: {:#?}", e.violations);
            assert!(e.has_rule(Rule::RefUnidentified));
        }
        // Elsewhere an addons entry of any repository is the team's own business.
        let staging = cluster("staging", json!([kba, extra, kommander]));
        let e = assess(&set, &staging);
        assert!(
            !e.has_rule(Rule::RefUnidentified),
            "{why}: {:#?}",
            e.violations
        );
    }
}

#[test]
fn an_unchanged_unidentified_entry_is_ratcheted_under_deny() {
    let deny =
        Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  unidentifiedRefs: Deny\n")).unwrap();
    let set = PolicySet::from_policies(vec![Arc::new(deny)]);
    let foreign = entry("https://github.com/acme/addons", Some("v1"));
    let old = cluster("production", json!([foreign]));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["team"] = json!("a");
    let e = set
        .assess(Subject::update(&relabelled, Some(&old)), &ctx())
        .unwrap()
        .evaluation;
    assert_eq!(e.verdict, Verdict::Warned, "{:#?}", e.violations);
    let mut moved = old.clone();
    moved["spec"]["cluster"]["addons"][0]["configRepository"] =
        json!("https://github.com/acme/other");
    let e = set
        .assess(Subject::update(&moved, Some(&old)), &ctx())
        .unwrap()
        .evaluation;
    assert_eq!(e.verdict, Verdict::Denied, "a changed entry is judged anew");
}

#[test]
fn a_cluster_configuration_is_judged_the_same() {
    let set = PolicySet::embedded_default();
    let obj = json!({
        "apiVersion": "konvoy.mesosphere.io/v1beta2",
        "kind": "ClusterConfiguration",
        "metadata": {"name": "c", "labels": {"environment": "production"}},
        "spec": {"version": "v1.8.5", "kubernetes": {"version": "1.20.13"}, "addons": [
            entry("GitHub.com/Mesosphere/Kubernetes-Base-Addons.git#stable-1.18-3.0.0", None),
            entry("https://github.com/mesosphere/kubeaddons-dispatch", Some("stable-1.20-1.4.0")),
        ]}
    });
    let e = assess(&set, &obj);
    assert_eq!(
        found(&e),
        [
            (
                Rule::KbaKubernetesMismatch,
                Severity::Deny,
                "spec.addons[0].configRepository".into()
            ),
            (
                Rule::RefUnidentified,
                Severity::Warn,
                "spec.addons[1].configRepository".into()
            ),
        ],
        "{:#?}",
        e.violations
    );
}
