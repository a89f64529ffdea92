//! End to end: the Helm chart (`charts/supportgate`), the plain manifests (`manifests/`) and the
//! container image recipe (`Dockerfile`), checked with the real `helm`, the real `kubectl` and a
//! real kube-apiserver (tests/support). Pods never run there: the objects are what is tested.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use serde::Deserialize as _;
use serde_json::{Value, json};
use support::{ControlPlane, repo, stderr, stdout};
use supportgate::api::SupportPolicy;
use supportgate::api::webhook_configuration::rules_for;
use supportgate::engine::policy::DEFAULT_POLICY_YAML;
use supportgate::engine::policyset::PolicySet;

const CHART: &str = "charts/supportgate";
const CRD_NAME: &str = "crd/supportpolicies.supportgate.dev";
const CRD_NAMES: [&str; 2] = [CRD_NAME, "crd/supportexceptions.supportgate.dev"];

/// Tests that create or delete the cluster-scoped SupportPolicy CRD run one at a time, also when
/// the test binary is run with several threads.
static CLUSTER_SCOPED: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    CLUSTER_SCOPED.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------------------------ helpers

/// Runs helm against the test control plane, with its own config/cache directories.
fn helm(cp: &ControlPlane, args: &[&str]) -> Output {
    let home = cp.dir.join("helm-home");
    Command::new(cp.tool("helm"))
        .args(args)
        .env("KUBECONFIG", &cp.kubeconfig)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("KUBECACHEDIR", home.join("kube-cache"))
        .current_dir(repo())
        .output()
        .expect("run helm")
}

fn helm_ok(cp: &ControlPlane, args: &[&str]) -> String {
    let o = helm(cp, args);
    assert!(
        o.status.success(),
        "helm {} failed:\n{}\n{}",
        args.join(" "),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `helm template RELEASE charts/supportgate --namespace NS --set S...`
fn template(cp: &ControlPlane, release: &str, ns: &str, sets: &[&str]) -> String {
    let mut args = vec!["template", release, CHART, "--namespace", ns];
    for s in sets {
        args.extend(["--set", s]);
    }
    helm_ok(cp, &args)
}

/// The documents of a multi-document YAML stream, as JSON values (empty documents dropped).
fn docs(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_string())
        .collect();
    k.sort();
    k
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", kinds(docs)))
}

fn get_json(cp: &ControlPlane, args: &[&str]) -> Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend(["-o", "json"]);
    serde_json::from_str(&cp.kubectl_ok(&a, None)).expect("kubectl -o json")
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// RBAC rules as comparable lines: `groups | resources | resourceNames | verbs`, each sorted.
fn rule_lines(rules: &Value) -> BTreeSet<String> {
    rules
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            let field = |k: &str| {
                let mut v = if r[k].is_null() { vec![] } else { strs(&r[k]) };
                v.sort();
                v.join(",")
            };
            format!(
                "{} | {} | {} | {}",
                field("apiGroups"),
                field("resources"),
                field("resourceNames"),
                field("verbs")
            )
        })
        .collect()
}

/// The kinds the embedded default policy targets, as `(group, resources)`: what the chart's
/// webhook rules and ClusterRole must cover.
fn default_targets() -> Vec<(String, Vec<String>)> {
    let set = PolicySet::embedded_default();
    rules_for(set.targets())
        .into_iter()
        .map(|r| (r.api_groups.unwrap()[0].clone(), r.resources.unwrap()))
        .collect()
}

/// The ClusterRole and Role rules the chart must render for `fullname`: exactly what
/// `supportgate run` uses (the list of issue 6), nothing more.
fn expected_rbac(
    fullname: &str,
    self_managed: bool,
    creates_policy: bool,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut cluster = vec![
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportpolicies"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportpolicies/status"], "verbs": ["get", "patch", "update"]}),
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportexceptions"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["supportgate.dev"], "resources": ["supportexceptions/status"], "verbs": ["get", "patch", "update"]}),
        json!({"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports", "clusterpolicyreports"], "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]}),
        json!({"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}),
    ];
    if creates_policy {
        cluster.push(json!({"apiGroups": ["supportgate.dev"], "resources": ["supportpolicies"], "verbs": ["create"]}));
    }
    for (group, resources) in default_targets() {
        let status: Vec<String> = resources.iter().map(|r| format!("{r}/status")).collect();
        cluster.push(json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}));
        cluster.push(json!({"apiGroups": [group], "resources": status, "verbs": ["get", "patch"]}));
    }
    let mut ns = vec![
        json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}),
        json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [fullname], "verbs": ["get", "update"]}),
    ];
    // Its own webhook configuration: the rules follow the policies (watched by name, patched)
    // in both modes; the self-managed caBundle is written with an update.
    let webhook_verbs = if self_managed {
        json!(["get", "list", "watch", "patch", "update"])
    } else {
        json!(["get", "list", "watch", "patch"])
    };
    cluster.push(json!({"apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingwebhookconfigurations"], "resourceNames": [fullname], "verbs": webhook_verbs}));
    if self_managed {
        ns.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}));
        ns.push(json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": [format!("{fullname}-tls")], "verbs": ["get", "list", "watch", "update", "patch"]}));
    }
    (rule_lines(&json!(cluster)), rule_lines(&json!(ns)))
}

/// Installs crds/ (server-side, taking the fields over from whoever applied them before) and
/// waits until the CRD is established. Other tests of this binary delete and re-create it.
fn ensure_project_crd(cp: &ControlPlane) {
    for crd in CRD_NAMES {
        let deleting = cp.kubectl_ok(
            &[
                "get",
                crd,
                "--ignore-not-found",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ],
            None,
        );
        if !deleting.trim().is_empty() {
            cp.kubectl_ok(&["wait", "--for=delete", crd, "--timeout=60s"], None);
        }
    }
    cp.kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "crds/"],
        None,
    );
    for crd in CRD_NAMES {
        cp.kubectl_ok(
            &["wait", "--for=condition=Established", "--timeout=60s", crd],
            None,
        );
    }
}

/// Deletes the project's CRDs (a fresh cluster, as a first install meets it).
fn delete_project_crd(cp: &ControlPlane) {
    for crd in CRD_NAMES.iter().rev() {
        cp.kubectl_ok(&["delete", crd, "--ignore-not-found", "--wait=true"], None);
    }
}

/// A namespace that enforces the `restricted` Pod Security profile and warns about violations
/// (for workloads such as Deployments the API server answers with warnings).
fn restricted_namespace(cp: &ControlPlane, name: &str) {
    cp.create_namespace(name);
    cp.kubectl_ok(
        &[
            "label",
            "--overwrite",
            "namespace",
            name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/warn=restricted",
        ],
        None,
    );
}

fn dry_run(cp: &ControlPlane, yaml: &str) -> Output {
    cp.kubectl_in(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=chart-e2e",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(yaml),
    )
}

/// Whether the ServiceAccount `ns/name` may `verb` on `resource` (`plural[.group][/subresource]`,
/// optionally `…:objectName`) in `namespace` ("" for cluster-wide), as the API server's
/// authorizer answers a SubjectAccessReview. (Not `kubectl auth can-i`: it needs the kind to
/// be served, and the targeted kinds are not installed here.)
fn allowed(
    cp: &ControlPlane,
    sa: (&str, &str),
    verb: &str,
    resource: &str,
    namespace: &str,
) -> bool {
    let (resource, name) = resource.split_once(':').unwrap_or((resource, ""));
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": format!("system:serviceaccount:{}:{}", sa.0, sa.1),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", sa.0), "system:authenticated"],
            "resourceAttributes": {
                "verb": verb, "group": group, "resource": resource, "subresource": subresource,
                "namespace": namespace, "name": name,
            },
        },
    });
    let out = cp.kubectl_ok(
        &["create", "-f", "-", "-o", "jsonpath={.status.allowed}"],
        Some(&review.to_string()),
    );
    match out.trim() {
        "true" => true,
        "false" | "" => false,
        other => panic!("SubjectAccessReview {review}: {other}"),
    }
}

/// The text of a YAML document from its `spec:` line to the end.
fn from_spec(text: &str) -> &str {
    let at = text
        .find("\nspec:\n")
        .unwrap_or_else(|| panic!("no spec in:\n{text}"));
    &text[at + 1..]
}

// ----------------------------------------------------------------------------- lint, schema

