//! A regression guard for the engine's cost that cannot flake: the number of heap allocations of
//! one evaluation, counted by a counting global allocator on this thread only, for a fixed
//! corpus. Times are measured in `benches/`, never here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use jiff::civil::date;
use serde_json::{Value, json};
use supportgate::cli::input::parse_objects;
use supportgate::engine::policyset::PolicySet;
use supportgate::{Context, Policy, evaluate};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread; the result is dropped outside the count.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

fn konvoy_clusters() -> Vec<Value> {
    let (objs, errors) = parse_objects(
        "konvoyclusters.yaml",
        include_str!("../examples/clusters/konvoyclusters.yaml"),
    );
    assert!(errors.is_empty(), "{errors:?}");
    objs.into_iter().map(|o| o.object).collect()
}

/// One test, so that nothing else runs meanwhile: a regex used by two threads at once gives
/// the second its own match cache, which allocates.
#[test]
fn evaluations_allocate_only_for_what_they_report() {
    objects_without_violations_allocate_nothing();
    the_example_corpus_stays_within_its_allocation_count();
}

fn objects_without_violations_allocate_nothing() {
    let policy = Policy::embedded_default();
    let ctx = Context::new(date(2026, 11, 24));
    let mut prod_east = konvoy_clusters().remove(0);
    // The addons of the fixture earn a secondary-support note; without them it is clean.
    prod_east["spec"]["cluster"]["addons"][0]["addonsList"] = json!([]);
    prod_east["spec"]["cluster"]["addons"][1]["addonsList"] = json!([]);
    let provisioner = json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner",
        "metadata": {"name": "p"}, "spec": {"version": "v1.8.5"}});
    for object in [prod_east, provisioner] {
        let _ = evaluate(&policy, &object, &ctx); // warm: regex cache, lazy statics
        let (n, e) = allocations(|| evaluate(&policy, &object, &ctx));
        let e = e.expect("targeted");
        assert!(e.violations.is_empty(), "{:#?}", e.violations);
        assert_eq!(n, 0, "allocations evaluating {}", object["kind"]);
    }
}

/// The fixed corpus: every example KonvoyCluster, evaluated and assessed. The bounds are the
/// counts measured when they were set; an evaluation that starts allocating more fails here.
fn the_example_corpus_stays_within_its_allocation_count() {
    let policy = Policy::embedded_default();
    let set = PolicySet::embedded_default();
    let ctx = Context::new(date(2026, 11, 24));
    let objects = konvoy_clusters();
    for o in &objects {
        let _ = set.assess(o, None, &ctx);
    }
    let (evaluated, _) = allocations(|| {
        objects
            .iter()
            .map(|o| evaluate(&policy, o, &ctx))
            .collect::<Vec<_>>()
    });
    let (assessed, _) = allocations(|| {
        objects
            .iter()
            .map(|o| set.assess(o, None, &ctx))
            .collect::<Vec<_>>()
    });
    let violations: usize = objects
        .iter()
        .filter_map(|o| evaluate(&policy, o, &ctx))
        .map(|e| e.violations.len())
        .sum();
    println!(
        "{} objects, {violations} violations: evaluate {evaluated} allocations, assess {assessed}",
        objects.len()
    );
    assert!(violations > 0, "the corpus has violations to report");
    assert!(
        evaluated <= EVALUATE_BOUND,
        "evaluate: {evaluated} > {EVALUATE_BOUND}"
    );
    assert!(
        assessed <= ASSESS_BOUND,
        "assess: {assessed} > {ASSESS_BOUND}"
    );
}

/// Measured at 106 and 114 (2026-12-03), then at 141 and 161 once every denial also carries the
/// one suggested fix (its changes and the longer, combination-aware messages) and the upgrade and
/// version-agreement rules joined: the allocations left are the violations' own texts and their
/// list, the fix's changes, and the enabled-addon list of the secondary-support note.
const EVALUATE_BOUND: u64 = 141;
const ASSESS_BOUND: u64 = 161;
