//! Admission as `kubectl` meets it: a manifest applied in a namespace, and what the answer says
//! (refused by the webhook with a rule id, or admitted).

use std::process::Output;

use super::{ControlPlane, stderr, stdout};

impl ControlPlane {
    /// `kubectl -n NS apply -f -` of `doc`.
    pub fn apply_in(&self, ns: &str, doc: &str) -> Output {
        self.kubectl_in(&["-n", ns, "apply", "-f", "-"], Some(doc))
    }

    /// `kubectl -n NS apply --dry-run=server -f -` of `doc`: admission runs, nothing is stored.
    pub fn dry_run_in(&self, ns: &str, doc: &str) -> Output {
        self.kubectl_in(
            &["-n", ns, "apply", "--dry-run=server", "-f", "-"],
            Some(doc),
        )
    }
}

/// Asserts that `kubectl` was refused by an admission webhook with `rule` (e.g.
/// `[konvoy-unsupported]`) in the denial; returns the denial (stderr).
pub fn denied(o: &Output, rule: &str) -> String {
    let err = stderr(o);
    assert!(
        !o.status.success() && err.contains("denied the request") && err.contains(rule),
        "expected a webhook denial with {rule}; stdout {} stderr {err}",
        stdout(o)
    );
    err
}

/// Asserts that `kubectl` succeeded; returns its stdout.
pub fn admitted(o: &Output) -> String {
    assert!(o.status.success(), "refused: {}\n{}", stderr(o), stdout(o));
    stdout(o)
}
