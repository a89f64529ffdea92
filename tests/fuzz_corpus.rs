//! Replays every input of the fuzzing corpus (`fuzz/corpus/<target>/`: seeds, inputs that added
//! coverage in `make fuzz` runs, and any crash found) through the same checks the fuzz targets
//! run (`fuzz/harness.rs`), on stable Rust and without libFuzzer. A panic in any of them fails
//! the test, with the file named.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("admission_review", harness::admission_review),
    ("version", harness::version),
    ("minor", harness::minor),
    ("bound", harness::bound),
    ("release_tag", harness::release_tag),
    ("parse_objects", harness::parse_objects),
];

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_input_passes_its_target() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let files = corpus(target);
        assert!(
            files.iter().any(|f| f
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))),
            "fuzz/corpus/{target} has no seed inputs"
        );
        for file in files {
            let data = std::fs::read(&file).expect("read corpus file");
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(format!("{target}: {}", file.display()));
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "panicked on:\n{}", failures.join("\n"));
    assert!(replayed >= TARGETS.len() * 5, "only {replayed} inputs");
}

/// The replay reaches the engine: a seed review is decoded, decided and answered, so the loop
/// above is not passing vacuously on inputs that all bounce off the decoder.
#[test]
fn the_replay_reaches_the_engine() {
    let denied = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/admission_review/seed-denied"),
    )
    .expect("seed-denied");
    let policies = supportgate::engine::policyset::PolicySet::embedded_default();
    let ctx = supportgate::engine::Context::new(jiff::civil::date(2026, 11, 24));
    let (answer, decision) =
        supportgate::webhook::admission::review(&denied, &policies, &ctx, None).expect("a review");
    assert_eq!(decision.verdict.label(), "denied");
    assert!(String::from_utf8_lossy(&answer).contains("\"allowed\":false"));
    harness::admission_review(&denied);
}
