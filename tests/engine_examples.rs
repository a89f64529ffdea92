//! Engine tests on the example manifests as `supportgate check` reads them (the CLI's reader
//! is the main crate's, so these live here rather than in crates/engine).

use std::collections::BTreeSet;

use jiff::civil::date;
use serde_json::{Value, json};
use std::sync::Arc;
use supportgate::cli::input::parse_objects;
use supportgate::engine::policy::Policy;
use supportgate::engine::policyset::PolicySet;
use supportgate::engine::rules::Rule::{self, *};
use supportgate::engine::rules::Severity::{self, Deny};

use supportgate::engine::{Context, Evaluation, Verdict};

fn ctx() -> Context {
    Context::new(date(2026, 11, 24))
}

fn policy() -> Policy {
    Policy::embedded_default()
}

/// One policy's evaluation, through the one public entry.
fn eval_with(p: &Policy, obj: &Value, ctx: &Context) -> Evaluation {
    PolicySet::from_policies(vec![Arc::new(p.clone())])
        .assess(obj, ctx)
        .expect("a target matches")
        .evaluation
}

fn rules(e: &Evaluation) -> BTreeSet<(Rule, Severity)> {
    e.violations
        .iter()
        .filter(|v| v.severity != Severity::Info)
        .map(|v| (v.rule, v.severity))
        .collect()
}

/// `obj` with the suggested fix applied, placeholders filled in.
fn applied(obj: &Value, set: &PolicySet, ctx: &Context) -> Value {
    let mut fixed = obj.clone();
    for c in set.assess(obj, ctx).unwrap().fix {
        let to =
            c.to.replace("<patch>", "0")
                .replace("<kba version>", "9.9.9");
        *fixed.pointer_mut(&c.pointer).expect("the pointer resolves") = json!(to);
    }
    fixed
}

#[test]
fn cluster_configuration_and_provisioner_presets() {
    let p = policy();
    let (objs, errs) = parse_objects(
        "cluster.yaml",
        include_str!("../examples/clusters/cluster.yaml"),
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

/// The examples the README shows: each fixed one passes.
#[test]
fn every_example_cluster_passes_once_fixed() {
    let set = PolicySet::embedded_default();
    let on = ctx().with_hosting_kubernetes(Some("1.20.13".parse().unwrap()));
    let mut fixed_any = 0;
    for (name, text) in [
        (
            "konvoyclusters.yaml",
            include_str!("../examples/clusters/konvoyclusters.yaml"),
        ),
        (
            "cluster.yaml",
            include_str!("../examples/clusters/cluster.yaml"),
        ),
        (
            "addons.yaml",
            include_str!("../examples/clusters/addons.yaml"),
        ),
    ] {
        let (objs, errs) = parse_objects(name, text);
        assert!(errs.is_empty(), "{errs:?}");
        for o in objs {
            let Some(a) = set.assess(&o.object, &on) else {
                continue;
            };
            fixed_any += usize::from(!a.fix.is_empty());
            let after = set.assess(&applied(&o.object, &set, &on), &on).unwrap();
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