const EVERYTHING: &[&str] = &[
    "certManager.enabled=true",
    "networkPolicy.enabled=true",
    "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
    "networkPolicy.webhookFrom[0].ipBlock.cidr=10.0.0.0/8",
    "metrics.serviceMonitor.enabled=true",
    "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
    "image.pullSecrets={regcred}",
    "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "commonLabels.team=platform",
    "podLabels.tier=control",
    "podAnnotations.example\\.com/scrape=enabled",
    "tolerations[0].key=dedicated",
    "tolerations[0].operator=Equal",
    "tolerations[0].value=infra",
    "tolerations[0].effect=NoSchedule",
    "nodeSelector.kubernetes\\.io/os=linux",
    "priorityClassName=system-cluster-critical",
    "extraArgs={--hosting-kubernetes-version=1.20.13}",
    "webhook.failurePolicy=Ignore",
    "webhook.timeoutSeconds=10",
    "webhook.excludeNamespaces={kommander}",
    "webhook.objectSelector.matchExpressions[0].key=supportgate.dev/skip",
    "webhook.objectSelector.matchExpressions[0].operator=DoesNotExist",
    "serviceAccount.annotations.example\\.com/owner=platform",
    "replicaCount=3",
    "podDisruptionBudget.minAvailable=50%",
    "logLevel=info\\,supportgate=debug",
    "logFormat=text",
];

#[test]
fn helm_lint_passes_in_both_certificate_modes() {
    let cp = ControlPlane::shared();
    let mut everything = vec!["lint", "--strict", CHART];
    for s in EVERYTHING {
        everything.extend(["--set", s]);
    }
    for args in [
        vec!["lint", "--strict", CHART],
        vec![
            "lint",
            "--strict",
            CHART,
            "--set",
            "certManager.enabled=true",
        ],
        everything,
    ] {
        let out = helm_ok(cp, &args);
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{args:?}:\n{out}"
        );
        assert!(!out.contains("[WARNING]"), "{args:?}:\n{out}");
    }
}

#[test]
fn a_typo_in_values_fails_helm_template_and_install_with_a_schema_error() {
    let cp = ControlPlane::shared();
    let dir = tempfile::tempdir().unwrap();
    let values_file = dir.path().join("typo.yaml");
    std::fs::write(
        &values_file,
        "image:\n  repository: supportgate\n  tga: \"0.1.0\"\n",
    )
    .unwrap();
    let values_file = values_file.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--set", "replicaCont=3"],
            "additional properties 'replicaCont' not allowed",
        ),
        (
            vec!["--set", "webhook.failurPolicy=Ignore"],
            "at '/webhook': additional properties 'failurPolicy' not allowed",
        ),
        (
            vec!["--set", "webhook.failurePolicy=ignore"],
            "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'",
        ),
        (
            vec!["--set", "metrics.serviceMonitor.enabeld=true"],
            "at '/metrics/serviceMonitor': additional properties 'enabeld' not allowed",
        ),
        (
            vec!["--set", "resources.requests.memroy=1Gi"],
            "at '/resources/requests': additional properties 'memroy' not allowed",
        ),
        (
            vec!["--set", "certManager.issuerRef.nmae=corp-ca"],
            "at '/certManager/issuerRef': additional properties 'nmae' not allowed",
        ),
        (
            vec![
                "--set",
                "networkPolicy.webhookFrom[0].podSelectr.matchLabels.a=b",
            ],
            "at '/networkPolicy/webhookFrom/0': additional properties 'podSelectr' not allowed",
        ),
        (
            vec!["--set", "targets[0].resource=konvoyclusters"],
            "additional properties 'resource' not allowed",
        ),
        (
            vec!["--set", "commonLabels.app\\.kubernetes\\.io/name=other"],
            "invalid propertyName 'app.kubernetes.io/name'",
        ),
        (
            vec!["-f", &values_file],
            "at '/image': additional properties 'tga' not allowed",
        ),
    ];
    for (extra, want) in &cases {
        let mut args = vec!["template", "sg", CHART];
        args.extend_from_slice(extra);
        let o = helm(cp, &args);
        assert!(!o.status.success(), "{extra:?} rendered:\n{}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "{extra:?}: {err}"
        );
        assert!(
            err.contains(want),
            "{extra:?}: expected {want:?} in:\n{err}"
        );
        assert!(stdout(&o).trim().is_empty(), "{extra:?}: {}", stdout(&o));
    }

    // helm install refuses the same way, before anything reaches the cluster.
    cp.create_namespace("chart-typo");
    let o = helm(
        cp,
        &[
            "install",
            "typo",
            CHART,
            "-n",
            "chart-typo",
            "--set",
            "webhook.timeoutSecond=3",
        ],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("at '/webhook': additional properties 'timeoutSecond' not allowed"),
        "{}",
        stderr(&o)
    );
    let o = helm(cp, &["status", "typo", "-n", "chart-typo"]);
    assert!(
        !o.status.success() && stderr(&o).contains("release: not found"),
        "{}",
        stderr(&o)
    );
    let vwcs = cp.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app.kubernetes.io/instance=typo",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(vwcs.trim(), "");
}

/// Every object in values.schema.json is closed (`additionalProperties: false`); only the free
/// maps (labels, annotations, nodeSelector) take any key, and they have no `properties`.
#[test]
fn the_values_schema_closes_every_object() {
    let text = std::fs::read_to_string(repo().join(CHART).join("values.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).expect("values.schema.json is JSON");
    fn walk(v: &Value, path: &str, closed: &mut usize, root: &Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("properties") {
                    assert_eq!(
                        m.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{path} has properties but is not closed"
                    );
                    *closed += 1;
                }
                if m.get("type") == Some(&json!("object")) && !m.contains_key("properties") {
                    // A free map: its values are typed.
                    assert!(
                        m.get("additionalProperties").is_some_and(Value::is_object),
                        "{path} is an object without properties or typed values"
                    );
                }
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let pointer = r.strip_prefix('#').expect("local $ref");
                    assert!(root.pointer(pointer).is_some(), "{path}: dangling $ref {r}");
                }
                for (k, child) in m {
                    walk(child, &format!("{path}/{k}"), closed, root);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, &format!("{path}/{i}"), closed, root);
                }
            }
            _ => {}
        }
    }
    let mut closed = 0;
    walk(&schema, "", &mut closed, &schema);
    assert_eq!(schema["additionalProperties"], json!(false));
    assert!(closed >= 15, "only {closed} closed objects");

    // Every top-level value the chart documents is declared, and nothing else.
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(repo().join(CHART).join("values.yaml")).unwrap(),
    )
    .unwrap();
    let in_values: BTreeSet<&String> = values.as_object().unwrap().keys().collect();
    let in_schema: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(in_values, in_schema);
}

// ------------------------------------------------------------------- server-side validation

#[test]
fn every_rendered_manifest_passes_server_side_validation_and_pod_security() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    ensure_project_crd(cp);
    cp.install_crd_files("tests/fixtures/crds-certmanager/");
    cp.install_crd_files("tests/fixtures/crds-prometheus-operator/");
    let ns = "chart-dry-run";
    restricted_namespace(cp, ns);

    // Two ClusterRoles and bindings: the operator's own, and the aggregated one that grants
    // what ClusterRoles labelled supportgate.dev/aggregate-to-supportgate add.
    let base = [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "CustomResourceDefinition", // SupportPolicy
        "CustomResourceDefinition", // SupportException
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
    ];
    let with = |extra: &[&str]| {
        let mut k: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        ("default values", vec![], with(&[])),
        (
            "cert-manager",
            vec!["certManager.enabled=true"],
            with(&["Certificate", "Issuer"]),
        ),
        (
            "cert-manager with a ClusterIssuer",
            vec![
                "certManager.enabled=true",
                "certManager.issuerRef.name=corp-ca",
                "certManager.issuerRef.kind=ClusterIssuer",
            ],
            with(&["Certificate"]),
        ),
        (
            "everything on",
            EVERYTHING.to_vec(),
            with(&[
                "Certificate",
                "Issuer",
                "NetworkPolicy",
                "Service",
                "ServiceMonitor",
            ]),
        ),
        (
            "everything off",
            vec![
                "crds.install=false",
                "policy.create=false",
                "podDisruptionBudget.enabled=false",
                "serviceAccount.create=false",
                "serviceAccount.name=existing",
            ],
            {
                let mut k = with(&[]);
                for gone in [
                    "CustomResourceDefinition",
                    "PodDisruptionBudget",
                    "ServiceAccount",
                ] {
                    assert!(k.iter().any(|x| x == gone), "{gone}");
                    k.retain(|x| x != gone);
                }
                k
            },
        ),
    ];
    let mut default_render = String::new();
    for (name, sets, want_kinds) in &cases {
        let rendered = template(cp, "sg", ns, sets);
        let d = docs(&rendered);
        assert_eq!(&kinds(&d), want_kinds, "{name}: rendered kinds");
        // A self-signed certificate is its own caBundle: a new key at renewal would leave the
        // pods serving a certificate the API server no longer trusts (docs/reliability.md).
        let rotation = match *name {
            "cert-manager" | "everything on" => Some("rotationPolicy: Never"),
            "cert-manager with a ClusterIssuer" => Some("rotationPolicy: Always"),
            _ => None,
        };
        if let Some(want) = rotation {
            assert!(rendered.contains(want), "{name}: {want}\n{rendered}");
        }
        let o = dry_run(cp, &rendered);
        assert!(
            o.status.success(),
            "{name}: the API server refused the rendered chart:\n{}",
            stderr(&o)
        );
        assert!(
            !stderr(&o).contains("PodSecurity"),
            "{name}: {}",
            stderr(&o)
        );
        assert_eq!(
            stdout(&o).matches("(server dry run)").count(),
            d.len(),
            "{name}: every document is accepted:\n{}",
            stdout(&o)
        );
        if sets.is_empty() {
            default_render = rendered;
        }
    }

    // The checks above can fail: the same namespace warns about a Pod Security violation, and
    // strict validation refuses a misspelt field.
    let escalating = default_render.replace(
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
    );
    assert_ne!(escalating, default_render);
    let o = dry_run(cp, &escalating);
    assert!(
        stderr(&o).contains("would violate PodSecurity \"restricted:latest\""),
        "{}",
        stderr(&o)
    );
    let misspelt = default_render.replace("readOnlyRootFilesystem:", "readOnlyRootFilesytem:");
    let o = dry_run(cp, &misspelt);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("readOnlyRootFilesytem: field not declared in schema"),
        "{}",
        stderr(&o)
    );
}

