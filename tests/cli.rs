//! Runs the `supportgate` binary the way CI pipelines do, on fixture files.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use supportgate::api::object::engine_value;
use supportgate::controller::condition::supported_condition;
use supportgate::engine::Context;
use supportgate::engine::policyset::PolicySet;

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
    let on_disk = format!(
        "{}---\n{}",
        include_str!("../crds/supportgate.dev_supportpolicies.yaml"),
        include_str!("../crds/supportgate.dev_supportexceptions.yaml")
    );
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

/// `default-policy --diff -`: a policy on stdin compared with the embedded one; exit 1 and the
/// entry to add for a release it lacks, exit 0 for the embedded one itself, 2 for a non-policy.
#[test]
fn default_policy_diff_compares_stdin_with_the_embedded_one() {
    let embedded = include_str!("../examples/policies/default.yaml");
    let diff = |input: &str| {
        let mut child = bin()
            .args(["default-policy", "--diff", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = diff(embedded);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "- is the embedded default of supportgate {}: nothing to take.\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    let without_1_6 = embedded.replacen("- version: \"1.6\"", "- version: \"1.66\"", 1);
    let o = diff(&without_1_6);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("- product 1.66: only in this policy (a local addition)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "+ product 1.6: only in the vendor's policy; the entry to add:\n+   - version: '1.6'\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("The embedded default knows 1.6, which this policy lacks."),
        "{out}"
    );

    let o = diff("kind: ConfigMap\n");
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("-: not a SupportPolicy"));
}

/// Every YAML file under a directory, recursively, sorted.
fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// The rule ids a condition message names (`[konvoy-unsupported] ...; [prerelease] ...`).
fn rules_in_condition(message: &str) -> std::collections::BTreeSet<String> {
    message
        .split('[')
        .skip(1)
        .filter_map(|s| s.split_once(']').map(|(id, _)| id))
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_string)
        .collect()
}

/// The group and version of an `apiVersion` (`v1`: the core group, empty).
fn group_version(api_version: &str) -> (String, String) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    }
}

/// The webhook: its answer to an AdmissionReview CREATE of the object, and the rules it names.
fn webhook_rules(obj: &Value, policies: &PolicySet, ctx: &Context) -> (Value, BTreeSet<String>) {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let (group, version) = group_version(obj["apiVersion"].as_str().unwrap());
    let kind = obj["kind"].as_str().unwrap();
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": "things"},
            "name": name, "namespace": obj["metadata"]["namespace"],
            "operation": "CREATE", "userInfo": {"username": "ci"},
            "object": obj, "dryRun": false
        }
    }))
    .unwrap();
    let (answer, _) = supportgate::webhook::admission::review(&body, policies, ctx, None).unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    let webhook: BTreeSet<String> = answer["response"]["auditAnnotations"]["rules"]
        .as_str()
        .map(|r| r.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    (answer, webhook)
}

/// The controller: the watched object's engine view, the same assessment, the rules of the
/// condition it writes; `None` when no target matches the object.
fn controller_rules(obj: &Value, policies: &PolicySet, ctx: &Context) -> Option<BTreeSet<String>> {
    let (group, version) = group_version(obj["apiVersion"].as_str().unwrap());
    let kind = obj["kind"].as_str().unwrap();
    let dynamic: kube::api::DynamicObject = serde_json::from_value(obj.clone()).unwrap();
    let ar =
        kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(&group, &version, kind));
    let value = engine_value(dynamic, Some(&ar));
    let assessment = policies.assess(&value, ctx)?;
    let condition = supported_condition(
        &assessment.evaluation,
        None,
        None,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
    );
    Some(rules_in_condition(&condition.message))
}

/// The rules a result of `check --output json` names.
fn check_rules(result: &Value) -> BTreeSet<String> {
    result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect()
}

/// The three agree on every object of one file; returns how many of them a target matches.
fn agree_on_file(file: &std::path::Path, policies: &PolicySet, ctx: &Context) -> usize {
    let path = file.to_str().unwrap();
    let o = run(&[
        "check",
        TODAY,
        "--kubernetes-version=1.20.13",
        "--output=json",
        path,
    ]);
    assert!(
        code(&o) < 2,
        "{path}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = json_of(&o);
    let text = std::fs::read_to_string(file).unwrap();
    let (objects, errors) = supportgate::cli::input::parse_objects(path, &text);
    assert!(errors.is_empty(), "{path}: {errors:?}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(
        results.len() + report["skipped"].as_array().unwrap().len(),
        objects.len(),
        "{path}"
    );
    let mut targeted = 0;
    let mut next_result = results.iter();
    for so in &objects {
        let obj = &so.object;
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let (answer, webhook) = webhook_rules(obj, policies, ctx);
        let Some(controller) = controller_rules(obj, policies, ctx) else {
            assert!(
                webhook.is_empty(),
                "{path} {name}: untargeted, yet {webhook:?}"
            );
            continue;
        };
        targeted += 1;
        // `check --output json`, in document order.
        let r = next_result
            .next()
            .unwrap_or_else(|| panic!("{path}: no result for {name}"));
        assert_eq!(r["name"], name, "{path}");
        let check = check_rules(r);
        assert_eq!(webhook, check, "{path} {name}: webhook vs check");
        assert_eq!(controller, check, "{path} {name}: controller vs check");
        assert_eq!(
            answer["response"]["auditAnnotations"]["verdict"], r["verdict"],
            "{path} {name}"
        );
    }
    assert!(
        next_result.next().is_none(),
        "{path}: more results than targeted objects"
    );
    targeted
}

/// The webhook's answer, the controller's condition and `check --output json` name the same
/// rules for every example and fixture object.
#[test]
fn webhook_controller_and_check_agree_on_every_example_and_fixture() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    yaml_files(&root.join("examples"), &mut files);
    yaml_files(&root.join("tests/fixtures"), &mut files);
    let today: jiff::civil::Date = "2026-11-24".parse().unwrap();
    let ctx = Context::new(today).with_hosting_kubernetes(Some("1.20.13".parse().unwrap()));
    let policies = PolicySet::embedded_default();
    let targeted: usize = files
        .iter()
        .map(|file| agree_on_file(file, &policies, &ctx))
        .sum();
    assert!(
        targeted >= 8,
        "the examples hold targeted objects: {targeted}"
    );
}

