//! A regression guard for the engine's cost that cannot flake: the number of heap allocations of
//! one evaluation, counted by a counting global allocator on this thread only, for a fixed
//! corpus. Times are measured in `benches/`, never here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use jiff::civil::date;
use serde_json::{Value, json};
use supportgate::cli::input::parse_objects;
use supportgate::{Context, PolicySet};

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
    objects_without_violations_allocate_only_their_verdict();
    the_example_corpus_stays_within_its_allocation_count();
}

fn objects_without_violations_allocate_only_their_verdict() {
    let set = PolicySet::embedded_default();
    let ctx = Context::new(date(2026, 11, 24));
    let mut prod_east = konvoy_clusters().remove(0);
    // The addons of the fixture earn a secondary-support note; without them it is clean.
    prod_east["spec"]["cluster"]["addons"][0]["addonsList"] = json!([]);
    prod_east["spec"]["cluster"]["addons"][1]["addonsList"] = json!([]);
    let provisioner = json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner",
        "metadata": {"name": "p"}, "spec": {"version": "v1.8.5"}});
    for object in [prod_east, provisioner] {
        let _ = set.assess(&object, &ctx); // warm: regex cache, lazy statics
        let (n, a) = allocations(|| set.assess(&object, &ctx));
        let e = a.expect("targeted").evaluation;
        assert!(e.violations.is_empty(), "{:#?}", e.violations);
        assert_eq!(
            n, PER_POLICY_VERDICT,
            "allocations assessing {} beyond its policy's verdict",
            object["kind"]
        );
    }
}

/// The fixed corpus: every example KonvoyCluster, assessed. The bound is the count measured when
/// it was set; an assessment that starts allocating more fails here.
fn the_example_corpus_stays_within_its_allocation_count() {
    let set = PolicySet::embedded_default();
    let ctx = Context::new(date(2026, 11, 24));
    let objects = konvoy_clusters();
    for o in &objects {
        let _ = set.assess(o, &ctx);
    }
    let (assessed, _) = allocations(|| {
        objects
            .iter()
            .map(|o| set.assess(o, &ctx))
            .collect::<Vec<_>>()
    });
    let violations: usize = objects
        .iter()
        .filter_map(|o| set.assess(o, &ctx))
        .map(|a| a.evaluation.violations.len())
        .sum();
    println!(
        "{} objects, {violations} violations: assess {assessed} allocations",
        objects.len()
    );
    assert!(violations > 0, "the corpus has violations to report");
    assert!(
        assessed <= ASSESS_BOUND,
        "assess: {assessed} > {ASSESS_BOUND}"
    );
}

/// Measured at 106 and 114 (2026-12-03), then at 141 and 161 once every denial also carries the
/// one suggested fix (its changes and the longer, combination-aware messages) and the upgrade and
/// version-agreement rules joined: the allocations left are the violations' own texts and their
/// list, the fix's changes, and the enabled-addon list of the secondary-support note. The single
/// policy's evaluation (the 141) is no longer public: assess is the one path.
const ASSESS_BOUND: u64 = 161;

/// What an assessment allocates besides the checks, which allocate nothing for a clean object:
/// the list of each policy's verdict and the policy's name in it.
const PER_POLICY_VERDICT: u64 = 2;