// ------------------------------------------------------------------------- plain manifests

#[test]
fn the_plain_manifests_install_with_one_kubectl_apply_on_a_fresh_cluster() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    delete_project_crd(cp);

    let o = cp.kubectl(&["apply", "--server-side", "-f", "manifests/supportgate.yaml"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for line in [
        "namespace/supportgate serverside-applied",
        "customresourcedefinition.apiextensions.k8s.io/supportpolicies.supportgate.dev serverside-applied",
        "deployment.apps/supportgate serverside-applied",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/supportgate serverside-applied",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(!stderr(&o).contains("PodSecurity"), "{}", stderr(&o));

    let ns = get_json(cp, &["namespace", "supportgate"]);
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // No policy in the file (it would race its own CRD's discovery): the pods create it.
    assert!(!out.contains("supportpolicy"), "{out}");
    let deploy = get_json(cp, &["-n", "supportgate", "deployment", "supportgate"]);
    let args = strs(&deploy["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(
        args.iter().any(|a| a == "--create-default-policy"),
        "{args:?}"
    );
    let vwc = get_json(cp, &["validatingwebhookconfiguration", "supportgate"]);
    let webhook = &vwc["webhooks"][0];
    assert_eq!(
        webhook["clientConfig"]["service"]["namespace"],
        "supportgate"
    );
    assert!(
        webhook["clientConfig"]["caBundle"].is_null(),
        "the caBundle is supportgate's to write: {webhook}"
    );

    // Removal: the same file, and no webhook configuration is left to block anything.
    let o = cp.kubectl(&[
        "delete",
        "-f",
        "manifests/supportgate.yaml",
        "--ignore-not-found",
        "--wait=false",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    cp.kubectl_ok(&["wait", "--for=delete", CRD_NAME, "--timeout=60s"], None);
    let left = cp.kubectl_ok(
        &["get", "validatingwebhookconfigurations", "-o", "name"],
        None,
    );
    assert!(!left.contains("/supportgate\n"), "{left}");
}

// ----------------------------------------------------------------------------- helm install

#[test]
fn helm_install_upgrade_and_uninstall_in_the_self_managed_certificate_mode() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    // A first install: the CRD is not there yet.
    delete_project_crd(cp);
    let ns = "sg-e2e";
    cp.create_namespace(ns);
    let fullname = "sg-supportgate";

    let out = helm_ok(cp, &["install", "sg", CHART, "-n", ns]);
    // Uninstalled however the test ends: a webhook configuration left behind (failurePolicy
    // Fail, no pods) would refuse the next tests' objects.
    let _release = Release {
        cp,
        name: "sg".to_string(),
        namespace: ns.to_string(),
    };
    assert!(out.contains("STATUS: deployed"), "{out}");

    // The CRD is the chart's, kept on uninstall. Helm creates no policy: supportgate does, when
    // it starts and finds none (--create-default-policy, below), so no Helm step needs the CRD
    // to be served already.
    let crd = get_json(cp, &[CRD_NAME]);
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let o = cp.kubectl(&["get", "supportpolicy", "default"]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));

    // The webhook configuration: the engine's targets, fail-closed, never its own namespace.
    let vwc = get_json(cp, &["validatingwebhookconfiguration", fullname]);
    let hooks = vwc["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    let w = &hooks[0];
    assert_eq!(w["name"], "versions.supportgate.dev");
    let set = PolicySet::embedded_default();
    assert_eq!(
        w["rules"],
        serde_json::to_value(rules_for(set.targets())).unwrap(),
        "the chart's rules are the ones supportgate derives from its targets"
    );
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["timeoutSeconds"], 5);
    assert_eq!(w["sideEffects"], "None");
    assert_eq!(w["matchPolicy"], "Equivalent");
    assert_eq!(w["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(
        w["clientConfig"],
        json!({"service": {"name": fullname, "namespace": ns, "path": "/validate", "port": 443}})
    );
    assert_eq!(
        w["namespaceSelector"],
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [ns, "kube-system"]}]})
    );
    assert!(vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_null());

    // The Deployment: two spread replicas, restricted, probes on the health port.
    let deploy = get_json(cp, &["-n", ns, "deployment", fullname]);
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["serviceAccountName"], fullname);
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let anti =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        anti["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        anti["podAffinityTerm"]["labelSelector"]["matchLabels"],
        deploy["spec"]["selector"]["matchLabels"]
    );
    let c = &pod["containers"][0];
    assert_eq!(
        strs(&c["args"]),
        [
            "run",
            "--webhook-addr=0.0.0.0:8443",
            "--health-addr=0.0.0.0:8080",
            "--tls-cert-file=/etc/supportgate/tls/tls.crt",
            "--tls-key-file=/etc/supportgate/tls/tls.key",
            "--log-format=json",
            "--leader-election-namespace=$(POD_NAMESPACE)",
            "--leader-election-lease=sg-supportgate",
            "--max-connections=2048",
            "--tls-handshake-timeout-seconds=10",
            "--max-handshakes-per-client=16",
            "--header-read-timeout-seconds=5",
            "--body-read-timeout-seconds=10",
            "--idle-timeout-seconds=120",
            "--h2-max-concurrent-streams=100",
            "--h2-max-pending-accept-reset-streams=20",
            "--h2-max-local-error-reset-streams=64",
            "--h2-max-abandoned-streams=200",
            "--h2-keep-alive-interval-seconds=20",
            "--h2-keep-alive-timeout-seconds=10",
            "--h2-max-header-list-bytes=16384",
            "--h2-connection-window-bytes=1048576",
            "--h2-stream-window-bytes=1048576",
            "--self-managed-certs",
            "--cert-secret-name=sg-supportgate-tls",
            "--webhook-config-name=sg-supportgate",
            "--service-name=sg-supportgate",
            "--namespace=$(POD_NAMESPACE)",
            "--cert-validity-days=365",
            "--cert-rotate-before-days=30",
            "--cert-check-seconds=3600",
            "--sync-webhook-rules",
            "--create-default-policy",
        ]
    );
    assert_eq!(
        c["env"][0],
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}})
    );
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "RUST_LOG", "value": "info"}))
    );
    assert_eq!(
        c["securityContext"],
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "health");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "health");
    let ports: BTreeSet<(String, i64)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        BTreeSet::from([("https".to_string(), 8443), ("health".to_string(), 8080)])
    );
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "tls", "mountPath": "/etc/supportgate/tls", "readOnly": true})
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "sg-supportgate-tls"
    );
    assert_eq!(pod["volumes"][0]["secret"]["optional"], true);

    let pdb = get_json(cp, &["-n", ns, "poddisruptionbudget", fullname]);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let svc = get_json(cp, &["-n", ns, "service", fullname]);
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}])
    );

    // RBAC: exactly the rules of the process, nothing with "*"...
    let cr = get_json(cp, &["clusterrole", fullname]);
    let role = get_json(cp, &["-n", ns, "role", fullname]);
    assert!(!cr.to_string().contains("\"*\"") && !role.to_string().contains("\"*\""));
    let (want_cluster, want_ns) = expected_rbac(fullname, true, true);
    assert_eq!(rule_lines(&cr["rules"]), want_cluster);
    assert_eq!(rule_lines(&role["rules"]), want_ns);
    // ...as the API server's authorizer sees them for the chart's ServiceAccount.
    let who = (ns, fullname);
    for (verb, resource, namespace, want) in [
        ("list", "supportpolicies.supportgate.dev", "", true),
        ("create", "supportpolicies.supportgate.dev", "", true),
        ("update", "supportpolicies.supportgate.dev", "", false),
        ("delete", "supportpolicies.supportgate.dev", "", false),
        ("patch", "supportpolicies.supportgate.dev/status", "", true),
        ("watch", "konvoyclusters.kommander.mesosphere.io", "", true),
        (
            "update",
            "konvoyclusters.kommander.mesosphere.io",
            "kommander",
            false,
        ),
        (
            "patch",
            "konvoyclusters.kommander.mesosphere.io/status",
            "kommander",
            true,
        ),
        (
            "update",
            "konvoyclusters.kommander.mesosphere.io/status",
            "kommander",
            false,
        ),
        ("list", "clusterprovisioners.konvoy.mesosphere.io", "", true),
        (
            "patch",
            "clusteraddons.kubeaddons.mesosphere.io/status",
            "",
            true,
        ),
        ("watch", "instances.kudo.dev", "", true),
        ("create", "policyreports.wgpolicyk8s.io", "kommander", true),
        ("delete", "clusterpolicyreports.wgpolicyk8s.io", "", true),
        ("create", "events", "kommander", true),
        ("patch", "events.events.k8s.io", "kommander", true),
        ("delete", "events", "kommander", false),
        ("get", "pods", "", false),
        ("list", "namespaces", "", false),
        ("create", "leases.coordination.k8s.io", ns, true),
        ("create", "leases.coordination.k8s.io", "default", false),
        (
            "update",
            "leases.coordination.k8s.io:sg-supportgate",
            ns,
            true,
        ),
        ("update", "leases.coordination.k8s.io:another", ns, false),
        (
            "delete",
            "leases.coordination.k8s.io:sg-supportgate",
            ns,
            false,
        ),
        ("create", "secrets", ns, true),
        ("get", "secrets:sg-supportgate-tls", ns, true),
        ("patch", "secrets:sg-supportgate-tls", ns, true),
        ("watch", "secrets:sg-supportgate-tls", ns, true),
        ("get", "secrets:another", ns, false),
        ("list", "secrets", ns, false),
        ("get", "secrets:sg-supportgate-tls", "default", false),
        (
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io:sg-supportgate",
            "",
            true,
        ),
        (
            "patch",
            "validatingwebhookconfigurations.admissionregistration.k8s.io:another",
            "",
            false,
        ),
        (
            "delete",
            "validatingwebhookconfigurations.admissionregistration.k8s.io:sg-supportgate",
            "",
            false,
        ),
        (
            "create",
            "validatingwebhookconfigurations.admissionregistration.k8s.io",
            "",
            false,
        ),
    ] {
        assert_eq!(
            allowed(cp, who, verb, resource, namespace),
            want,
            "{verb} {resource} in {namespace:?}"
        );
    }

    // supportgate writes the caBundle; `helm upgrade` keeps it (the chart never sets it).
    let bundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";
    cp.kubectl_ok(
        &[
            "patch",
            "validatingwebhookconfiguration",
            fullname,
            "--type=json",
            "-p",
            &format!(
                r#"[{{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"{bundle}"}}]"#
            ),
        ],
        None,
    );
    let out = helm_ok(
        cp,
        &[
            "upgrade",
            "sg",
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "webhook.failurePolicy=Ignore",
        ],
    );
    assert!(out.contains("REVISION: 2"), "{out}");
    let w = get_json(cp, &["validatingwebhookconfiguration", fullname])["webhooks"][0].clone();
    assert_eq!(w["failurePolicy"], "Ignore");
    assert_eq!(w["clientConfig"]["caBundle"], bundle);

    // Uninstall: no webhook configuration is left behind; the CRD (and the policies) are.
    let o = helm(cp, &["uninstall", "sg", "-n", ns, "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("[CustomResourceDefinition] supportpolicies.supportgate.dev"),
        "the CRD is reported as kept: {}",
        stdout(&o)
    );
    let left = cp.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app.kubernetes.io/instance=sg",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left.trim(), "", "webhook configurations left behind");
    let o = cp.kubectl(&["get", "validatingwebhookconfiguration", fullname]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    for kind in ["deployment", "service", "role", "serviceaccount"] {
        let o = cp.kubectl(&["-n", ns, "get", kind, fullname]);
        assert!(stderr(&o).contains("NotFound"), "{kind}: {}", stderr(&o));
    }
    let o = cp.kubectl(&["get", "clusterrole", fullname]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    get_json(cp, &[CRD_NAME]);

    // The kept CRD is adopted again by a re-install of the same release.
    helm_ok(cp, &["install", "sg", CHART, "-n", ns]);
    helm_ok(cp, &["uninstall", "sg", "-n", ns, "--wait"]);
}

#[test]
fn helm_install_in_the_cert_manager_mode() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    cp.install_crd_files("tests/fixtures/crds-certmanager/");
    let ns = "sgcm-e2e";
    cp.create_namespace(ns);
    let fullname = "sgcm-supportgate";
    helm_ok(
        cp,
        &[
            "install",
            "sgcm",
            CHART,
            "-n",
            ns,
            "--set",
            "certManager.enabled=true",
            // The CRD and the default policy belong to another release in this cluster.
            "--set",
            "crds.install=false",
            "--set",
            "policy.create=false",
        ],
    );
    let vwc = get_json(cp, &["validatingwebhookconfiguration", fullname]);
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{ns}/{fullname}")
    );
    assert!(vwc["webhooks"][0]["clientConfig"]["caBundle"].is_null());
    let cert = get_json(cp, &["-n", ns, "certificate", fullname]);
    assert_eq!(cert["spec"]["secretName"], "sgcm-supportgate-tls");
    assert_eq!(
        cert["spec"]["dnsNames"],
        json!([
            "sgcm-supportgate.sgcm-e2e.svc",
            "sgcm-supportgate.sgcm-e2e.svc.cluster.local"
        ])
    );
    assert_eq!(
        cert["spec"]["issuerRef"],
        json!({"name": "sgcm-supportgate-selfsigned", "kind": "Issuer", "group": "cert-manager.io"})
    );
    let issuer = get_json(cp, &["-n", ns, "issuer", "sgcm-supportgate-selfsigned"]);
    assert_eq!(issuer["spec"], json!({"selfSigned": {}}));

    // The Secret is cert-manager's: mounted as it is, and supportgate neither writes it nor
    // patches the webhook configuration.
    let deploy = get_json(cp, &["-n", ns, "deployment", fullname]);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"],
        json!({"secretName": "sgcm-supportgate-tls", "defaultMode": 420})
    );
    let args = strs(&pod["containers"][0]["args"]);
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--self-managed-certs") || a.starts_with("--cert-secret-name")),
        "{args:?}"
    );
    // The rules follow the policies with cert-manager too.
    assert!(
        args.contains(&"--sync-webhook-rules".to_string())
            && args.contains(&"--webhook-config-name=sgcm-supportgate".to_string()),
        "{args:?}"
    );
    assert!(args.contains(&"--leader-election-lease=sgcm-supportgate".to_string()));
    let (want_cluster, want_ns) = expected_rbac(fullname, false, false);
    assert_eq!(
        rule_lines(&get_json(cp, &["clusterrole", fullname])["rules"]),
        want_cluster
    );
    assert_eq!(
        rule_lines(&get_json(cp, &["-n", ns, "role", fullname])["rules"]),
        want_ns
    );
    let who = (ns, fullname);
    assert!(!allowed(cp, who, "get", "secrets:sgcm-supportgate-tls", ns));
    assert!(!allowed(cp, who, "create", "secrets", ns));
    assert!(allowed(
        cp,
        who,
        "patch",
        "validatingwebhookconfigurations.admissionregistration.k8s.io:sgcm-supportgate",
        ""
    ));
    assert!(!allowed(
        cp,
        who,
        "patch",
        "validatingwebhookconfigurations.admissionregistration.k8s.io:someone-else",
        ""
    ));
    assert!(allowed(
        cp,
        who,
        "update",
        "leases.coordination.k8s.io:sgcm-supportgate",
        ns
    ));

    helm_ok(cp, &["uninstall", "sgcm", "-n", ns, "--wait"]);
    let left = cp.kubectl_ok(
        &[
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app.kubernetes.io/instance=sgcm",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(left.trim(), "");
    let o = cp.kubectl(&["-n", ns, "get", "certificate", fullname]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
}

// ------------------------------------------------------- the binary as the chart's account

fn konvoy_cluster(name: &str, konvoy: &str, k8s: &str) -> String {
    let minor = k8s.rsplit_once('.').map(|(m, _)| m).unwrap_or(k8s);
    let kommander = match konvoy.trim_start_matches('v').get(..3) {
        Some("1.8") => "1.4.4",
        Some("1.7") => "1.3.3",
        _ => "1.1.4",
    };
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {k8s}}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-{minor}-4.4.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-{minor}-{kommander}\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

/// Uninstalls a release when dropped, so that a failed test leaves no webhook configuration
/// (pointing at a process that is gone, with failurePolicy Fail) to block the other tests.
struct Release<'a> {
    cp: &'a ControlPlane,
    name: String,
    namespace: String,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = helm(
            self.cp,
            &["uninstall", &self.name, "-n", &self.namespace, "--wait"],
        );
    }
}