fn policy_file(dir: &tempfile::TempDir, extra: &str) -> String {
    let p = dir.path().join("policy.yaml");
    std::fs::write(
        &p,
        format!(
            "{}{extra}",
            include_str!("../examples/policies/default.yaml")
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

const KONVOYCLUSTER_TARGET: &str = "  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields:\n";

/// Issue #18, reproduction 1: a target left with `fields: {}` (what the API server makes of a
/// misspelled key) checks nothing; `check` refuses the policy instead of allowing everything.
#[test]
fn a_policy_whose_target_checks_nothing_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for fields in [
        "      {}\n",
        "      productVersoin: $.spec.provisioner.version\n",
    ] {
        let policy = policy_file(&dir, &format!("{KONVOYCLUSTER_TARGET}{fields}"));
        let o = run(&[
            "check",
            TODAY,
            "--policy",
            &policy,
            "examples/clusters/konvoyclusters.yaml",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 2, "{fields}: {err}");
        assert!(
            err.contains("a target must name productVersion")
                || err.contains("unknown field `productVersoin`"),
            "{fields}: {err}"
        );
        assert!(o.stdout.is_empty(), "no verdicts from an invalid policy");
    }
}

/// The KonvoyCluster target with a typo in the product version's path.
const TYPO_FIELDS: &str = "      productVersion: $.spec.provisioner.verison\n      kubernetesVersion: $.spec.cluster.kubernetes.version\n";

/// Each result is warned, with one `version-missing` at the misspelled path.
fn each_result_warns_version_missing(j: &Value) {
    for r in j["results"].as_array().unwrap() {
        assert_eq!(r["verdict"], "warned", "{r}");
        let missing: Vec<&Value> = r["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["rule"] == "version-missing")
            .collect();
        assert_eq!(missing.len(), 1, "{r}");
        assert_eq!(missing[0]["severity"], "warn");
        assert_eq!(missing[0]["field"], "$.spec.provisioner.verison");
    }
}

/// One policy warning, naming the policy, the target, the field and the path.
fn one_policy_warning_names_the_field(j: &Value) {
    let warnings = j["policyWarnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w["policy"], "default");
    assert_eq!(w["target"], "KonvoyCluster.kommander.mesosphere.io");
    assert_eq!(w["field"], "productVersion");
    assert!(
        w["message"].as_str().unwrap().contains(
            "`$.spec.provisioner.verison` selects nothing in any of the 4 KonvoyCluster objects"
        ),
        "{w}"
    );
}

/// Issue #18, reproduction 2: a valid JSONPath with a typo matches nothing. The objects are not
/// silently allowed (`version-missing`), and the policy warning names the field.
#[test]
fn a_path_that_matches_nothing_is_a_policy_warning_and_version_missing() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(&dir, &format!("{KONVOYCLUSTER_TARGET}{TYPO_FIELDS}"));
    let o = run(&[
        "check",
        TODAY,
        "--output=json",
        "--policy",
        &policy,
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let j = json_of(&o);
    each_result_warns_version_missing(&j);
    one_policy_warning_names_the_field(&j);

    // Text output prints it too.
    let o = run(&[
        "check",
        TODAY,
        "--policy",
        &policy,
        "examples/clusters/konvoyclusters.yaml",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "POLICY   default target KonvoyCluster.kommander.mesosphere.io: productVersion"
        ),
        "{text}"
    );
}

/// Issue #18, reproduction 2, fail-closed: an install that denies what cannot be checked denies
/// every object whose version the misspelled path cannot find.
#[test]
fn a_path_that_matches_nothing_is_denied_when_missing_versions_are() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        &dir,
        &format!("  missingVersion: Deny\n{KONVOYCLUSTER_TARGET}{TYPO_FIELDS}"),
    );
    let o = run(&[
        "check",
        TODAY,
        "--output=json",
        "--policy",
        &policy,
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(code(&o), 1);
    let j = json_of(&o);
    assert!(
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["verdict"] == "denied")
    );
}

/// The presets resolve everywhere in the examples: no policy warnings.
#[test]
fn the_presets_resolve_in_every_example() {
    let o = run(&[
        "check",
        TODAY,
        "--output=json",
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(json_of(&o)["policyWarnings"], serde_json::json!([]));
}

/// Several policies: each evaluates the objects it targets and any deny wins; an invalid one is
/// an error offline (exit 2), where a cluster would ignore it and keep the others.
#[test]
fn a_second_policy_can_only_make_verdicts_stricter() {
    let dir = tempfile::tempdir().unwrap();
    let strict = dir.path().join("strict.yaml");
    std::fs::write(
        &strict,
        include_str!("../examples/policies/default.yaml")
            .replace("name: default", "name: strict")
            .replace("supportWindow: 3", "supportWindow: 2"),
    )
    .unwrap();
    let verdicts = |policies: &[&str]| {
        let mut args = vec!["check", TODAY, "--output=json"];
        for p in policies {
            args.extend(["--policy", p]);
        }
        args.push("examples/clusters/konvoyclusters.yaml");
        let o = run(&args);
        let j = json_of(&o);
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let default = "examples/policies/default.yaml";
    let alone = verdicts(&[default]);
    assert_eq!(alone[1], ("staging-legacy".into(), "warned".into()));
    let both = verdicts(&[default, strict.to_str().unwrap()]);
    assert_eq!(
        both[1],
        ("staging-legacy".into(), "denied".into()),
        "1.6 is outside the second policy's N-1 window"
    );
    for (a, b) in alone.iter().zip(&both) {
        let rank = |v: &str| ["allowed", "warned", "denied"].iter().position(|x| *x == v);
        assert!(rank(&b.1) >= rank(&a.1), "{a:?} -> {b:?}");
    }
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        include_str!("../examples/policies/default.yaml")
            .replace("supportWindow: 3", "supportWindow: 0"),
    )
    .unwrap();
    let o = run(&[
        "check",
        TODAY,
        "--policy",
        default,
        "--policy",
        broken.to_str().unwrap(),
        "examples/clusters/konvoyclusters.yaml",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("spec.supportWindow: must be at least 1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const LEGACY_WEST: &str = include_str!("../examples/exceptions/legacy-west.yaml");

/// Writes the default policy and `exception` to `path`, and returns a `check` of the example
/// clusters with it as of a `--today=` argument.
fn with_exception(path: &std::path::Path, exception: &str) -> impl Fn(&str) -> Output + use<> {
    std::fs::write(
        path,
        format!(
            "{}---\n{exception}",
            include_str!("../examples/policies/default.yaml")
        ),
    )
    .unwrap();
    let policy = path.to_str().unwrap().to_string();
    move |today: &str| {
        run(&[
            "check",
            today,
            "--output=json",
            "--policy",
            &policy,
            "examples/clusters/konvoyclusters.yaml",
        ])
    }
}

/// The result of the object named `name`.
fn result_named(j: &Value, name: &str) -> Value {
    j["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()
        .clone()
}

/// A policy file with a SupportPolicy and a SupportException: the excepted denial becomes a
/// warning naming the exception; the other clusters keep their verdicts.
#[test]
fn exceptions_in_the_policy_file_apply_offline() {
    let dir = tempfile::tempdir().unwrap();
    let check = with_exception(&dir.path().join("policy.yaml"), LEGACY_WEST);
    let o = check(TODAY);
    assert_eq!(code(&o), 1, "docs-sample is still denied");
    let old = result_named(&json_of(&o), "old-west");
    assert_eq!(old["verdict"], "warned", "{old:#}");
    let v = &old["violations"][0];
    assert_eq!(
        (&v["rule"], &v["severity"], &v["exception"]),
        (
            &Value::from("konvoy-unsupported"),
            &Value::from("warn"),
            &Value::from("supportgate/legacy-west")
        )
    );
    assert!(
        v["message"].as_str().unwrap().contains("until 2027-01-31"),
        "{v}"
    );
    let o = check("--today=2027-01-31");
    let old = result_named(&json_of(&o), "old-west");
    assert_eq!(old["verdict"], "denied", "expired on its expiry day");
    assert!(old["violations"][0].get("exception").is_none());
}

/// A malformed exception in the policy file is an input error, never silently applied or
/// ignored; so is one without `match.namespaces`, which would reach every namespace: refused
/// offline as in the cluster.
#[test]
fn invalid_exceptions_in_the_policy_file_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.yaml");
    let check = with_exception(
        &p,
        &LEGACY_WEST.replace("[konvoy-unsupported]", "[no-such-rule]"),
    );
    let o = check(TODAY);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown rule id `no-such-rule`"), "{err}");

    let unscoped = LEGACY_WEST.replace("    namespaces: [kommander]\n", "");
    assert_ne!(unscoped, LEGACY_WEST);
    let check = with_exception(&p, &unscoped);
    let o = check(TODAY);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("SupportException supportgate/legacy-west")
            && err.contains("spec.match.namespaces is required"),
        "{err}"
    );
}
