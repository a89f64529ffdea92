//! `supportgate check` input decoding: manifests per second through the kubectl-compatible YAML
//! 1.1 decoder (`cli::input::parse`).
//!
//! Baseline, measured in the same run: the same text through serde_norway (the YAML 1.2 reader
//! `check` used before, and still the policy loader). The ratio is the cost of reading YAML as
//! kubectl reads it.

mod common;
use common::*;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use serde::Deserialize;
use serde_json::Value;
use supportgate::cli::input;

/// The example clusters, 25 times over (100 documents, about 100 KB).
fn text() -> String {
    let one = include_str!("../examples/clusters/konvoyclusters.yaml");
    vec![one; 25].join("\n---\n")
}

fn baseline(text: &str) -> usize {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("yaml"))
        .filter(|v| !v.is_null())
        .count()
}

fn decoder(text: &str) -> usize {
    let (objects, errors) = input::parse("bench.yaml", text);
    assert!(errors.is_empty());
    objects.len()
}

fn bench(c: &mut Criterion) {
    let text = text();
    let mut g = c.benchmark_group("check_inputs");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("baseline: serde_norway", |b| {
        b.iter(|| baseline(black_box(&text)))
    });
    g.bench_function("kubectl-compatible decoder", |b| {
        b.iter(|| decoder(black_box(&text)))
    });
    g.finish();
}

fn summary() {
    let text = text();
    assert_eq!(baseline(&text), decoder(&text), "same documents");
    let rate = |f: &dyn Fn() -> usize| {
        f();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            black_box(f());
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let base = rate(&|| baseline(black_box(&text)));
    let ours = rate(&|| decoder(black_box(&text)));
    let mb = text.len() as f64 / 1e6;
    println!("\n== supportgate check input benchmark ==");
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!(
        "baseline  serde_norway ({} bytes, 100 docs): {:>8.1} MB/s  {:>8.2} ms",
        text.len(),
        base * mb,
        1e3 / base
    );
    println!(
        "decoder   kubectl-compatible YAML 1.1:     {:>8.1} MB/s  {:>8.2} ms  ratio to baseline {:.2}x",
        ours * mb,
        1e3 / ours,
        base / ours
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