/// The RBAC proof: `supportgate run` with the chart's own arguments, authenticated as the
/// chart's ServiceAccount (a TokenRequest token in a kubeconfig), behind the chart's webhook
/// configuration re-pointed at it on 127.0.0.1. The webhook, the controller (leader election,
/// Supported conditions, PolicyReports) and, in the self-managed mode, the certificate Secret
/// and the caBundle all do their work, and the API server's audit log holds requests from that
/// account and not one 403. Removing any rule the process uses makes this fail.
#[test]
fn the_binary_as_the_charts_service_account_meets_no_403_with_self_managed_certificates() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    runtime().block_on(rbac_proof(cp, "sgsm", true));
}

#[test]
fn the_binary_as_the_charts_service_account_meets_no_403_with_cert_manager() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    runtime().block_on(rbac_proof(cp, "sgcmr", false));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn rbac_proof(cp: &ControlPlane, release: &str, self_managed: bool) {
    use support::operator::{CertFiles, Operator, wait_webhook_effective};

    ensure_project_crd(cp);
    cp.install_crd_files("tests/fixtures/crds/");
    cp.install_crd_files("tests/fixtures/crds-policyreport/");
    cp.install_crd_files("tests/fixtures/crds-certmanager/");
    // One policy of this test's own, whose status the controller must write.
    cp.kubectl_ok(&["delete", "supportpolicies", "--all"], None);
    let policy = format!("{release}-policy");
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&DEFAULT_POLICY_YAML.replace("name: default", &format!("name: {policy}"))),
    );
    let ns = format!("{release}-e2e");
    let ns = ns.as_str();
    cp.create_namespace(ns);
    let fullname = format!("{release}-supportgate");
    let fullname = fullname.as_str();
    let mut install = vec![
        "install",
        release,
        CHART,
        "-n",
        ns,
        // The CRD is this test binary's (ensure_project_crd), the embedded default the policy.
        "--set",
        "crds.install=false",
        "--set",
        "policy.create=false",
    ];
    if !self_managed {
        install.extend(["--set", "certManager.enabled=true"]);
    }
    helm_ok(cp, &install);
    let _release = Release {
        cp,
        name: release.to_string(),
        namespace: ns.to_string(),
    };

    // The container's arguments, as the kubelet would expand them; the listen addresses and the
    // certificate files are the test's.
    let deploy = get_json(cp, &["-n", ns, "deployment", fullname]);
    let own = [
        "--webhook-addr=",
        "--health-addr=",
        "--tls-cert-file=",
        "--tls-key-file=",
    ];
    let mut args: Vec<String> = strs(&deploy["spec"]["template"]["spec"]["containers"][0]["args"])
        .into_iter()
        .skip(1)
        .filter(|a| !own.iter().any(|o| a.starts_with(o)))
        .map(|a| a.replace("$(POD_NAMESPACE)", ns))
        .collect();
    let mut want = vec![
        "--log-format=json".to_string(),
        format!("--leader-election-namespace={ns}"),
        format!("--leader-election-lease={fullname}"),
    ];
    if self_managed {
        want.extend([
            "--self-managed-certs".to_string(),
            format!("--cert-secret-name={fullname}-tls"),
            format!("--webhook-config-name={fullname}"),
            format!("--service-name={fullname}"),
            format!("--namespace={ns}"),
        ]);
        // The API server reaches the process on loopback, not through the Service.
        args.push("--cert-extra-name=127.0.0.1".to_string());
    }
    // The connection limits (webhook.limits) are checked by the rendering tests; here only the
    // arguments this proof is about.
    let limit = |a: &String| {
        [
            "--max-connections=",
            "--tls-handshake-timeout-seconds=",
            "--max-handshakes-per-client=",
            "--header-read-timeout-seconds=",
            "--body-read-timeout-seconds=",
            "--idle-timeout-seconds=",
            "--h2-",
        ]
        .iter()
        .any(|p| a.starts_with(p))
    };
    let shown: Vec<String> = args.iter().filter(|a| !limit(a)).cloned().collect();
    assert_eq!(shown[..want.len()], want[..]);

    let token = cp.kubectl_ok(
        &["-n", ns, "create", "token", fullname, "--duration=1h"],
        None,
    );
    let certs = CertFiles::new();
    let kubeconfig = certs.dir.path().join("sa-kubeconfig");
    cp.token_kubeconfig(token.trim(), &kubeconfig);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut op = Operator::start_with_kubeconfig(cp, &kubeconfig, &certs, &arg_refs);
    op.wait_ready().await;

    // The chart's webhook configuration, pointed at the process on the host. Self-managed, the
    // process writes the caBundle itself; otherwise (no cert-manager here) the test does.
    let patch = if self_managed {
        json!([
            {"op": "remove", "path": "/webhooks/0/clientConfig/service"},
            {"op": "add", "path": "/webhooks/0/clientConfig/url", "value": op.url()},
        ])
    } else {
        json!([{"op": "replace", "path": "/webhooks/0/clientConfig",
                 "value": {"url": op.url(), "caBundle": base64(certs.generated.ca_pem.as_bytes())}}])
    };
    cp.kubectl_ok(
        &[
            "patch",
            "validatingwebhookconfiguration",
            fullname,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    );
    let clusters = format!("{release}-clusters");
    let clusters = clusters.as_str();
    cp.create_namespace(clusters);
    let unsupported = konvoy_cluster("old-west", "v1.5.6", "1.17.17");
    wait_webhook_effective(cp, clusters, &unsupported).await;
    if self_managed {
        let secret = get_json(cp, &["-n", ns, "secret", &format!("{fullname}-tls")]);
        let vwc = get_json(cp, &["validatingwebhookconfiguration", fullname]);
        assert_eq!(
            vwc["webhooks"][0]["clientConfig"]["caBundle"], secret["data"]["ca.crt"],
            "the caBundle is the CA of the Secret supportgate wrote"
        );
    }

    // The webhook: a supported cluster is admitted, an unsupported one refused.
    let apply = |doc: &str| cp.kubectl_in(&["-n", clusters, "apply", "-f", "-"], Some(doc));
    let o = apply(&konvoy_cluster("prod-east", "v1.8.5", "1.20.13"));
    assert!(o.status.success(), "{}\n{}", stderr(&o), op.logs());
    let o = apply(&unsupported);
    assert!(
        !o.status.success() && stderr(&o).contains("[konvoy-unsupported]"),
        "{}",
        stderr(&o)
    );
    // An Addon, whose schema has no conditions: its verdict goes to a PolicyReport.
    let o = apply(
        "apiVersion: kubeaddons.mesosphere.io/v1beta2\nkind: Addon\nmetadata:\n  name: prometheus\n  labels: {kubeaddons.mesosphere.io/name: prometheus}\n  annotations: {catalog.kubeaddons.mesosphere.io/origin-repository-version: stable-1.36-4.4.0}\nspec:\n  kubernetes: {minSupportedVersion: v1.15.6}\n  chartReference: {chart: kube-prometheus-stack, version: 12.11.3}\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // The controller (as the leader): the Supported condition on the admitted cluster, the
    // Addon's PolicyReport and the policy's status. (A missing rule shows as a timeout here; the 403s are reported
    // first, below.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let converged = loop {
        let o = cp.kubectl(&[
            "-n",
            clusters,
            "get",
            "konvoycluster",
            "prod-east",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Supported\")].status}",
        ]);
        let reports = cp.kubectl(&["-n", clusters, "get", "policyreports", "-o", "name"]);
        let status = cp.kubectl(&[
            "get",
            "supportpolicy",
            &policy,
            "-o",
            "jsonpath={.status.supported}",
        ]);
        if stdout(&o) == "True"
            && !stdout(&reports).trim().is_empty()
            && !stdout(&status).trim().is_empty()
        {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let leases = get_json(cp, &["-n", ns, "leases"]);

    // The audit log: what the account did, and no request it was refused.
    let user = format!("system:serviceaccount:{ns}:{fullname}");
    let mut done = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for line in cp.audit_log().lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"] != user.as_str() {
            continue;
        }
        let r = &event["objectRef"];
        let what = format!(
            "{} {}{}{}",
            event["verb"].as_str().unwrap_or(""),
            r["resource"]
                .as_str()
                .unwrap_or(event["requestURI"].as_str().unwrap_or("")),
            r["subresource"]
                .as_str()
                .map(|s| format!("/{s}"))
                .unwrap_or_default(),
            r["apiGroup"]
                .as_str()
                .map(|g| format!(".{g}"))
                .unwrap_or_default(),
        );
        if event["responseStatus"]["code"] == 403 {
            forbidden.insert(format!("{what} ({})", event["requestURI"]));
        }
        done.insert(what);
    }
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused the process:\n{}\nlog:\n{}",
        forbidden.into_iter().collect::<Vec<_>>().join("\n"),
        op.logs()
    );
    assert!(
        converged,
        "no Supported condition on prod-east, PolicyReport for the Addon or status of {policy} after 60 s:\n{}",
        op.logs()
    );
    assert!(
        leases["items"][0]["spec"]["holderIdentity"].is_string(),
        "{leases}"
    );
    let mut needed = vec![
        "watch supportpolicies.supportgate.dev",
        "patch supportpolicies/status.supportgate.dev",
        "watch customresourcedefinitions.apiextensions.k8s.io",
        "watch konvoyclusters.kommander.mesosphere.io",
        "patch konvoyclusters/status.kommander.mesosphere.io",
        "watch addons.kubeaddons.mesosphere.io",
        "patch policyreports.wgpolicyk8s.io",
        "create leases.coordination.k8s.io",
        // The rules follow the policies: the configuration is watched by name in both modes.
        "watch validatingwebhookconfigurations.admissionregistration.k8s.io",
    ];
    if self_managed {
        needed.extend([
            "create secrets",
            "watch secrets",
            "update validatingwebhookconfigurations.admissionregistration.k8s.io",
        ]);
    }
    for needed in needed {
        assert!(
            done.contains(needed),
            "no {needed:?} by {user} in the audit log: {done:#?}"
        );
    }
    drop(op);
}

