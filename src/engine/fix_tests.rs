use jiff::civil::date;
use serde_json::{Value, json};

use crate::engine::policy::DEFAULT_POLICY_YAML;
use crate::engine::policyset::PolicySet;
use crate::engine::rules::{Rule, Severity};
use crate::engine::{Context, Verdict};

use super::*;

fn ctx() -> Context {
    Context::new(date(2026, 11, 24))
}

/// A Kommander KonvoyCluster (the shape of examples/clusters/konvoyclusters.yaml).
fn kc(konvoy: &str, k8s: &str, kba: &str, kommander: &str) -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1",
        "kind": "KonvoyCluster",
        "metadata": {"name": "c", "namespace": "kommander"},
        "spec": {
            "provisioner": {"version": konvoy},
            "cluster": {
                "kubernetes": {"version": k8s},
                "addons": [
                    {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons",
                     "configVersion": kba, "addonsList": [{"name": "prometheus", "enabled": true}]},
                    {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander",
                     "configVersion": kommander, "addonsList": [{"name": "kommander", "enabled": true}]}
                ]
            }
        }
    })
}

const PRODUCT: &str = "spec.provisioner.version";
const K8S: &str = "spec.cluster.kubernetes.version";
const KBA: &str = "spec.cluster.addons[0].configVersion";
const KOMMANDER: &str = "spec.cluster.addons[1].configVersion";

fn changes(set: &PolicySet, obj: &Value, ctx: &Context) -> Vec<(String, String, bool)> {
    set.assess(obj, None, ctx)
        .expect("targeted")
        .fix
        .into_iter()
        .map(|c| (c.field, c.to, c.manual))
        .collect()
}

fn exact(field: &str, to: &str) -> (String, String, bool) {
    (field.to_string(), to.to_string(), false)
}

fn manual(field: &str, to: &str) -> (String, String, bool) {
    (field.to_string(), to.to_string(), true)
}

/// The object with every change applied; a placeholder gets some value of its shape, since the
/// combination must hold whichever exact release is picked.
fn applied(obj: &Value, set: &PolicySet, ctx: &Context) -> Value {
    let mut fixed = obj.clone();
    for c in set.assess(obj, None, ctx).unwrap().fix {
        let to =
            c.to.replace("<patch>", "0")
                .replace("<kba version>", "9.9.9");
        *fixed.pointer_mut(&c.pointer).expect("the pointer resolves") = json!(to);
    }
    fixed
}

