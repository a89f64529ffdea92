//! The generated files (the chart's CRDs, `manifests/`) are their sources rendered, byte for
//! byte, and `hack/render-manifests.sh --check` fails when a source changes without them.

use std::path::Path;
use std::process::{Command, Output};

use supportgate::engine::policy::DEFAULT_POLICY_YAML;

use crate::render::{docs, find, from_spec, template};
use crate::support::{ControlPlane, repo, stderr};

#[test]
fn the_chart_crds_are_crds_byte_for_byte_and_manifests_are_the_chart() {
    let cp = ControlPlane::shared();
    // The script's own check: every generated file equals its fresh render.
    let o = Command::new(repo().join("hack/render-manifests.sh"))
        .arg("--check")
        .env("HELM", cp.tool("helm"))
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "generated files are out of date (run `make manifests`):\n{}",
        stderr(&o)
    );

    // Independently of the script: what helm renders has the spec of crds/ and of the example
    // policy, byte for byte, and the same parsed.
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    let crd_src = read("crds/supportgate.dev_supportpolicies.yaml");
    let crd_chart = template(cp, "sg", "ns", &[]);
    let crd_doc = crd_chart
        .split("\n---\n")
        .find(|d| {
            d.contains("\nkind: CustomResourceDefinition\n")
                && d.contains("\n  name: supportpolicies.supportgate.dev\n")
        })
        .expect("the chart renders the CRD");
    assert_eq!(
        from_spec(crd_doc).trim_end(),
        from_spec(&crd_src).trim_end()
    );
    let crd_parsed = find(
        &docs(&crd_chart),
        "CustomResourceDefinition",
        "supportpolicies.supportgate.dev",
    )["spec"]
        .clone();
    assert_eq!(crd_parsed, docs(&crd_src)[0]["spec"]);

    // The default policy is the binary's (--create-default-policy), not a chart template.
    assert_eq!(read("examples/policies/default.yaml"), DEFAULT_POLICY_YAML);
    assert!(!crd_chart.contains("\nkind: SupportPolicy\n"));

    // manifests/ is the Namespace and then exactly `helm template` with default values.
    let manifests = read("manifests/supportgate.yaml");
    let rendered = template(cp, "supportgate", "supportgate", &[]);
    let at = manifests
        .find("---\n# Source: ")
        .expect("helm's output in manifests/supportgate.yaml");
    assert_eq!(&manifests[at..], rendered);
    let head = docs(&manifests[..at]);
    assert_eq!(head.len(), 1);
    assert_eq!(head[0]["kind"], "Namespace");
    assert_eq!(head[0]["metadata"]["name"], "supportgate");
}

/// The drift check fails when a source changes and the generated files are not re-rendered.
#[test]
fn the_drift_check_fails_on_a_changed_source() {
    let cp = ControlPlane::shared();
    let copy = tempfile::tempdir().unwrap();
    let root = copy.path();
    copy_the_sources(root);
    let o = render_check(cp, root);
    assert!(o.status.success(), "the copy starts clean: {}", stderr(&o));
    a_changed_crd_makes_the_chart_and_manifests_stale(cp, root);

    // Re-rendering fixes it; then a changed chart default makes manifests/ stale alone.
    let o = Command::new(root.join("hack/render-manifests.sh"))
        .env("HELM", cp.tool("helm"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(render_check(cp, root).status.success());
    a_changed_default_makes_manifests_alone_stale(cp, root);
}

/// Copies what the render script reads and writes to `root`.
fn copy_the_sources(root: &Path) {
    for from in [
        "hack/render-manifests.sh",
        "crds",
        "examples/policies",
        "charts",
        "manifests",
    ] {
        let o = Command::new("cp")
            .args(["-R", "--parents", from])
            .arg(root)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(o.status.success(), "cp {from}: {}", stderr(&o));
    }
}

/// `hack/render-manifests.sh --check` in the copy at `root`.
fn render_check(cp: &ControlPlane, root: &Path) -> Output {
    Command::new(root.join("hack/render-manifests.sh"))
        .arg("--check")
        .env("HELM", cp.tool("helm"))
        .current_dir(root)
        .output()
        .unwrap()
}

/// A new field description in the CRD (as `make crds` would write after an API change).
fn a_changed_crd_makes_the_chart_and_manifests_stale(cp: &ControlPlane, root: &Path) {
    let crd = root.join("crds/supportgate.dev_supportpolicies.yaml");
    let text = std::fs::read_to_string(&crd).unwrap();
    let changed = text.replacen(
        "description: The minors inside the support window",
        "description: The minor versions inside the support window",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&crd, changed).unwrap();
    let o = render_check(cp, root);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(
            "charts/supportgate/templates/crds/supportgate.dev_supportpolicies.yaml is out of date"
        ),
        "{err}"
    );
    assert!(
        err.contains("manifests/supportgate.yaml is out of date"),
        "{err}"
    );
    assert!(
        err.contains("+                description: The minor versions"),
        "{err}"
    );
}

fn a_changed_default_makes_manifests_alone_stale(cp: &ControlPlane, root: &Path) {
    let values = root.join("charts/supportgate/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text.replacen("replicaCount: 2", "replicaCount: 3", 1),
    )
    .unwrap();
    let o = render_check(cp, root);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("manifests/supportgate.yaml is out of date"),
        "{err}"
    );
    assert!(!err.contains("templates/crds"), "{err}");
}