fn base64(bytes: &[u8]) -> String {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------- drift checks

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
    let cp_r = |from: &str| {
        let o = Command::new("cp")
            .args(["-R", "--parents", from])
            .arg(root)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(o.status.success(), "cp {from}: {}", stderr(&o));
    };
    for p in [
        "hack/render-manifests.sh",
        "crds",
        "examples/policies",
        "charts",
        "manifests",
    ] {
        cp_r(p);
    }
    let check = |root: &Path| {
        Command::new(root.join("hack/render-manifests.sh"))
            .arg("--check")
            .env("HELM", cp.tool("helm"))
            .current_dir(root)
            .output()
            .unwrap()
    };
    let o = check(root);
    assert!(o.status.success(), "the copy starts clean: {}", stderr(&o));

    // A new field description in the CRD (as `make crds` would write after an API change).
    let crd = root.join("crds/supportgate.dev_supportpolicies.yaml");
    let text = std::fs::read_to_string(&crd).unwrap();
    let changed = text.replacen(
        "description: The minors inside the support window",
        "description: The minor versions inside the support window",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&crd, changed).unwrap();
    let o = check(root);
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

    // Re-rendering fixes it; then a changed chart default makes manifests/ stale alone.
    let o = Command::new(root.join("hack/render-manifests.sh"))
        .env("HELM", cp.tool("helm"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(check(root).status.success());
    let values = root.join("charts/supportgate/values.yaml");
    let text = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text.replacen("replicaCount: 2", "replicaCount: 3", 1),
    )
    .unwrap();
    let o = check(root);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("manifests/supportgate.yaml is out of date"),
        "{err}"
    );
    assert!(!err.contains("templates/crds"), "{err}");
}

