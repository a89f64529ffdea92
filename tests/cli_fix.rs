//! `supportgate check` and the one coherent fix: the `fix` field, the `fix:` block, `--fix` and
//! `--fix=diff`, run as CI runs the binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run supportgate")
}

fn run(args: &[&str]) -> Output {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

const TODAY: &str = "--today=2026-11-24";

/// The docs sample with comments, both quoting styles and flow mappings, and a cluster whose
/// Kubernetes is above its release's range; both are fixed by exact versions alone.
const FIXABLE: &str = "# the docs sample, by hand
apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata:
  name: docs-sample   # keep this comment
  namespace: kommander
spec:
  provisioner: {provider: aws, version: v1.7.0}
  cluster:
    kubernetes:
      version: '1.20.13' # was 1.19 before
    addons:
    - configRepository: https://github.com/mesosphere/kubernetes-base-addons
      configVersion: \"stable-1.19-3.2.0\"
      addonsList: [{name: prometheus, enabled: true}]
    - configRepository: https://github.com/mesosphere/kubeaddons-kommander
      configVersion: stable-1.19-1.3.0
---
apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata: {name: above, namespace: kommander}
spec:
  provisioner: {version: v1.8.5}
  cluster:
    kubernetes: {version: 1.21.0}   # too new
    addons:
    - {configRepository: https://github.com/mesosphere/kubernetes-base-addons, configVersion: stable-1.20-4.4.0}
";

/// `FIXABLE` with exactly the two version scalars replaced.
const FIXED: &str = "# the docs sample, by hand
apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata:
  name: docs-sample   # keep this comment
  namespace: kommander
spec:
  provisioner: {provider: aws, version: v1.7.0}
  cluster:
    kubernetes:
      version: '1.19.15' # was 1.19 before
    addons:
    - configRepository: https://github.com/mesosphere/kubernetes-base-addons
      configVersion: \"stable-1.19-3.2.0\"
      addonsList: [{name: prometheus, enabled: true}]
    - configRepository: https://github.com/mesosphere/kubeaddons-kommander
      configVersion: stable-1.19-1.3.0
---
apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata: {name: above, namespace: kommander}
spec:
  provisioner: {version: v1.8.5}
  cluster:
    kubernetes: {version: 1.20.6}   # too new
    addons:
    - {configRepository: https://github.com/mesosphere/kubernetes-base-addons, configVersion: stable-1.20-4.4.0}
";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn json_carries_one_fix_per_object() {
    let o = run(&[
        "check",
        TODAY,
        "--output=json",
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let j = json_of(&o);
    let by_name = |n: &str| {
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    assert!(
        by_name("prod-east").get("fix").is_none(),
        "nothing to fix: no field"
    );
    assert_eq!(
        by_name("docs-sample")["fix"],
        json!([{"field": "spec.cluster.kubernetes.version", "from": "1.20.13", "to": "1.19.15"}])
    );
    assert_eq!(
        by_name("old-west")["fix"],
        json!([
            {"field": "spec.provisioner.version", "from": "v1.5.6", "to": "v1.6.3"},
            {"field": "spec.cluster.addons[1].configVersion", "from": "stable-1.17-1.1.4",
             "to": "stable-1.17-1.2.<patch>", "manual": true}
        ])
    );
    // Every denial of the docs sample points at that one combination.
    for v in by_name("docs-sample")["violations"].as_array().unwrap() {
        let m = v["message"].as_str().unwrap();
        assert!(!m.contains("tagged for 1.20"), "{m}");
        if v["severity"] == "deny" {
            assert!(m.contains("1.19.15"), "{m}");
        }
    }
}

#[test]
fn text_output_has_a_fix_block_per_object() {
    let o = run(&["check", TODAY, "examples/clusters/konvoyclusters.yaml"]);
    let text = stdout(&o);
    let docs = text
        .split("DENIED   KonvoyCluster kommander/docs-sample")
        .nth(1)
        .unwrap();
    let docs = docs.split("DENIED   ").next().unwrap();
    assert!(
        docs.ends_with("  fix:\n    spec.cluster.kubernetes.version: 1.20.13 -> 1.19.15\n"),
        "{docs}"
    );
    assert!(
        text.contains("    spec.provisioner.version: v1.5.6 -> v1.6.3\n"),
        "{text}"
    );
}

#[test]
fn fix_rewrites_only_the_version_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "clusters.yaml", FIXABLE);
    let before = run(&["check", TODAY, &file]);
    assert_eq!(code(&before), 1);
    let o = run(&["check", TODAY, "--fix", &file]);
    assert_eq!(
        code(&o),
        0,
        "fixed, both pass: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), FIXED);
    let notes = stderr(&o);
    assert!(
        notes.contains("fix      KonvoyCluster docs-sample (")
            && notes.contains("spec.cluster.kubernetes.version: 1.20.13 -> 1.19.15: set"),
        "{notes}"
    );
    // The report is of the rewritten file.
    assert!(
        stdout(&o).contains("2 objects: 2 allowed, 0 warned, 0 denied"),
        "{}",
        stdout(&o)
    );
    // Fixed once, nothing is left to fix.
    let again = run(&["check", TODAY, "--fix", &file]);
    assert_eq!(code(&again), 0);
    assert_eq!(stderr(&again), "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), FIXED);
}

#[test]
fn fix_diff_prints_the_change_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "clusters.yaml", FIXABLE);
    let o = run(&["check", TODAY, "--fix=diff", &file]);
    assert_eq!(code(&o), 1, "the files as they are still deny");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), FIXABLE);
    let want = format!(
        "--- {file}\n+++ {file}\n@@ -8,7 +8,7 @@\n   provisioner: {{provider: aws, version: v1.7.0}}\n   cluster:\n     kubernetes:\n-      version: '1.20.13' # was 1.19 before\n+      version: '1.19.15' # was 1.19 before\n     addons:\n     - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n       configVersion: \"stable-1.19-3.2.0\"\n@@ -22,6 +22,6 @@\n spec:\n   provisioner: {{version: v1.8.5}}\n   cluster:\n-    kubernetes: {{version: 1.21.0}}   # too new\n+    kubernetes: {{version: 1.20.6}}   # too new\n     addons:\n     - {{configRepository: https://github.com/mesosphere/kubernetes-base-addons, configVersion: stable-1.20-4.4.0}}\n"
    );
    assert_eq!(stdout(&o), want);
    // The diff is a real one: patch(1) applies it and gives the fixed file.
    let mut patch = Command::new("patch")
        .args(["--silent", "-p0", "-o", "-", &file])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("patch");
    patch
        .stdin
        .take()
        .unwrap()
        .write_all(stdout(&o).as_bytes())
        .unwrap();
    let patched = patch.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&patched.stdout), FIXED);
}

