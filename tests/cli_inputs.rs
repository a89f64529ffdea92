//! `supportgate check` inputs as CI hands them over: directories, YAML 1.1 scalars as kubectl
//! reads them, a previous revision (`--previous`), and JUnit output.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const TODAY: &str = "--today=2026-11-24";

fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .arg("check")
        .arg(TODAY)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run supportgate")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// A KonvoyCluster; `istio` is the istio addon's `enabled` scalar as written.
fn cluster(name: &str, konvoy: &str, k8s: &str, labels: &str, istio: &str) -> String {
    let minor = k8s.trim_matches('"').split('.').take(2).collect::<Vec<_>>();
    let minor = minor.join(".");
    format!(
        r#"apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata:
  name: {name}
  namespace: kommander
  labels: {{{labels}}}
spec:
  provisioner: {{provider: aws, version: {konvoy}}}
  cluster:
    kubernetes:
      version: {k8s}
    addons:
    - configRepository: https://github.com/mesosphere/kubernetes-base-addons
      configVersion: stable-{minor}-4.4.0
      addonsList:
      - {{name: prometheus, enabled: true}}
      - name: istio
        enabled: {istio}
    - configRepository: https://github.com/mesosphere/kubeaddons-kommander
      configVersion: stable-{minor}-1.4.4
      addonsList: [{{name: kommander, enabled: true}}]
"#
    )
}

fn deny_rules(result: &Value) -> Vec<String> {
    result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["severity"] == "deny")
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn yaml_1_1_booleans_enable_an_addon_as_kubectl_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let prod = "environment: production";
    for (scalar, enabled) in [
        ("yes", true),
        ("on", true),
        ("y", true),
        ("Y", true),
        ("ON", true),
        ("true", true),
        ("no", false),
        ("off", false),
        ("\"yes\"", false),
        ("'on'", false),
    ] {
        write(
            dir.path(),
            "c.yaml",
            &cluster("p", "v1.8.5", "1.20.13", prod, scalar),
        );
        let o = check(dir.path(), &["--output=json", "c.yaml"]);
        let j = json(&o);
        let rules = deny_rules(&j["results"][0]);
        assert_eq!(
            rules.contains(&"experimental-component".to_string()),
            enabled,
            "enabled: {scalar}: {rules:?}"
        );
        assert_eq!(code(&o), if enabled { 1 } else { 0 }, "enabled: {scalar}");
    }
}