// ------------------------------------------------------------------------------- Dockerfile

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).unwrap()
}

fn hadolint(args: &[&Path]) -> Output {
    Command::new(repo().join("hack/hadolint.sh"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run hack/hadolint.sh")
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let o = hadolint(&[Path::new("Dockerfile")]);
    assert!(
        o.status.success(),
        "hadolint:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    // The linter does lint: a floating tag and a root user are reported.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nUSER root\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    let o = hadolint(&[&bad]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("DL3007") && out.contains("DL3002"), "{out}");
}

#[test]
fn the_image_is_built_release_locked_and_runs_only_the_binary_as_non_root() {
    let text = dockerfile();
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(
        froms,
        [
            "FROM rust:1-bookworm AS build",
            "FROM gcr.io/distroless/cc-debian12:nonroot"
        ]
    );
    assert!(text.contains("cargo build --release --locked"), "{text}");
    let final_stage: Vec<&str> = instructions
        .iter()
        .copied()
        .skip_while(|l| !l.starts_with("FROM gcr.io/distroless"))
        .collect();
    let copies: Vec<&str> = final_stage
        .iter()
        .copied()
        .filter(|l| l.starts_with("COPY") || l.starts_with("ADD"))
        .collect();
    assert_eq!(copies, ["COPY --from=build /out/supportgate /supportgate"]);
    assert!(final_stage.contains(&"USER 65532:65532"), "{final_stage:?}");
    assert!(
        final_stage.contains(&"ENTRYPOINT [\"/supportgate\"]"),
        "{final_stage:?}"
    );
    assert!(
        !final_stage.iter().any(|l| l.starts_with("RUN")),
        "distroless has no shell: {final_stage:?}"
    );
}

/// `.dockerignore` excludes everything and lets the build's inputs back in; every file the
/// release build reads must be among them (the manifest targets, include_str! sources).
#[test]
fn the_docker_build_context_holds_everything_the_build_reads() {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.first(), Some(&"*"), "exclude everything first");
    let allowed: Vec<String> = rules[1..]
        .iter()
        .map(|r| {
            r.strip_prefix('!')
                .unwrap_or_else(|| panic!("only !PATH lines after '*': {r}"))
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    let admitted = |path: &str| {
        allowed
            .iter()
            .any(|a| path == a || path.starts_with(&format!("{a}/")))
    };
    for needed in ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"] {
        assert!(admitted(needed), "{needed} is not in the build context");
    }
    assert!(
        !repo().join("build.rs").exists() || admitted("build.rs"),
        "build.rs is not in the build context"
    );
    // Targets declared in Cargo.toml must exist for any cargo build.
    let manifest: toml_lite::Table =
        toml_lite::parse(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap());
    for path in manifest.target_paths() {
        assert!(
            admitted(&path),
            "{path} (a Cargo.toml target) is not in the build context"
        );
    }
    // Every file the crate includes at compile time.
    let mut stack = vec![repo().join("src")];
    let mut included = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for macro_ in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in source.match_indices(macro_) {
                    let rest = &source[at + macro_.len()..];
                    let rel = &rest[..rest.find('"').unwrap()];
                    let file = path.parent().unwrap().join(rel);
                    let file = file
                        .canonicalize()
                        .unwrap_or_else(|e| panic!("{} includes {rel}: {e}", path.display()));
                    let inside = file
                        .strip_prefix(repo().canonicalize().unwrap())
                        .expect("inside the repository")
                        .to_string_lossy()
                        .into_owned();
                    assert!(
                        admitted(&inside),
                        "{} includes {inside}, which .dockerignore leaves out",
                        path.display()
                    );
                    included += 1;
                }
            }
        }
    }
    assert!(
        included >= 1,
        "the default policy is included from examples/"
    );
}

/// Just enough of Cargo.toml to find the paths of its declared targets.
mod toml_lite {
    pub struct Table {
        sections: Vec<(String, Vec<(String, String)>)>,
    }

    pub fn parse(text: &str) -> Table {
        let mut sections = vec![(String::new(), vec![])];
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                sections.push((line.trim_matches(['[', ']']).to_string(), vec![]));
            } else if let Some((k, v)) = line.split_once('=') {
                sections
                    .last_mut()
                    .unwrap()
                    .1
                    .push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
            }
        }
        Table { sections }
    }

    impl Table {
        /// `path` of [lib]/[[bin]]/[[bench]]/[[test]]/[[example]], or the default path of a
        /// bench or test declared by name only.
        pub fn target_paths(&self) -> Vec<String> {
            let mut out = vec![];
            for (name, kv) in &self.sections {
                let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                let dir = match name.as_str() {
                    "lib" | "bin" => "src",
                    "bench" => "benches",
                    "test" => "tests",
                    "example" => "examples",
                    "workspace" => panic!("a [workspace]: check its members against .dockerignore"),
                    _ => continue,
                };
                match (get("path"), get("name")) {
                    (Some(p), _) => out.push(p),
                    (None, Some(n)) if dir != "src" => out.push(format!("{dir}/{n}.rs")),
                    _ => {}
                }
            }
            out
        }
    }
}

// ------------------------------------------------------------ upgrades keep what users own

/// A KonvoyCluster on a Konvoy release the test chooses, paired with its Kommander.
fn konvoy_cluster_paired(name: &str, konvoy: &str, k8s: &str, kommander: &str) -> String {
    let minor = k8s.rsplit_once('.').map(|(m, _)| m).unwrap_or(k8s);
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}}}\nspec:\n  provisioner: {{provider: aws, version: {konvoy}}}\n  cluster:\n    kubernetes: {{version: {k8s}}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-{minor}-4.4.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-{minor}-{kommander}\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

/// Konvoy 1.9 as a platform team adds it to `default` before supportgate knows it.
const KONVOY_1_9: &str = r#"{"version": "1.9", "releaseDate": "2021-09-01", "kubernetes": {"min": "1.19.x", "max": "1.21.x", "default": "1.21.4"}, "kommander": "1.5"}"#;

/// Deletes a cluster-scoped object when dropped (a webhook configuration pointing at a process
/// that is gone, with failurePolicy Fail, would block the other tests).
struct Deleted<'a> {
    cp: &'a ControlPlane,
    what: Vec<String>,
}

impl Drop for Deleted<'_> {
    fn drop(&mut self) {
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        args.extend(self.what.iter().map(String::as_str));
        let _ = self.cp.kubectl(&args);
    }
}