#[test]
fn placeholders_are_left_for_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clusters/konvoyclusters.yaml"),
    )
    .unwrap();
    let file = write(&dir, "k.yaml", &text);
    let o = run(&["check", TODAY, "--fix", "--output=json", &file]);
    assert_eq!(code(&o), 1, "old-west still needs a person: {}", stderr(&o));
    let fixed = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        fixed,
        text.replacen(
            "kubernetes: {version: 1.20.13}",
            "kubernetes: {version: 1.19.15}",
            1
        )
        .replacen("version: v1.5.6}", "version: v1.6.3}", 1),
        "only the docs sample's Kubernetes version and old-west's Konvoy version (to the policy's latest 1.6 patch) change"
    );
    let notes = stderr(&o);
    assert!(
        notes.contains("manual   KonvoyCluster old-west (")
            && notes.contains("spec.cluster.addons[1].configVersion: stable-1.17-1.1.4 -> stable-1.17-1.2.<patch>: choose the exact version and set it"),
        "{notes}"
    );
    let j = json_of(&o);
    let verdicts: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["allowed", "warned", "allowed", "denied"]);
}

#[test]
fn json_files_are_rewritten_in_place_too() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\n  \"apiVersion\": \"kommander.mesosphere.io/v1beta1\",\n  \"kind\": \"KonvoyCluster\",\n  \"metadata\": {\"name\": \"j\", \"namespace\": \"kommander\"},\n  \"spec\": {\"provisioner\": {\"version\": \"v1.8.5\"},\n           \"cluster\": {\"kubernetes\": {\"version\": \"1.21.0\"}}}\n}\n";
    let file = write(&dir, "c.json", text);
    let o = run(&["check", TODAY, "--fix", "--output=json", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text.replace("\"1.21.0\"", "\"1.20.6\"")
    );
    assert_eq!(json_of(&o)["results"][0]["verdict"], "allowed");
}

