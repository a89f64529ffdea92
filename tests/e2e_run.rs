//! `make run`'s script, end to end: a user's first command must show admitted and refused
//! clusters and the conditions the controller wrote.

use std::process::Command;

#[test]
fn make_run_shows_admissions_refusals_and_conditions() {
    // At run time (Cargo sets it when it runs the test): a path compiled in would name whichever
    // checkout built this binary, and the target directory is shared between checkouts.
    let repo = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo: CARGO_MANIFEST_DIR");
    let cache = std::env::var("SUPPORTGATE_CACHE").unwrap_or_else(|_| format!("{repo}/.cache"));
    // Its own TMPDIR, to see that the script leaves nothing behind.
    let tmp = tempfile::tempdir().expect("a temp dir");
    let out = Command::new("hack/run-local.sh")
        .arg("--once")
        .env("TMPDIR", tmp.path())
        .current_dir(&repo)
        .env("SUPPORTGATE_BIN", env!("CARGO_BIN_EXE_supportgate"))
        .env("SUPPORTGATE_CACHE", cache)
        .output()
        .expect("run hack/run-local.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hack/run-local.sh failed:\n{stdout}\n{stderr}"
    );
    for needle in [
        "ADMITTED\u{1b}[0m prod-east",
        "ADMITTED\u{1b}[0m staging-legacy",
        "Warning: [konvoy-nearing-end]",
        "REFUSED\u{1b}[0m  docs-sample",
        "- [kba-kubernetes-mismatch]",
        "REFUSED\u{1b}[0m  old-west",
        "- [konvoy-unsupported] spec.provisioner.version: Konvoy 1.5.6 is out of support",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let table: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("prod-east ") || l.starts_with("staging-legacy "))
        .collect();
    assert_eq!(table.len(), 2, "{stdout}");
    assert!(
        table[0].contains("True") && table[0].contains("Supported"),
        "{}",
        table[0]
    );
    assert!(
        table[1].contains("True") && table[1].contains("KonvoyNearingEnd"),
        "{}",
        table[1]
    );
    assert!(stdout.contains("1.8, 1.7, 1.6"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read the temp dir")
        .map(|e| e.map(|e| e.path()))
        .collect();
    assert!(left.is_empty(), "make run left {left:?} behind");
}