/// `kubectl replace` of the `default` SupportPolicy with its product list changed by `edit`
/// (as a platform team does it); returns the new spec.
fn replace_default(cp: &ControlPlane, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    let mut sp = get_json(cp, &["supportpolicy", "default"]);
    let obj = sp.as_object_mut().unwrap();
    obj.remove("status");
    let product = obj["spec"]["product"].as_array_mut().unwrap();
    edit(product);
    let out = cp.kubectl_ok(&["replace", "-f", "-", "-o", "json"], Some(&sp.to_string()));
    serde_json::from_str::<Value>(&out).unwrap()["spec"].clone()
}

/// What must hold after every helm operation: `default` is the very object the user edited
/// (same uid, generation and spec), 1.9 clusters are admitted and a 1.5 one still refused (so
/// the webhook is in the path), and the 1.9 cluster stays Supported.
fn assert_users_policy_holds(cp: &ControlPlane, step: &str, want: &Value, clusters: &str) {
    let sp = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(
        sp["metadata"]["uid"], want["uid"],
        "{step}: default was re-created"
    );
    assert_eq!(
        sp["metadata"]["generation"], want["generation"],
        "{step}: default's spec was written"
    );
    assert_eq!(sp["spec"], want["spec"], "{step}: the user's edit is gone");
    let dry = |doc: &str| {
        cp.kubectl_in(
            &["-n", clusters, "apply", "--dry-run=server", "-f", "-"],
            Some(doc),
        )
    };
    let o = dry(&konvoy_cluster_paired(
        "new-19", "v1.9.1", "1.21.4", "1.5.0",
    ));
    assert!(
        o.status.success(),
        "{step}: a 1.9 cluster refused: {}",
        stderr(&o)
    );
    let o = dry(&konvoy_cluster("old-15", "v1.5.6", "1.17.17"));
    assert!(
        stderr(&o).contains("[konvoy-unsupported]"),
        "{step}: a 1.5 cluster was not refused: {}",
        stderr(&o)
    );
    let supported = cp.kubectl_ok(
        &[
            "-n",
            clusters,
            "get",
            "konvoycluster",
            "edge-19",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Supported\")].status}",
        ],
        None,
    );
    assert_eq!(supported, "True", "{step}: edge-19 lost its support");
}

