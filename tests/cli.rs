//! Runs the `supportgate` binary the way CI pipelines do, on fixture files.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_supportgate"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run supportgate")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

const TODAY: &str = "--today=2026-11-24";

#[test]
fn denied_clusters_exit_1_with_json_verdicts() {
    let o = run(&[
        "check",
        TODAY,
        "--output",
        "json",
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(code(&o), 1, "{}", String::from_utf8_lossy(&o.stderr));
    let j = json_of(&o);
    let results = j["results"].as_array().unwrap();
    let verdicts: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("prod-east", "allowed"),
            ("staging-legacy", "warned"),
            ("docs-sample", "denied"),
            ("old-west", "denied")
        ]
    );
    let first = &results[0];
    assert_eq!(first["apiVersion"], "kommander.mesosphere.io/v1beta1");
    assert_eq!(first["kind"], "KonvoyCluster");
    assert_eq!(first["namespace"], "kommander");
    let old = &results[3]["violations"][0];
    assert_eq!(old["rule"], "konvoy-unsupported");
    assert_eq!(old["severity"], "deny");
    assert_eq!(old["field"], "spec.provisioner.version");
    assert!(
        old["message"]
            .as_str()
            .unwrap()
            .contains("upgrade to 1.6 or later")
    );
    let docs_rules: Vec<&str> = results[2]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["severity"] == "deny")
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        docs_rules,
        [
            "kubernetes-out-of-range",
            "kba-kubernetes-mismatch",
            "kommander-mismatch"
        ]
    );
}

#[test]
fn supported_files_exit_0_and_text_names_rules() {
    let o = run(&["check", TODAY, "examples/clusters/cluster.yaml"]);
    assert_eq!(code(&o), 0);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("ALLOWED  ClusterConfiguration prod-east"),
        "{text}"
    );
    assert!(
        text.contains("2 objects: 2 allowed, 0 warned, 0 denied, 0 skipped"),
        "{text}"
    );

    let o = run(&["check", TODAY, "examples/clusters/konvoyclusters.yaml"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("deny kommander-mismatch"), "{text}");
    assert!(text.contains("warn konvoy-nearing-end"), "{text}");
}

#[test]
fn warnings_alone_exit_0() {
    let o = run(&[
        "check",
        TODAY,
        "--kubernetes-version",
        "1.20.13",
        "examples/clusters/addons.yaml",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("WARNED   ClusterAddon istio"));
}

#[test]
fn hosting_version_checks_addons() {
    let o = run(&[
        "check",
        TODAY,
        "--kubernetes-version",
        "1.19.4",
        "--output",
        "json",
        "examples/clusters/addons.yaml",
    ]);
    assert_eq!(code(&o), 1);
    let j = json_of(&o);
    let prom = &j["results"][0];
    assert_eq!(prom["verdict"], "denied");
    assert_eq!(prom["violations"][0]["rule"], "kba-kubernetes-mismatch");
}

#[test]
fn stdin_and_skipped_objects() {
    let mut child = bin()
        .args(["check", TODAY, "--output", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: x}\n---\napiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {name: k}\nspec: {provisioner: {version: v1.8.1}}\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0);
    let j = json_of(&o);
    assert_eq!(j["results"].as_array().unwrap().len(), 1);
    assert_eq!(j["skipped"][0]["kind"], "ConfigMap");
    assert_eq!(j["skipped"][0]["source"], "-#1");
}

#[test]
fn a_custom_policy_changes_the_verdict() {
    // The history policy ends 1.8 on 2022-12-31: on 2023-01-02, prod-east is out of support.
    let o = run(&[
        "check",
        "--today=2023-01-02",
        "--policy",
        "examples/policies/konvoy-1x-history.yaml",
        "--output=json",
        "examples/clusters/cluster.yaml",
    ]);
    assert_eq!(code(&o), 1);
    let j = json_of(&o);
    let msg = j["results"][0]["violations"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("support ended on 2022-12-31"), "{msg}");
}

#[test]
fn input_errors_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: [oops\n",
    )
    .unwrap();
    let o = run(&[
        "check",
        TODAY,
        bad.to_str().unwrap(),
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(code(&o), 2, "parse errors dominate denials");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("ERROR    {}:6:1: ", bad.display())),
        "{text}"
    );
    assert!(
        text.contains("document 2: while parsing a flow sequence, expected ',' or ']'"),
        "{text}"
    );
    assert!(
        text.contains("DENIED   KonvoyCluster kommander/old-west"),
        "the other file is still checked: {text}"
    );

    let o = run(&["check", TODAY, "no/such/file.yaml"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no/such/file.yaml: cannot read"));

    let o = run(&["check"]);
    assert_eq!(code(&o), 2, "usage error");
    let o = run(&["check", "--output", "xml", "x"]);
    assert_eq!(code(&o), 2);
    let o = run(&[
        "check",
        "--today",
        "tomorrow",
        "examples/clusters/cluster.yaml",
    ]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--today tomorrow"));
    let o = run(&[
        "check",
        "--kubernetes-version",
        "latest",
        "examples/clusters/cluster.yaml",
    ]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("`latest` is not a version"));
}

#[test]
fn invalid_policies_exit_2_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.yaml");
    let text = include_str!("../examples/policies/default.yaml")
        .replace(
            "{min: 1.18.x, max: 1.20.x, default: 1.20.6}",
            "{min: 1.21.x, max: 1.20.x}",
        )
        .replace("kommander: \"1.3\"", "kommander: \"1.3\"\n    colour: blue");
    std::fs::write(&p, &text).unwrap();
    let o = run(&[
        "check",
        "--policy",
        p.to_str().unwrap(),
        "examples/clusters/cluster.yaml",
    ]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown field `colour`"), "{err}");

    let text = include_str!("../examples/policies/default.yaml").replace(
        "{min: 1.18.x, max: 1.20.x, default: 1.20.6}",
        "{min: 1.21.x, max: 1.20.x}",
    );
    std::fs::write(&p, &text).unwrap();
    let o = run(&[
        "check",
        "--policy",
        p.to_str().unwrap(),
        "examples/clusters/cluster.yaml",
    ]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("min 1.21.x is above max 1.20.x"), "{err}");
}

#[test]
fn yaml_floats_are_denied_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("float.yaml");
    std::fs::write(
        &f,
        "apiVersion: konvoy.mesosphere.io/v1beta2\nkind: ClusterConfiguration\nmetadata: {name: x}\nspec:\n  version: v1.8.5\n  kubernetes: {version: 1.20}\n",
    )
    .unwrap();
    let o = run(&["check", TODAY, "--output=json", f.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let v = &json_of(&o)["results"][0]["violations"][0];
    assert_eq!(v["rule"], "version-invalid");
    assert!(v["message"].as_str().unwrap().contains("quote it"));
}

#[test]
fn checked_in_crds_match_the_types() {
    let o = run(&["crd"]);
    assert_eq!(code(&o), 0);
    let on_disk = include_str!("../crds/supportgate.dev_supportpolicies.yaml");
    assert!(
        String::from_utf8_lossy(&o.stdout) == on_disk,
        "crds/ drifted from src/api/: run `make crds` and commit the result"
    );
}

#[test]
fn default_policy_is_the_embedded_one() {
    let o = run(&["default-policy"]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        include_str!("../examples/policies/default.yaml")
    );
}
