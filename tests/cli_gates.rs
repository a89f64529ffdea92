//! `supportgate check` on the two ways around the gate of issue 28 that the engine closes:
//! unsetting a version between two updates (path 3, through `--previous`, the same engine call
//! the webhook makes on UPDATE), and a respelled addons repository (path 4).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .args(["check", "--today=2026-11-24", "--output=json"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run supportgate")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

/// The one result of a run, with its operation.
fn result(o: &Output) -> Value {
    let j: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    let results = j["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{j:#}");
    results[0].clone()
}

fn rules(r: &Value, severity: &str) -> Vec<String> {
    r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["severity"] == severity)
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect()
}

/// A ClusterProvisioner whose `spec` is `spec` (flow YAML).
fn provisioner(spec: &str) -> String {
    format!(
        "apiVersion: konvoy.mesosphere.io/v1beta2\nkind: ClusterProvisioner\nmetadata: {{name: prod-east, namespace: kommander}}\nspec: {spec}\n"
    )
}

fn write(dir: &Path, rel: &str, body: &str) {
    std::fs::write(dir.join(rel), body).unwrap();
}

#[test]
fn previous_refuses_the_two_step_upgrade_at_its_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "v163.yaml",
        &provisioner("{provider: aws, version: v1.6.3}"),
    );
    write(d, "unset.yaml", &provisioner("{provider: aws}"));
    write(
        d,
        "v185.yaml",
        &provisioner("{provider: aws, version: v1.8.5}"),
    );

    // The direct skip, as before.
    let o = check(d, &["--previous=v163.yaml", "v185.yaml"]);
    let r = result(&o);
    assert_eq!(r["operation"], "update");
    assert_eq!(rules(&r, "deny"), ["upgrade-skips-minor"], "{r:#}");
    assert_eq!(code(&o), 1);

    // Step one of the walk around it: the unset is refused, naming the version to restore.
    let o = check(d, &["--previous=v163.yaml", "unset.yaml"]);
    let r = result(&o);
    assert_eq!(r["verdict"], "denied", "{r:#}");
    assert_eq!(rules(&r, "deny"), ["version-removed"], "{r:#}");
    let v = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "version-removed")
        .unwrap();
    assert_eq!(v["field"], "spec.version");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("(`v1.6.3`)") && msg.contains("restore the version"),
        "{msg}"
    );
    assert_eq!(code(&o), 1);

    // A downgrade walked around the same way (1.8.5 -> unset -> 1.6.3) stops there too.
    let o = check(d, &["--previous=v185.yaml", "v163.yaml"]);
    assert_eq!(rules(&result(&o), "deny"), ["downgrade"]);
    let o = check(d, &["--previous=v185.yaml", "unset.yaml"]);
    assert_eq!(rules(&result(&o), "deny"), ["version-removed"]);

    // Without --previous the same file is a create: nothing was removed, version-missing warns.
    let o = check(d, &["unset.yaml"]);
    let r = result(&o);
    assert_eq!(r["verdict"], "warned", "{r:#}");
    assert_eq!(rules(&r, "warn"), ["version-missing"]);
    assert_eq!(code(&o), 0);

    // An object that never had a version is not newly denied on update.
    let o = check(d, &["--previous=unset.yaml", "unset.yaml"]);
    assert_eq!(result(&o)["verdict"], "warned");
    assert_eq!(code(&o), 0);
}

/// A ClusterConfiguration on Kubernetes 1.20.13 whose KBA entry is `repo` at `version`.
fn configuration(labels: &str, repo: &str, version: &str) -> String {
    format!(
        r#"apiVersion: konvoy.mesosphere.io/v1beta2
kind: ClusterConfiguration
metadata: {{name: prod-east, namespace: kommander, labels: {{{labels}}}}}
spec:
  version: v1.8.5
  kubernetes: {{version: 1.20.13}}
  addons:
  - configRepository: {repo}
    configVersion: {version}
    addonsList: [{{name: traefik, enabled: true}}]
  - configRepository: https://github.com/mesosphere/kubeaddons-kommander
    configVersion: stable-1.20-1.4.4
    addonsList: [{{name: kommander, enabled: true}}]
"#
    )
}

#[test]
fn a_respelled_repository_is_checked_and_an_unknown_one_named_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for repo in [
        "https://github.com/mesosphere/kubernetes-base-addons",
        "Mesosphere/Kubernetes-Base-Addons",
        "https://GitHub.com/mesosphere/kubernetes-base-addons.git/",
        "'https://github.com/mesosphere/kubernetes-base-addons?ref=stable-1.18-3.0.0'",
    ] {
        write(d, "c.yaml", &configuration("", repo, "stable-1.18-3.0.0"));
        let o = check(d, &["c.yaml"]);
        let r = result(&o);
        assert_eq!(
            rules(&r, "deny"),
            ["kba-kubernetes-mismatch"],
            "{repo}: {r:#}"
        );
        assert_eq!(code(&o), 1, "{repo}");
    }
    let foreign = "https://github.com/acme/addons";
    write(
        d,
        "c.yaml",
        &configuration("environment: production", foreign, "v1"),
    );
    let r = result(&check(d, &["c.yaml"]));
    assert_eq!(rules(&r, "warn"), ["ref-unidentified"], "{r:#}");
    write(
        d,
        "c.yaml",
        &configuration("environment: staging", foreign, "v1"),
    );
    let r = result(&check(d, &["c.yaml"]));
    assert!(rules(&r, "warn").is_empty(), "{r:#}");
}