/// Every combination of the version rules the tests and examples use, with the changes the
/// combination makes; each fixed object must pass and need no further fix.
#[test]
fn one_combination_per_rule_combination() {
    let set = PolicySet::embedded_default();
    type Case = (&'static str, Value, Vec<(String, String, bool)>);
    let cases: Vec<Case> = vec![
        (
            "supported and consistent",
            kc(
                "v1.8.5",
                "1.20.13",
                "stable-1.20-4.4.0",
                "stable-1.20-1.4.4",
            ),
            vec![],
        ),
        (
            "oldest in window only warns",
            kc(
                "v1.6.3",
                "1.18.13",
                "stable-1.18-3.3.0",
                "stable-1.18-1.2.2",
            ),
            vec![],
        ),
        (
            "docs sample: Kubernetes above the range, refs for the range's top",
            kc(
                "v1.7.0",
                "1.20.13",
                "stable-1.19-3.2.0",
                "stable-1.19-1.3.0",
            ),
            vec![exact(K8S, "1.19.15")],
        ),
        (
            "Kubernetes above the range, refs for the cluster's minor",
            kc("v1.8.5", "1.21.0", "stable-1.21-4.4.0", "stable-1.21-1.4.4"),
            vec![
                exact(K8S, "1.20.6"),
                manual(KBA, "stable-1.20-<kba version>"),
                manual(KOMMANDER, "stable-1.20-1.4.<patch>"),
            ],
        ),
        (
            "Kubernetes below the range, default on the other end",
            kc(
                "v1.7.5",
                "v1.16.9",
                "stable-1.16-2.7.0",
                "stable-1.16-1.3.0",
            ),
            vec![
                manual(K8S, "v1.17.<patch>"),
                manual(KBA, "stable-1.17-<kba version>"),
                manual(KOMMANDER, "stable-1.17-1.3.<patch>"),
            ],
        ),
        (
            "out of window, the rest fits the next release",
            kc(
                "v1.5.6",
                "1.17.17",
                "stable-1.17-2.7.0",
                "stable-1.17-1.1.4",
            ),
            vec![
                exact(PRODUCT, "v1.6.3"),
                manual(KOMMANDER, "stable-1.17-1.2.<patch>"),
            ],
        ),
        (
            "out of window, Kubernetes below the next release's range",
            kc("v1.5.6", "1.15.9", "stable-1.15-2.1.0", "stable-1.15-1.1.4"),
            vec![
                exact(PRODUCT, "v1.6.3"),
                manual(K8S, "1.16.<patch>"),
                manual(KBA, "stable-1.16-<kba version>"),
                manual(KOMMANDER, "stable-1.16-1.2.<patch>"),
            ],
        ),
        (
            "out of window and out of its own range, in the next release's",
            kc("v1.5.6", "1.18.3", "stable-1.18-3.0.0", "stable-1.18-1.1.4"),
            vec![
                exact(PRODUCT, "v1.6.3"),
                manual(KOMMANDER, "stable-1.18-1.2.<patch>"),
            ],
        ),
        (
            "out of window, Kommander already paired with the next release",
            kc(
                "v1.5.6",
                "1.17.17",
                "stable-1.17-2.7.0",
                "stable-1.17-1.2.2",
            ),
            vec![exact(PRODUCT, "v1.6.3")],
        ),
        (
            "unknown release above the policy: the newest",
            kc("v1.9.0", "1.21.1", "stable-1.21-4.4.0", "stable-1.21-1.5.0"),
            vec![
                exact(PRODUCT, "v1.8.5"),
                exact(K8S, "1.20.6"),
                manual(KBA, "stable-1.20-<kba version>"),
                manual(KOMMANDER, "stable-1.20-1.4.<patch>"),
            ],
        ),
        (
            "Kommander unpaired",
            kc(
                "v1.8.5",
                "1.20.13",
                "stable-1.20-4.4.0",
                "stable-1.20-1.3.0",
            ),
            vec![manual(KOMMANDER, "stable-1.20-1.4.<patch>")],
        ),
        (
            "KBA for another minor",
            kc(
                "v1.8.5",
                "1.20.13",
                "stable-1.19-3.2.0",
                "stable-1.20-1.4.4",
            ),
            vec![manual(KBA, "stable-1.20-<kba version>")],
        ),
        (
            "pre-releases only warn",
            kc(
                "v1.8.5",
                "1.20.0-rc.1",
                "testing-1.20-4.4.0-rc.1",
                "stable-1.20-1.4.4",
            ),
            vec![],
        ),
    ];
    let mut failures = Vec::new();
    for (name, obj, want) in cases {
        let got = changes(&set, &obj, &ctx());
        if got != want {
            failures.push(format!("{name}: got {got:#?}"));
            continue;
        }
        let fixed = applied(&obj, &set, &ctx());
        let a = set.assess(&fixed, None, &ctx()).unwrap();
        if a.evaluation.verdict == Verdict::Denied || !a.fix.is_empty() {
            failures.push(format!("{name}: fixed, still {:#?}", a));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn denial(set: &PolicySet, obj: &Value, rule: Rule) -> Vec<String> {
    set.assess(obj, None, &ctx())
        .unwrap()
        .evaluation
        .violations
        .into_iter()
        .filter(|v| v.rule == rule && v.severity == Severity::Deny)
        .map(|v| v.message)
        .collect()
}

#[test]
fn docs_sample_messages_agree_with_each_other() {
    let set = PolicySet::embedded_default();
    let obj = kc(
        "v1.7.0",
        "1.20.13",
        "stable-1.19-3.2.0",
        "stable-1.19-1.3.0",
    );
    let all: Vec<String> = set
        .assess(&obj, None, &ctx())
        .unwrap()
        .evaluation
        .violations
        .into_iter()
        .map(|v| v.message)
        .collect();
    assert!(
        all.iter().all(|m| !m.contains("tagged for 1.20")),
        "no message may send the refs to 1.20: {all:#?}"
    );
    let k8s = &denial(&set, &obj, Rule::KubernetesOutOfRange)[0];
    assert!(k8s.ends_with("e.g. the default 1.19.15"), "{k8s}");
    let kba = &denial(&set, &obj, Rule::KbaKubernetesMismatch)[0];
    assert!(
        kba.ends_with(
            "keep it and set the Kubernetes version to 1.19.15 instead, the minor it is built for"
        ),
        "{kba}"
    );
    let kommander = &denial(&set, &obj, Rule::KommanderMismatch)[0];
    assert!(
        kommander.contains("keep it and set the Kubernetes version to 1.19.15 instead"),
        "{kommander}"
    );
}

#[test]
fn messages_name_the_combinations_values() {
    let set = PolicySet::embedded_default();
    // Kubernetes above the range: the refs have to follow it down.
    let obj = kc("v1.8.5", "1.21.0", "stable-1.21-4.4.0", "stable-1.21-1.4.4");
    let m = &denial(&set, &obj, Rule::KubernetesOutOfRange)[0];
    assert!(
        m.ends_with(
            "e.g. the default 1.20.6; the KBA and Kommander refs must then be tagged for 1.20"
        ),
        "{m}"
    );
    // Below the range, the default elsewhere: the nearest end, not the default.
    let obj = kc("v1.7.5", "1.16.9", "stable-1.16-2.7.0", "stable-1.16-1.3.0");
    let m = &denial(&set, &obj, Rule::KubernetesOutOfRange)[0];
    assert!(
        m.contains("set spec.cluster.kubernetes.version to a 1.17 patch release (1.17.<patch>)")
            && !m.contains("1.19.15"),
        "{m}"
    );
    let kba = &denial(&set, &obj, Rule::KbaKubernetesMismatch);
    assert!(
        kba.is_empty(),
        "the KBA ref fits the cluster today: {kba:?}"
    );
    // Out of window and out of its own range, but inside the next release's: keep Kubernetes.
    let obj = kc("v1.5.6", "1.18.3", "stable-1.18-3.0.0", "stable-1.18-1.1.4");
    let m = &denial(&set, &obj, Rule::KubernetesOutOfRange)[0];
    assert!(
        m.ends_with("Konvoy 1.6, the nearest supported release, supports it (1.16.x to 1.18.x): keep it and upgrade Konvoy to 1.6"),
        "{m}"
    );
    let m = &denial(&set, &obj, Rule::KonvoyUnsupported)[0];
    assert!(
        m.ends_with("upgrade to 1.6 or later (Konvoy 1.6 supports Kubernetes 1.16.x to 1.18.x and pairs with Kommander 1.2.x)"),
        "{m}"
    );
    // Kommander paired with the release the fix upgrades to: keep it.
    let obj = kc(
        "v1.5.6",
        "1.17.17",
        "stable-1.17-2.7.0",
        "stable-1.17-1.2.2",
    );
    let m = &denial(&set, &obj, Rule::KommanderMismatch)[0];
    assert!(
        m.ends_with("it pairs with Konvoy 1.6, the nearest supported release: keep it and upgrade Konvoy to 1.6"),
        "{m}"
    );
    // Unpaired on its own release: the paired minor, on the cluster's Kubernetes minor.
    let obj = kc(
        "v1.8.5",
        "1.20.13",
        "stable-1.20-4.4.0",
        "stable-1.20-1.3.0",
    );
    let m = &denial(&set, &obj, Rule::KommanderMismatch)[0];
    assert!(
        m.ends_with("set the Kommander configVersion to stable-1.20-1.4.<patch>"),
        "{m}"
    );
}

#[test]
fn an_exact_range_end_is_the_target() {
    // A window wide enough to keep 1.5 (min 1.15.4, default 1.17.17) supported.
    let p = crate::engine::policy::Policy::from_yaml(
        &DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: 5"),
    )
    .unwrap();
    let set = PolicySet::from_policies(vec![std::sync::Arc::new(p)]);
    let obj = kc("v1.5.6", "1.15.1", "stable-1.15-2.1.0", "stable-1.15-1.1.4");
    assert_eq!(changes(&set, &obj, &ctx()), vec![exact(K8S, "1.15.4")]);
    let m = &denial(&set, &obj, Rule::KubernetesOutOfRange)[0];
    assert!(
        m.ends_with("set spec.cluster.kubernetes.version to 1.15.4, the nearest end of the range"),
        "{m}"
    );
}

#[test]
fn in_cluster_addons_follow_the_hosting_cluster() {
    let set = PolicySet::embedded_default();
    let addon = json!({
        "apiVersion": "kubeaddons.mesosphere.io/v1beta2", "kind": "Addon",
        "metadata": {"name": "prometheus", "namespace": "kubeaddons",
            "labels": {"kubeaddons.mesosphere.io/name": "prometheus"},
            "annotations": {"catalog.kubeaddons.mesosphere.io/origin-repository-version": "stable-1.20-4.4.0"}},
        "spec": {"kubernetes": {"minSupportedVersion": "v1.15.6"}}
    });
    let on = ctx().with_hosting_kubernetes(Some("1.19.4".parse().unwrap()));
    assert_eq!(
        changes(&set, &addon, &on),
        vec![manual(
            "metadata.annotations['catalog.kubeaddons.mesosphere.io/origin-repository-version']",
            "stable-1.19-<kba version>"
        )]
    );
    let m = &denial(&set, &addon, Rule::KbaKubernetesMismatch);
    assert!(
        m.is_empty(),
        "without a hosting version nothing is compared"
    );
    assert!(changes(&set, &addon, &ctx()).is_empty());
}

/// The examples the README shows: each fixed one passes.
#[test]
fn every_example_cluster_passes_once_fixed() {
    let set = PolicySet::embedded_default();
    let on = ctx().with_hosting_kubernetes(Some("1.20.13".parse().unwrap()));
    let mut fixed_any = 0;
    for (name, text) in [
        (
            "konvoyclusters.yaml",
            include_str!("../../examples/clusters/konvoyclusters.yaml"),
        ),
        (
            "cluster.yaml",
            include_str!("../../examples/clusters/cluster.yaml"),
        ),
        (
            "addons.yaml",
            include_str!("../../examples/clusters/addons.yaml"),
        ),
    ] {
        let (objs, errs) = crate::cli::input::parse_objects(name, text);
        assert!(errs.is_empty(), "{errs:?}");
        for o in objs {
            let Some(a) = set.assess(&o.object, None, &on) else {
                continue;
            };
            fixed_any += usize::from(!a.fix.is_empty());
            let after = set
                .assess(&applied(&o.object, &set, &on), None, &on)
                .unwrap();
            assert_ne!(
                after.evaluation.verdict,
                Verdict::Denied,
                "{name} {}: {:#?}",
                o.object["metadata"]["name"],
                after.evaluation
            );
        }
    }
    assert_eq!(fixed_any, 2, "docs-sample and old-west need a fix");
}

#[test]
fn targets_of_the_parts() {
    let p = Policy::embedded_default();
    let today = date(2026, 11, 24);
    let minor = |s: &str| s.parse::<Minor>().unwrap();
    let near = |m: &str| nearest_release(&p, today, minor(m)).map(|r| r.minor.to_string());
    assert_eq!(near("1.7").as_deref(), Some("1.7"));
    assert_eq!(
        near("1.6").as_deref(),
        Some("1.6"),
        "oldest in window stays"
    );
    assert_eq!(near("1.5").as_deref(), Some("1.6"));
    assert_eq!(near("1.2").as_deref(), Some("1.6"), "unknown, below");
    assert_eq!(near("1.9").as_deref(), Some("1.8"), "unknown, above");
    assert_eq!(near("2.0").as_deref(), Some("1.8"));
    assert_eq!(styled("v1.5.6", "1.6.<patch>"), "v1.6.<patch>");
    assert_eq!(styled("1.20.13", "1.19.15"), "1.19.15");
    let tag: ReleaseTag = "testing-1.19-3.2.0".parse().unwrap();
    assert_eq!(kba_target(&tag, minor("1.19")), None);
    assert_eq!(
        kba_target(&tag, minor("1.20")).as_deref(),
        Some("testing-1.20-<kba version>"),
        "the channel is kept: a pre-release is a warning, not this fix's business"
    );
    let tag: ReleaseTag = "stable-1.19-1.3.0".parse().unwrap();
    assert_eq!(kommander_target(&tag, minor("1.19"), None), None);
    assert_eq!(
        kommander_target(&tag, minor("1.19"), Some(minor("1.3"))),
        None
    );
    assert_eq!(
        kommander_target(&tag, minor("1.19"), Some(minor("1.4"))).as_deref(),
        Some("stable-1.19-1.4.<patch>")
    );
}
