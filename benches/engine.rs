//! Engine throughput: assessments per second of one KonvoyCluster against the default policy,
//! through [`PolicySet::assess`], the one path the webhook, the controller and `check` take.
//!
//! Baseline, measured in the same run: decoding the same object from JSON bytes, the work every
//! admission request does before the engine sees it. The ratio says how much the policy adds.
//!
//! `SG_BENCH_CALLGRIND=<op>:<n>` runs only `n` calls of one operation and exits, for counting
//! instructions under load with `valgrind --tool=callgrind` (the count of `n` calls minus that of
//! 0 calls, over `n`): `decode`, `supported`, `denied` (assessed against the default policy),
//! `assess3` (denied, three policies),
//! `review` and `review-denied` (the webhook's `admission::review`, without TLS or HTTP).

mod common;
use common::*;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use jiff::civil::date;
use serde_json::Value;
use supportgate::cli::input::parse_objects;
use supportgate::webhook::admission::review;
use supportgate::{Context, Policy, PolicySet};

/// The running system's path: three policies targeting the same kind, merged and deduplicated.
fn three_policies() -> PolicySet {
    PolicySet::from_policies(
        (0..3)
            .map(|_| std::sync::Arc::new(Policy::embedded_default()))
            .collect(),
    )
}

fn fixtures() -> (Vec<u8>, Value, Value) {
    let (objs, _) = parse_objects(
        "konvoyclusters.yaml",
        include_str!("../examples/clusters/konvoyclusters.yaml"),
    );
    let supported = objs[0].object.clone();
    let denied = objs[2].object.clone();
    (
        serde_json::to_vec(&supported).expect("encode"),
        supported,
        denied,
    )
}

fn bench(c: &mut Criterion) {
    let set = PolicySet::embedded_default();
    let ctx = Context::new(date(2026, 11, 24));
    let (bytes, supported, denied) = fixtures();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline: decode KonvoyCluster JSON", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("decode"))
    });
    g.bench_function("assess supported KonvoyCluster", |b| {
        b.iter(|| set.assess(black_box(&supported), &ctx))
    });
    g.bench_function("assess denied KonvoyCluster (3 violations)", |b| {
        b.iter(|| set.assess(black_box(&denied), &ctx))
    });
    g.finish();
}

/// A plain summary with the ratio, since criterion reports each function on its own.
fn summary() {
    let one = PolicySet::embedded_default();
    let ctx = Context::new(date(2026, 11, 24));
    let (bytes, supported, denied) = fixtures();
    let rate = |f: &mut dyn FnMut()| {
        for _ in 0..1_000 {
            f();
        }
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..1_000 {
                f();
            }
            n += 1_000;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let decode = rate(&mut || {
        black_box(serde_json::from_slice::<Value>(black_box(&bytes)).expect("decode"));
    });
    let ok = rate(&mut || {
        black_box(one.assess(black_box(&supported), &ctx));
    });
    let bad = rate(&mut || {
        black_box(one.assess(black_box(&denied), &ctx));
    });
    let set = three_policies();
    let merged = rate(&mut || {
        black_box(set.assess(black_box(&denied), &ctx));
    });
    println!("\n== supportgate engine benchmark ==");
    println!(
        "machine: {} cores, {}; load average now {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        load_average()
    );
    println!(
        "baseline  decode KonvoyCluster JSON ({} bytes): {:>10.0} /s  {:>7.2} us",
        bytes.len(),
        decode,
        1e6 / decode
    );
    println!(
        "assess    supported KonvoyCluster:             {:>10.0} /s  {:>7.2} us  ratio to baseline {:.2}x",
        ok,
        1e6 / ok,
        decode / ok
    );
    println!(
        "assess    denied KonvoyCluster:                {:>10.0} /s  {:>7.2} us  ratio to baseline {:.2}x",
        bad,
        1e6 / bad,
        decode / bad
    );
    println!(
        "assess    denied KonvoyCluster, 3 policies:    {:>10.0} /s  {:>7.2} us  ratio to baseline {:.2}x",
        merged,
        1e6 / merged,
        decode / merged
    );
}

criterion_group!(benches, bench);

/// The AdmissionReview kube-apiserver sends for a CREATE of `object`.
fn admission_review(object: &Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "4b1b5e0c-bench",
            "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "requestKind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "requestResource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions", "fieldManager": "kubectl-client-side-apply"}
        }
    }))
    .expect("encode")
}

fn callgrind(spec: &str) {
    let (op, n) = spec.split_once(':').expect("SG_BENCH_CALLGRIND=<op>:<n>");
    let n: usize = n.parse().expect("a count");
    let set = PolicySet::embedded_default();
    let three = three_policies();
    let ctx = Context::new(date(2026, 11, 24));
    let (bytes, supported, denied) = fixtures();
    let (ok_review, bad_review) = (admission_review(&supported), admission_review(&denied));
    let mut f: Box<dyn FnMut()> = match op {
        "decode" => Box::new(|| {
            black_box(serde_json::from_slice::<Value>(black_box(&bytes)).expect("decode"));
        }),
        "supported" => Box::new(|| {
            black_box(set.assess(black_box(&supported), &ctx));
        }),
        "denied" => Box::new(|| {
            black_box(set.assess(black_box(&denied), &ctx));
        }),
        "assess3" => Box::new(|| {
            black_box(three.assess(black_box(&denied), &ctx));
        }),
        "review" => Box::new(|| {
            black_box(review(black_box(&ok_review), &set, &ctx, None).expect("review"));
        }),
        "review-denied" => Box::new(|| {
            black_box(review(black_box(&bad_review), &set, &ctx, None).expect("review"));
        }),
        _ => panic!("unknown operation {op}"),
    };
    for _ in 0..n {
        f();
    }
}

fn main() {
    if let Ok(spec) = std::env::var("SG_BENCH_CALLGRIND") {
        return callgrind(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