/// The `NewerVendorPolicy` condition of `default`: (status, message).
fn vendor_condition(cp: &ControlPlane) -> (String, String) {
    let sp = get_json(cp, &["supportpolicy", "default"]);
    let c = sp["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "NewerVendorPolicy");
    c.map(|c| {
        (
            c["status"].as_str().unwrap_or("").to_string(),
            c["message"].as_str().unwrap_or("").to_string(),
        )
    })
    .unwrap_or_default()
}

async fn wait_vendor_condition(cp: &ControlPlane, status: &str, op: &support::operator::Operator) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while vendor_condition(cp).0 != status {
        assert!(
            std::time::Instant::now() < deadline,
            "NewerVendorPolicy never became {status}: {:?}\n{}",
            vendor_condition(cp),
            op.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Issue 17: install, edit `default` (add Konvoy 1.9), `helm upgrade` with a changed value,
/// `helm rollback`, `helm upgrade` again, uninstall and install again: the edit survives each
/// time and a 1.9 cluster stays admitted, with `supportgate run` (as the chart's
/// ServiceAccount) answering admission behind a webhook configuration of the chart's rules
/// (`supportgate webhook-config`) on loopback. Before that, a `default` that an older
/// supportgate seeded (no Konvoy 1.8) raises NewerVendorPolicy plus an event, and nothing
/// changes it. Last, a chart whose CRD gained a field upgrades the CRD and no object loses one.
#[test]
fn upgrades_rollbacks_and_reinstalls_keep_the_users_default_policy() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    runtime().block_on(users_policy_proof(cp));
}

async fn users_policy_proof(cp: &ControlPlane) {
    use support::operator::{CertFiles, Operator, wait_webhook_effective};

    // A fresh cluster: the chart installs the CRD, and supportgate creates `default`.
    delete_project_crd(cp);
    cp.install_crd_files("tests/fixtures/crds/");
    let (release, ns, fullname) = ("sgup", "sgup-e2e", "sgup-supportgate");
    cp.create_namespace(ns);
    // The chart's own webhook configuration points at a Service with no pods here: Ignore, so
    // that the test's configuration (below) alone decides.
    let out = helm_ok(
        cp,
        &[
            "install",
            release,
            CHART,
            "-n",
            ns,
            "--set",
            "webhook.failurePolicy=Ignore",
        ],
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    let _release = Release {
        cp,
        name: release.into(),
        namespace: ns.into(),
    };
    let o = cp.kubectl(&["get", "supportpolicy", "default"]);
    assert!(
        stderr(&o).contains("NotFound"),
        "helm creates no policy: {}",
        stderr(&o)
    );

    // supportgate run as the chart's ServiceAccount (whose RBAC must allow the create), behind a
    // webhook configuration of its own.
    let token = cp.kubectl_ok(
        &["-n", ns, "create", "token", fullname, "--duration=1h"],
        None,
    );
    let certs = CertFiles::new();
    let kubeconfig = certs.dir.path().join("sa-kubeconfig");
    cp.token_kubeconfig(token.trim(), &kubeconfig);
    let lease = [
        format!("--leader-election-namespace={ns}"),
        format!("--leader-election-lease={fullname}"),
        "--create-default-policy".to_string(),
    ];
    let lease: Vec<&str> = lease.iter().map(String::as_str).collect();
    let mut op = Operator::start_with_kubeconfig(cp, &kubeconfig, &certs, &lease);
    op.wait_ready().await;
    let stored: SupportPolicy = support::eventually(
        std::time::Duration::from_secs(30),
        "supportgate to create the default SupportPolicy",
        || async {
            let o = cp.kubectl(&["get", "supportpolicy", "default", "-o", "json"]);
            o.status
                .success()
                .then(|| serde_json::from_slice(&o.stdout).unwrap())
        },
    )
    .await;
    let embedded: SupportPolicy = serde_norway::from_str(DEFAULT_POLICY_YAML).unwrap();
    assert_eq!(
        stored.spec, embedded.spec,
        "supportgate creates the embedded default"
    );
    let created_by = stored.metadata.annotations.clone().unwrap_or_default();
    assert!(
        created_by["supportgate.dev/created-by"].contains("had no SupportPolicy"),
        "{created_by:?}\n{}",
        op.logs()
    );
    let ca = certs.dir.path().join("ca.crt");
    std::fs::write(&ca, &certs.generated.ca_pem).unwrap();
    let vwc = stdout(
        &Command::new(env!("CARGO_BIN_EXE_supportgate"))
            .args(["webhook-config", "--name=sgup-direct", "--url", &op.url()])
            .arg("--ca-file")
            .arg(&ca)
            .output()
            .unwrap(),
    );
    let _vwc = Deleted {
        cp,
        what: vec!["validatingwebhookconfiguration/sgup-direct".into()],
    };
    cp.kubectl_ok(&["create", "-f", "-"], Some(&vwc));
    let clusters = "sgup-clusters";
    cp.create_namespace(clusters);
    wait_webhook_effective(cp, clusters, &konvoy_cluster("old-15", "v1.5.6", "1.17.17")).await;

    vendor_update_is_reported_not_applied(cp, &op).await;
    let want = add_konvoy_1_9(cp, clusters, &op).await;
    helm_history_keeps_the_edit(cp, release, ns, fullname, clusters, &want);
    drop(_vwc);
    drop(op);
    crd_upgrade_keeps_every_field(cp, release, ns, &want);
    a_deleted_default_stays_deleted(cp, ns, fullname).await;
    drop(_release);
    delete_project_crd(cp);
}

/// With another policy in place, a start with --create-default-policy leaves a deleted
/// `default` deleted: only a cluster with no SupportPolicy at all gets one.
async fn a_deleted_default_stays_deleted(cp: &ControlPlane, ns: &str, fullname: &str) {
    use support::operator::{CertFiles, Operator};

    let other = DEFAULT_POLICY_YAML.replace("\n  name: default\n", "\n  name: sgup-other\n");
    assert_ne!(other, DEFAULT_POLICY_YAML);
    cp.kubectl_ok(&["create", "-f", "-"], Some(&other));
    cp.kubectl_ok(&["delete", "supportpolicy", "default"], None);
    let token = cp.kubectl_ok(
        &["-n", ns, "create", "token", fullname, "--duration=1h"],
        None,
    );
    let certs = CertFiles::new();
    let kubeconfig = certs.dir.path().join("sa-kubeconfig");
    cp.token_kubeconfig(token.trim(), &kubeconfig);
    let args = [
        format!("--leader-election-namespace={ns}"),
        format!("--leader-election-lease={fullname}"),
        "--create-default-policy".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut op = Operator::start_with_kubeconfig(cp, &kubeconfig, &certs, &args);
    // Ready means the policies were listed; a create would follow within milliseconds.
    op.wait_ready().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let o = cp.kubectl(&["get", "supportpolicy", "default"]);
    assert!(
        stderr(&o).contains("NotFound"),
        "default was re-created next to another policy: {}\n{}",
        stderr(&o),
        op.logs()
    );
    assert!(
        op.logs().contains("SupportPolicies synced"),
        "{}",
        op.logs()
    );
    assert!(
        !op.logs().contains('\u{1b}'),
        "text logs written to a file carry terminal colour codes: {}",
        op.logs()
    );
    drop(op);
    cp.kubectl_ok(&["delete", "supportpolicy", "sgup-other"], None);
}

/// `supportgate default-policy --diff` against the test cluster: (exit code, stdout).
fn diff_with_cluster(cp: &ControlPlane) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_supportgate"))
        .args(["default-policy", "--diff"])
        .env("KUBECONFIG", &cp.kubeconfig)
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), stdout(&o) + &stderr(&o))
}

/// A `default` an older supportgate seeded (it did not know Konvoy 1.8 yet): the running one
/// says so in a condition and an event, `--diff` shows the entry, and nobody writes the spec.
async fn vendor_update_is_reported_not_applied(
    cp: &ControlPlane,
    op: &support::operator::Operator,
) {
    wait_vendor_condition(cp, "False", op).await;
    let older = replace_default(cp, |p| p.retain(|r| r["version"] != "1.8"));
    let generation = get_json(cp, &["supportpolicy", "default"])["metadata"]["generation"].clone();
    wait_vendor_condition(cp, "True", op).await;
    let (_, message) = vendor_condition(cp);
    assert!(
        message.contains("knows Konvoy 1.8, which this policy lacks"),
        "{message}"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let events = get_json(cp, &["-n", "default", "events"]);
        let raised = events["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "NewerVendorPolicy"
                && e["involvedObject"]["kind"] == "SupportPolicy"
                && e["involvedObject"]["name"] == "default"
                && e["message"].as_str().unwrap_or("").contains("Konvoy 1.8")
        });
        if raised {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no NewerVendorPolicy event: {events}\n{}",
            op.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let (code, text) = diff_with_cluster(cp);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("--- supportpolicy/default (cluster)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "+ product 1.8: only in the vendor's policy; the entry to add:\n+   - version: '1.8'\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("The embedded default knows 1.8, which this policy lacks."),
        "{text}"
    );

    // Changes nothing: the spec and its generation are the user's.
    let now = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(now["spec"], older, "supportgate wrote the policy's spec");
    assert_eq!(now["metadata"]["generation"], generation);
}

/// The team takes 1.8 from the vendor and adds Konvoy 1.9 themselves; a 1.9 cluster is then
/// admitted and Supported. Returns what must survive: uid, generation and spec.
async fn add_konvoy_1_9(
    cp: &ControlPlane,
    clusters: &str,
    op: &support::operator::Operator,
) -> Value {
    let embedded: Value = serde_norway::from_str(DEFAULT_POLICY_YAML).unwrap();
    replace_default(cp, |p| {
        *p = embedded["spec"]["product"].as_array().unwrap().clone();
        p.insert(0, serde_json::from_str(KONVOY_1_9).unwrap());
    });
    wait_vendor_condition(cp, "False", op).await;
    let (code, text) = diff_with_cluster(cp);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("- product 1.9: only in this policy (a local addition)\n"),
        "{text}"
    );
    assert!(
        text.contains("knows no release this policy lacks"),
        "{text}"
    );

    let edge = konvoy_cluster_paired("edge-19", "v1.9.0", "1.21.4", "1.5.0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = cp.kubectl_in(&["-n", clusters, "apply", "-f", "-"], Some(&edge));
        if o.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "1.9 never admitted: {}\n{}",
            stderr(&o),
            op.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let supported = || {
        cp.kubectl_ok(
            &[
                "-n",
                clusters,
                "get",
                "konvoycluster",
                "edge-19",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Supported\")].status}",
            ],
            None,
        )
    };
    while supported() != "True" {
        assert!(
            std::time::Instant::now() < deadline,
            "edge-19 never Supported:\n{}",
            op.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let sp = get_json(cp, &["supportpolicy", "default"]);
    json!({"uid": sp["metadata"]["uid"], "generation": sp["metadata"]["generation"], "spec": sp["spec"]})
}

/// The env value of RUST_LOG and the replicas of the chart's Deployment.
fn deployment_settings(cp: &ControlPlane, ns: &str, fullname: &str) -> (String, i64) {
    let d = get_json(cp, &["-n", ns, "deployment", fullname]);
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "RUST_LOG")
        .and_then(|e| e["value"].as_str())
        .unwrap_or("")
        .to_string();
    (env, d["spec"]["replicas"].as_i64().unwrap_or(-1))
}

/// upgrade (a changed value), rollback, upgrade again: each takes effect, the edit stays.
fn helm_history_keeps_the_edit(
    cp: &ControlPlane,
    release: &str,
    ns: &str,
    fullname: &str,
    clusters: &str,
    want: &Value,
) {
    assert_users_policy_holds(cp, "after the edit", want, clusters);

    let out = helm_ok(
        cp,
        &[
            "upgrade",
            release,
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "logLevel=debug",
        ],
    );
    assert!(out.contains("REVISION: 2"), "{out}");
    assert_eq!(deployment_settings(cp, ns, fullname).0, "debug");
    assert_users_policy_holds(cp, "helm upgrade --set logLevel=debug", want, clusters);

    let out = helm_ok(cp, &["rollback", release, "1", "-n", ns]);
    assert!(out.contains("Rollback was a success"), "{out}");
    assert_eq!(deployment_settings(cp, ns, fullname).0, "info");
    assert_users_policy_holds(cp, "helm rollback 1", want, clusters);

    let out = helm_ok(
        cp,
        &[
            "upgrade",
            release,
            CHART,
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "replicaCount=3",
        ],
    );
    assert!(out.contains("REVISION: 4"), "{out}");
    assert_eq!(
        deployment_settings(cp, ns, fullname),
        ("info".to_string(), 3)
    );
    assert_users_policy_holds(cp, "helm upgrade --set replicaCount=3", want, clusters);
}

/// Every SupportPolicy's spec by name.
fn policy_specs(cp: &ControlPlane) -> std::collections::BTreeMap<String, Value> {
    get_json(cp, &["supportpolicies"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["spec"].clone(),
            )
        })
        .collect()
}

/// A chart whose CRD gained an optional field (`spec.contact`): `helm upgrade` applies it, no
/// object loses a field, and the new field is stored. Then uninstall and install again: the
/// kept `default` is not re-created.
fn crd_upgrade_keeps_every_field(cp: &ControlPlane, release: &str, ns: &str, want: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("cp")
        .args(["-R", CHART])
        .arg(dir.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let chart = dir.path().join("supportgate");
    let crd = chart.join("templates/crds/supportgate.dev_supportpolicies.yaml");
    let text = std::fs::read_to_string(&crd).unwrap();
    let field = "              contact:\n                description: Who answers for this policy.\n                type: string\n";
    let changed = text.replacen(
        "              alwaysWritePolicyReports:\n",
        &format!("{field}              alwaysWritePolicyReports:\n"),
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&crd, changed).unwrap();

    let probe = DEFAULT_POLICY_YAML
        .replace("name: default", "name: sgup-crd-probe")
        .replace(
            "  productName: Konvoy\n",
            "  productName: Konvoy\n  contact: platform-team\n",
        );
    let o = cp.kubectl_in(&["create", "-f", "-"], Some(&probe));
    assert!(
        stderr(&o).contains("unknown field \"spec.contact\""),
        "before the upgrade: {}",
        stderr(&o)
    );

    let before = policy_specs(cp);
    let out = helm_ok(
        cp,
        &[
            "upgrade",
            release,
            chart.to_str().unwrap(),
            "-n",
            ns,
            "--reuse-values",
        ],
    );
    assert!(out.contains("REVISION: 5"), "{out}");
    let schema = get_json(cp, &[CRD_NAME]);
    assert_eq!(
        schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["contact"]["type"],
        "string",
        "the CRD was not upgraded"
    );
    assert_eq!(
        policy_specs(cp),
        before,
        "a policy lost a field in the CRD upgrade"
    );
    let sp = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(
        (&sp["metadata"]["uid"], &sp["spec"]),
        (&want["uid"], &want["spec"])
    );
    cp.kubectl_ok(&["create", "-f", "-"], Some(&probe));
    let stored = get_json(cp, &["supportpolicy", "sgup-crd-probe"]);
    assert_eq!(stored["spec"]["contact"], "platform-team");
    cp.kubectl_ok(&["delete", "supportpolicy", "sgup-crd-probe"], None);

    // Uninstall keeps `default`; a new install finds it and leaves it alone.
    helm_ok(cp, &["uninstall", release, "-n", ns, "--wait"]);
    helm_ok(cp, &["install", release, CHART, "-n", ns]);
    let sp = get_json(cp, &["supportpolicy", "default"]);
    assert_eq!(
        sp["metadata"]["uid"], want["uid"],
        "helm install re-created default"
    );
    assert_eq!(sp["spec"], want["spec"], "helm install overwrote default");
}