#[test]
fn an_unquoted_version_is_a_number_with_a_hint_to_quote_it() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "c.yaml",
        &cluster("p", "v1.8.5", "1.20", "", "false"),
    );
    let o = check(dir.path(), &["--output=json", "c.yaml"]);
    assert_eq!(code(&o), 1);
    let j = json(&o);
    let v = j["results"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "version-invalid")
        .unwrap_or_else(|| panic!("{j:#}"))
        .clone();
    assert_eq!(v["field"], "spec.cluster.kubernetes.version");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("the number 1.2"), "{msg}");
    assert!(
        msg.contains("unquoted as 1.20") && msg.contains("\"1.20\""),
        "{msg}"
    );
    // Quoted, the same text is a string: no number, no hint.
    write(
        dir.path(),
        "c.yaml",
        &cluster("p", "v1.8.5", "\"1.20.13\"", "", "false"),
    );
    let o = check(dir.path(), &["--output=json", "c.yaml"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn directories_are_walked_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "m/b/two.yml",
        &cluster("two", "v1.8.5", "1.20.13", "", "false"),
    );
    write(
        d,
        "m/a.yaml",
        &cluster("one", "v1.8.5", "1.20.13", "", "false"),
    );
    let three =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three"}});
    write(d, "m/c.json", &three.to_string());
    write(d, "m/notes.txt", "not yaml at all: [");
    write(d, "m/.github/workflow.yaml", "on: push\n");
    write(d, "m/b/README.md", "# no");
    let o = check(d, &["--output=json", "m"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    let j = json(&o);
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in j["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(j["skipped"].as_array().unwrap())
    {
        seen.push((
            r["source"].as_str().unwrap().into(),
            r["name"].as_str().unwrap().into(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("m/a.yaml#1".into(), "one".into()),
            ("m/b/two.yml#1".into(), "two".into()),
            ("m/c.json#1".into(), "three".into()),
        ]
    );
    let results: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["m/a.yaml#1", "m/b/two.yml#1"], "ordered by path");

    // A directory with nothing to read is an input error, not a silent pass.
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let o = check(d, &["empty"]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stdout).contains("holds no *.yaml"));
}

#[test]
fn previous_revision_matches_updates_creates_and_removals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old_west = |labels: &str| cluster("old-west", "v1.5.6", "1.17.17", labels, "false");
    // The base branch: an out-of-support cluster and one the change deletes.
    write(d, "base/clusters.yaml", &old_west(""));
    write(
        d,
        "base/gone.yaml",
        &cluster("gone", "v1.8.5", "1.20.13", "", "false"),
    );
    // The change: relabels the old cluster, and adds a new out-of-support one.
    write(d, "head/clusters.yaml", &old_west("team: a"));
    write(
        d,
        "head/new.yaml",
        &cluster("new-west", "v1.5.6", "1.17.17", "", "false"),
    );

    // Without --previous both are creates and denied.
    let o = check(d, &["--output=json", "head"]);
    assert_eq!(code(&o), 1);

    let o = check(d, &["--output=json", "--previous", "base", "head"]);
    let j = json(&o);
    let by_name = |n: &str| {
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {j:#}"))
            .clone()
    };
    let updated = by_name("old-west");
    assert_eq!(updated["operation"], "update");
    assert_eq!(updated["verdict"], "warned", "ratcheted: {updated:#}");
    assert!(deny_rules(&updated).is_empty());
    let created = by_name("new-west");
    assert_eq!(created["operation"], "create");
    assert!(
        deny_rules(&created).contains(&"konvoy-unsupported".to_string()),
        "{created:#}"
    );
    let removed: Vec<&str> = j["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["gone"]);
    assert_eq!(code(&o), 1, "the new cluster is still denied");

    // An update that makes the old cluster worse is denied: ratcheting only keeps what was.
    write(
        d,
        "head/clusters.yaml",
        &cluster("old-west", "v1.4.0", "1.17.17", "", "false"),
    );
    std::fs::remove_file(d.join("head/new.yaml")).unwrap();
    let o = check(
        d,
        &[
            "--output=json",
            "--previous=base/clusters.yaml",
            "--previous=base/gone.yaml",
            "head",
        ],
    );
    let j = json(&o);
    assert_eq!(j["results"][0]["operation"], "update");
    assert_eq!(j["results"][0]["verdict"], "denied", "{j:#}");
    assert_eq!(code(&o), 1);

    // Text output says which operation and what was removed.
    let o = check(d, &["--previous", "base", "head"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("head/clusters.yaml#1, update)"), "{text}");
    assert!(
        text.contains("REMOVED  KonvoyCluster kommander/gone"),
        "{text}"
    );
}

#[test]
fn junit_has_a_testcase_per_object_and_a_failure_per_denial() {
    let dir = tempfile::tempdir().unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    let examples = format!("{repo}/examples/clusters/konvoyclusters.yaml");
    write(dir.path(), "bad.yaml", "apiVersion: v1\nkind: [unclosed\n");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"<&>\"}\n";
    write(dir.path(), "cm.yaml", cm);
    let o = check(
        dir.path(),
        &["--output=junit", &examples, "cm.yaml", "bad.yaml"],
    );
    assert_eq!(code(&o), 2, "input errors keep exit code 2");
    let xml = String::from_utf8(o.stdout.clone()).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    // Four clusters, the skipped ConfigMap, and the input error.
    assert_eq!(cases.len(), 6, "{xml}");
    let failures = |name: &str| {
        let case = cases
            .iter()
            .find(|c| c.attribute("name").unwrap().contains(name))
            .unwrap_or_else(|| panic!("{name}:\n{xml}"));
        case.children()
            .filter(|n| n.has_tag_name("failure"))
            .map(|n| n.attribute("type").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        failures("docs-sample"),
        [
            "kubernetes-out-of-range",
            "kba-kubernetes-mismatch",
            "kommander-mismatch"
        ]
    );
    assert_eq!(failures("old-west"), ["konvoy-unsupported"]);
    assert!(failures("prod-east").is_empty());
    assert!(failures("staging-legacy").is_empty());
    let cm_case = cases
        .iter()
        .find(|c| c.attribute("name").unwrap().contains("<&>"))
        .expect("the escaped name reads back");
    assert!(cm_case.children().any(|n| n.has_tag_name("skipped")));
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("6"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    assert_eq!(suite.attribute("errors"), Some("1"));
    assert_eq!(suite.attribute("skipped"), Some("1"));

    // Without the error, the exit code is the verdict's.
    let o = check(dir.path(), &["--output=junit", &examples]);
    assert_eq!(code(&o), 1);
    let o = check(dir.path(), &["--output=junit", "cm.yaml"]);
    assert_eq!(code(&o), 0);
}

/// A KonvoyCluster with no addons: only its Konvoy and Kubernetes versions are judged.
fn bare_cluster(name: &str, konvoy: &str, k8s: &str) -> String {
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: kommander}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {k8s}}}\n"
    )
}

fn violations_of(j: &Value, rule: &str) -> Vec<Value> {
    j["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["violations"].as_array().unwrap().clone())
        .filter(|v| v["rule"] == rule)
        .collect()
}

/// Issue #12: `--previous` judges the upgrade path as admission does on UPDATE.
#[test]
fn previous_revision_holds_the_upgrade_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "base/c.yaml", &bare_cluster("edge", "v1.6.3", "1.18.13"));
    write(d, "head/c.yaml", &bare_cluster("edge", "v1.8.5", "1.18.13"));

    // As a CREATE, a 1.8.5 cluster is fine.
    let o = check(d, &["--output=json", "head"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));

    let o = check(d, &["--output=json", "--previous", "base", "head"]);
    assert_eq!(code(&o), 1);
    let j = json(&o);
    assert_eq!(j["results"][0]["operation"], "update");
    assert_eq!(j["results"][0]["verdict"], "denied");
    let skip = violations_of(&j, "upgrade-skips-minor");
    assert_eq!(skip.len(), 1, "{j:#}");
    assert_eq!(skip[0]["severity"], "deny");
    assert_eq!(skip[0]["field"], "spec.provisioner.version");
    let msg = skip[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("from 1.6.3 to 1.8.5")
            && msg.contains("upgrade to 1.7 first (1.7.5 with Kubernetes 1.19.15)"),
        "{msg}"
    );
    let text =
        String::from_utf8_lossy(&check(d, &["--previous", "base", "head"]).stdout).into_owned();
    assert!(
        text.contains("deny upgrade-skips-minor")
            && text.contains("spec.provisioner.version: the update moves Konvoy"),
        "{text}"
    );

    // One minor at a time is admitted; a patch back down is not.
    write(d, "head/c.yaml", &bare_cluster("edge", "v1.7.5", "1.18.13"));
    let o = check(d, &["--output=json", "--previous", "base", "head"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    write(d, "head/c.yaml", &bare_cluster("edge", "v1.6.2", "1.18.13"));
    let o = check(d, &["--output=json", "--previous", "base", "head"]);
    assert_eq!(code(&o), 1);
    let down = violations_of(&json(&o), "downgrade");
    assert_eq!(down.len(), 1);
    assert!(
        down[0]["message"]
            .as_str()
            .unwrap()
            .contains("lowers Konvoy from 1.6.3 to 1.6.2")
    );
}

fn cluster_yaml(name: &str, provisioner: &str, configuration: &str) -> String {
    format!(
        "kind: ClusterProvisioner\napiVersion: konvoy.mesosphere.io/v1beta2\nmetadata: {{name: {name}}}\nspec: {{provider: aws, version: {provisioner}}}\n---\nkind: ClusterConfiguration\napiVersion: konvoy.mesosphere.io/v1beta2\nmetadata: {{name: {name}}}\nspec:\n  kubernetes: {{version: 1.20.13}}\n  version: {configuration}\n"
    )
}

/// Issue #12: the ClusterProvisioner and the ClusterConfiguration of one cluster.yaml name the
/// same Konvoy version; a mismatch is reported on the ClusterConfiguration.
#[test]
fn a_cluster_yaml_names_one_konvoy_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "same/cluster.yaml",
        &cluster_yaml("prod-east", "v1.8.5", "1.8.5"),
    );
    let o = check(d, &["--output=json", "same"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));

    write(
        d,
        "mixed/cluster.yaml",
        &cluster_yaml("prod-east", "v1.8.4", "v1.8.5"),
    );
    let o = check(d, &["--output=json", "mixed"]);
    assert_eq!(code(&o), 1);
    let j = json(&o);
    let verdicts: Vec<(&str, &str)> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("ClusterProvisioner", "allowed"),
            ("ClusterConfiguration", "denied")
        ]
    );
    let m = violations_of(&j, "konvoy-version-mismatch");
    assert_eq!(m.len(), 1, "{j:#}");
    assert_eq!(m[0]["field"], "spec.version");
    assert!(
        m[0]["message"].as_str().unwrap().starts_with(
            "names Konvoy 1.8.5, but ClusterProvisioner prod-east (`spec.version`) names 1.8.4"
        ),
        "{m:#?}"
    );

    // Two files of one run pair too; another name does not.
    let (p, c) = cluster_yaml("west", "v1.8.4", "v1.8.5")
        .split_once("---\n")
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .unwrap();
    write(d, "split/a-provisioner.yaml", &p);
    write(d, "split/b-configuration.yaml", &c);
    write(
        d,
        "split/c-other.yaml",
        &c.replace("name: west", "name: east"),
    );
    let j = json(&check(d, &["--output=json", "split"]));
    let denied: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "denied")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(denied, ["west"], "{j:#}");
}
