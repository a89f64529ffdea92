//! What SupportExceptions add to one evaluation: the denied Konvoy 1.5 cluster `old-west`
//! assessed through `PolicySet::assess` against the embedded default policy,
//!
//! - baseline (same run): no exceptions;
//! - 1 exception that covers it;
//! - 100 exceptions, of which only the last (by key) covers it: the worst case of the match scan.
//!
//! Each figure is the best of 5 rounds of `SG_BENCH_EXCEPTION_ITERS` evaluations (default 20000).

mod common;
use common::*;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use jiff::civil::date;
use serde_json::{Value, json};
use supportgate::api::SupportException;
use supportgate::cli::input::parse_objects;
use supportgate::engine::Context;
use supportgate::engine::exceptions::{CompiledException, ExceptionSet};
use supportgate::engine::policyset::PolicySet;

fn exception(name: &str, cluster: &str) -> Arc<CompiledException> {
    let x: SupportException = serde_json::from_value(json!({
        "apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportException",
        "metadata": {"name": name, "namespace": "supportgate"},
        "spec": {"reason": "bench", "expires": "2027-01-31", "rules": ["konvoy-unsupported"],
                 "match": {"namespaces": ["kommander"], "names": [cluster]},
                 "versions": {"konvoy": ["1.5"]}}
    }))
    .expect("exception");
    Arc::new(CompiledException::compile(&x).expect("valid"))
}

fn nanos_per_eval(set: &PolicySet, ctx: &Context, obj: &Value, iters: u32) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(set.assess(black_box(obj), ctx));
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let iters: u32 = std::env::var("SG_BENCH_EXCEPTION_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
        .clamp(100, 1_000_000);
    let (objs, _) = parse_objects(
        "konvoyclusters.yaml",
        include_str!("../examples/clusters/konvoyclusters.yaml"),
    );
    let old_west = objs
        .iter()
        .find(|o| o.object["metadata"]["name"] == "old-west")
        .expect("old-west in the examples")
        .object
        .clone();
    let set = PolicySet::embedded_default();
    let today = date(2026, 11, 24);
    let none = Context::new(today);
    let one = Context::new(today).with_exceptions(Arc::new(ExceptionSet::new(vec![exception(
        "legacy", "old-west",
    )])));
    let mut many: Vec<_> = (0..99)
        .map(|i| exception(&format!("a{i:03}"), &format!("other-{i}")))
        .collect();
    many.push(exception("z-legacy", "old-west"));
    let hundred = Context::new(today).with_exceptions(Arc::new(ExceptionSet::new(many)));
    for ctx in [&one, &hundred] {
        let e = set.assess(&old_west, ctx).expect("targeted").evaluation;
        assert_eq!(
            e.verdict.as_str(),
            "warned",
            "the exception must apply: {e:?}"
        );
    }
    println!("machine: {} (load {})", cpu_model(), load_average());
    let base = nanos_per_eval(&set, &none, &old_west, iters);
    println!("baseline, no exceptions:        {base:>9.0} ns/evaluation");
    for (name, ctx) in [
        ("1 covering exception:", &one),
        ("100 exceptions, last covers:", &hundred),
    ] {
        let ns = nanos_per_eval(&set, ctx, &old_west, iters);
        println!(
            "{name:<31} {ns:>9.0} ns/evaluation  ({:.2}x baseline)",
            ns / base
        );
    }
}