#[test]
fn standard_input_cannot_be_rewritten() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .args(["check", TODAY, "--fix", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(FIXABLE.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("standard input cannot be rewritten"),
        "{}",
        stderr(&o)
    );
}

/// Every YAML file below a directory, recursively.
fn yaml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// Every example and fixture, fixed: `--fix` writes the exact values, a person's choice fills
/// each placeholder, and the next check allows or warns every object.
#[test]
fn every_example_and_fixture_passes_once_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    yaml_files(&root.join("examples"), &mut files);
    yaml_files(&root.join("tests/fixtures"), &mut files);
    for (i, f) in files.iter().enumerate() {
        let name = format!("{i:02}-{}", f.file_name().unwrap().to_str().unwrap());
        std::fs::copy(f, dir.path().join(name)).unwrap();
    }
    let copies = dir.path().to_str().unwrap();
    let hosting = "--kubernetes-version=1.20.13";
    let o = run(&["check", TODAY, hosting, "--output=json", copies]);
    assert_eq!(code(&o), 1, "the examples deny some: {}", stderr(&o));
    let fixes: Vec<(String, Value)> = json_of(&o)["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["source"].as_str()?.to_string(), r.get("fix")?.clone())))
        .collect();
    assert!(fixes.len() >= 2, "{fixes:?}");

    let o = run(&["check", TODAY, hosting, "--fix", copies]);
    assert!(code(&o) < 2, "{}", stderr(&o));
    // A person picks a value for each placeholder.
    for (source, fix) in &fixes {
        let file = source.rsplit_once('#').unwrap().0;
        let mut text = std::fs::read_to_string(file).unwrap();
        for c in fix
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["manual"] == true)
        {
            let to = c["to"].as_str().unwrap();
            let chosen = to.replace("<patch>", "0").replace("<kba version>", "9.9.9");
            let from = c["from"].as_str().unwrap();
            assert_eq!(text.matches(from).count(), 1, "{from} in {file}");
            text = text.replace(from, &chosen);
        }
        std::fs::write(file, text).unwrap();
    }
    let o = run(&["check", TODAY, hosting, "--output=json", copies]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    for r in json_of(&o)["results"].as_array().unwrap() {
        assert_ne!(r["verdict"], "denied", "{r:#}");
        assert!(r.get("fix").is_none(), "nothing left to fix: {r:#}");
    }
}

/// The webhook's denial and the controller's condition read the same coherent messages, since
/// the fix is built on the one evaluation path.
#[test]
fn webhook_and_controller_messages_point_at_the_same_fix() {
    use supportgate::controller::condition::supported_condition;
    use supportgate::engine::Context;
    use supportgate::engine::policyset::PolicySet;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/clusters/konvoyclusters.yaml")).unwrap();
    let (objects, _) = supportgate::cli::input::parse_objects("k.yaml", &text);
    let docs = &objects
        .iter()
        .find(|o| o.object["metadata"]["name"] == "docs-sample")
        .unwrap()
        .object;
    let ctx = Context::new("2026-11-24".parse().unwrap());
    let policies = PolicySet::embedded_default();
    let body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "name": "docs-sample", "namespace": "kommander",
            "operation": "CREATE", "userInfo": {"username": "ci"},
            "object": docs, "dryRun": false
        }
    }))
    .unwrap();
    let (answer, _) =
        supportgate::webhook::admission::review(&body, &policies, &ctx, None).unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let denial = answer["response"]["status"]["message"].as_str().unwrap();
    let assessment = policies.assess(docs, &ctx).unwrap();
    let condition = supported_condition(
        &assessment.evaluation,
        None,
        None,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
    );
    for (who, m) in [
        ("webhook", denial),
        ("controller", condition.message.as_str()),
    ] {
        assert!(!m.contains("tagged for 1.20"), "{who}: {m}");
        assert!(
            m.contains("keep it and set the Kubernetes version to 1.19.15 instead"),
            "{who}: {m}"
        );
    }
    assert_eq!(assessment.fix.len(), 1);
}

/// Inside a `kind: List`, each item is rewritten at its own place; an anchored value is not
/// (its aliases would change with it) and is left for a person.
#[test]
fn list_items_are_rewritten_and_anchored_values_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let item = |name: &str, k8s: &str| {
        format!(
            "- apiVersion: kommander.mesosphere.io/v1beta1\n  kind: KonvoyCluster\n  metadata: {{name: {name}, namespace: k}}\n  spec:\n    provisioner: {{version: v1.8.5}}\n    cluster:\n      kubernetes: {{version: {k8s}}}  # {name}\n"
        )
    };
    let text = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}{}",
        item("a", "&k 1.21.0"),
        item("b", "\"1.21.0\"")
    );
    let file = write(&dir, "l.yaml", &text);
    let o = run(&["check", TODAY, "--fix", &file]);
    assert_eq!(code(&o), 1, "a still denies: {}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text.replace("\"1.21.0\"", "\"1.20.6\"")
    );
    let notes = stderr(&o);
    assert!(
        notes.contains("manual   KonvoyCluster a (")
            && notes.contains("not rewritten, it carries an anchor")
            && notes.contains("fix      KonvoyCluster b ("),
        "{notes}"
    );
}
