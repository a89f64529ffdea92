//! Smoke tests: the control plane is a real kube-apiserver with RBAC on, and the SupportPolicy
//! CRD works there the way users will meet it.

mod support;

use kube::Api;
use support::{ControlPlane, stderr, stdout};
use supportgate::api::SupportPolicy;
use supportgate::engine::policy::{DEFAULT_POLICY_YAML, Policy};

#[tokio::test]
async fn apiserver_reports_the_pinned_version() {
    let cp = ControlPlane::shared();
    let info = cp
        .client()
        .await
        .apiserver_version()
        .await
        .expect("/version");
    assert_eq!(info.git_version, "v1.36.3");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
}

#[tokio::test]
async fn the_default_policy_round_trips_through_the_crd() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.kubectl_ok(&["apply", "-f", "examples/policies/default.yaml"], None);

    let api: Api<SupportPolicy> = Api::all(cp.client().await);
    let stored = api
        .get("default")
        .await
        .expect("get the default SupportPolicy");
    let embedded: SupportPolicy = serde_norway::from_str(DEFAULT_POLICY_YAML).unwrap();
    assert_eq!(
        stored.spec, embedded.spec,
        "the API server keeps every field (no pruning, no defaults lost)"
    );
    let compiled = Policy::compile(&stored).expect("the stored policy compiles");
    assert_eq!(compiled.releases().len(), 5);

    let out = cp.kubectl_ok(&["get", "supportpolicies"], None);
    assert!(
        out.contains("PRODUCT") && out.contains("LATEST") && out.contains("SUPPORTED"),
        "printer columns: {out}"
    );
    assert!(out.contains("default") && out.contains("Konvoy"), "{out}");
}

#[tokio::test]
async fn kubectl_explain_teaches_the_model() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    // The CRD's OpenAPI is published a moment after it is established.
    let out = support::eventually(
        std::time::Duration::from_secs(60),
        "the CRD's OpenAPI to be published",
        || async {
            let o = cp.kubectl(&["explain", "supportpolicy.spec"]);
            o.status.success().then(|| stdout(&o))
        },
    )
    .await;
    for needle in [
        "supportWindow",
        "How many of the newest released minors",
        "productionSelector",
        "targets",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let out = cp.kubectl_ok(
        &["explain", "supportpolicy.spec.product.kubernetes.min"],
        None,
    );
    assert!(out.contains("Lowest supported Kubernetes version"), "{out}");
    let out = cp.kubectl_ok(&["explain", "supportpolicy.spec.upgrades"], None);
    for needle in [
        "Which version changes an UPDATE may make",
        "maxMinorStep",
        "allowDowngrade",
        "upgrade-skips-minor",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

fn policy_with(replace: &str, with: &str) -> String {
    let text = DEFAULT_POLICY_YAML
        .replace("name: default", "name: broken")
        .replace(replace, with);
    assert_ne!(
        text,
        DEFAULT_POLICY_YAML.replace("name: default", "name: broken"),
        "the replacement applied"
    );
    text
}

#[tokio::test]
async fn the_schema_catches_mistakes_early() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    let cases = [
        (
            policy_with(
                "{min: 1.18.x, max: 1.20.x, default: 1.20.6}",
                "{min: 1.21.x, max: 1.20.x}",
            ),
            "kubernetes.min must not be above kubernetes.max",
        ),
        (
            policy_with("version: \"1.7\"", "version: \"1.8\""),
            "Duplicate value",
        ),
        (
            policy_with("version: \"1.7\"", "version: \"seven\""),
            "should match",
        ),
        (
            policy_with("supportWindow: 3", "supportWindow: 0"),
            "should be greater than or equal to 1",
        ),
        (
            policy_with("releaseDate: \"2021-05-05\"", "releaseDate: \"May 5th\""),
            "releaseDate",
        ),
        (
            policy_with("maxMinorStep: 1", "maxMinorStep: 0"),
            "spec.upgrades.maxMinorStep: Invalid value: 0: spec.upgrades.maxMinorStep in body should be greater than or equal to 1",
        ),
        (
            policy_with("latestPatch: 1.7.5", "latestPatch: \"1.7\""),
            "latestPatch",
        ),
    ];
    for (doc, want) in cases {
        let o = cp.kubectl_in(&["apply", "--dry-run=server", "-f", "-"], Some(&doc));
        assert!(
            !o.status.success(),
            "accepted a policy that should fail with {want:?}"
        );
        let err = stderr(&o);
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
    }
    // The valid default passes the same server-side validation.
    let o = cp.kubectl_in(
        &["apply", "--dry-run=server", "-f", "-"],
        Some(DEFAULT_POLICY_YAML),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn unknown_fields_are_refused_by_the_api_server() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    let doc = policy_with("supportWindow: 3", "supportWindow: 3\n  suportWindow: 4");
    let o = cp.kubectl_in(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        Some(&doc),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown field \"spec.suportWindow\""),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn rbac_is_on_a_service_account_without_rules_is_refused() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.create_namespace("rbac-smoke");
    cp.kubectl_ok(
        &["-n", "rbac-smoke", "create", "serviceaccount", "nobody"],
        None,
    );
    let token = cp.kubectl_ok(
        &[
            "-n",
            "rbac-smoke",
            "create",
            "token",
            "nobody",
            "--duration=10m",
        ],
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    cp.token_kubeconfig(token.trim(), &kc);

    // Through kubectl: 403 with the service account named.
    let o = cp.kubectl_as(&kc, &["get", "supportpolicies"], None);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("Forbidden") && err.contains("system:serviceaccount:rbac-smoke:nobody"),
        "{err}"
    );

    // Through kube::Api: a 403 status, not a connection or authentication failure.
    let api: Api<SupportPolicy> = Api::all(support::client_for(&kc).await);
    match api.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
    // And the token itself is valid: the same identity may do what it was granted.
    let o = cp.kubectl_as(
        &kc,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        None,
    );
    assert_eq!(
        stdout(&o),
        "system:serviceaccount:rbac-smoke:nobody",
        "{}",
        stderr(&o)
    );

    // Grant exactly list on supportpolicies, and the same call succeeds.
    cp.kubectl_ok(
        &[
            "create",
            "clusterrole",
            "sp-reader",
            "--verb=list",
            "--resource=supportpolicies.supportgate.dev",
        ],
        None,
    );
    cp.kubectl_ok(
        &[
            "create",
            "clusterrolebinding",
            "sp-reader",
            "--clusterrole=sp-reader",
            "--serviceaccount=rbac-smoke:nobody",
        ],
        None,
    );
    support::eventually(
        std::time::Duration::from_secs(10),
        "RBAC grant to take effect",
        || {
            let api = api.clone();
            async move { api.list(&Default::default()).await.ok() }
        },
    )
    .await;
}

/// Issue #18, reproduction 1 against the real API server: a target whose `fields` end up empty
/// (what pruning makes of a misspelled key) or name nothing a rule reads on its own is refused,
/// so the policy can never silently stop checking.
#[tokio::test]
async fn the_schema_refuses_a_target_that_checks_nothing() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    let name = "targets-typo";
    let doc = format!(
        "{}  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields:\n      productVersion: $.spec.provisioner.version\n",
        DEFAULT_POLICY_YAML.replace("name: default", &format!("name: {name}"))
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&doc));
    let patches = [
        (
            r#"[{"op":"replace","path":"/spec/targets/0/fields","value":{}}]"#,
            "should have at least 1 properties",
        ),
        (
            r#"[{"op":"replace","path":"/spec/targets/0/fields","value":{"productVersoin":"$.spec.provisioner.version"}}]"#,
            "",
        ),
        (
            r#"[{"op":"replace","path":"/spec/targets/0/fields","value":{"kubernetesVersion":"$.spec.cluster.kubernetes.version"}}]"#,
            "a target must name productVersion",
        ),
        (
            r#"[{"op":"replace","path":"/spec/targets/0/fields/productVersion","value":""}]"#,
            "should be at least 1 chars long",
        ),
    ];
    for (patch, want) in patches {
        let o = cp.kubectl(&["patch", "supportpolicy", name, "--type=json", "-p", patch]);
        let err = stderr(&o);
        assert!(!o.status.success(), "accepted {patch}: {}", stdout(&o));
        assert!(
            err.contains(want),
            "expected {want:?} for {patch} in:\n{err}"
        );
    }
    let stored = cp.kubectl_ok(
        &[
            "get",
            "supportpolicy",
            name,
            "-o",
            "jsonpath={.spec.targets[0].fields.productVersion}",
        ],
        None,
    );
    assert_eq!(stored.trim(), "$.spec.provisioner.version", "unchanged");
    cp.kubectl_ok(&["delete", "supportpolicy", name, "--wait=true"], None);
}

/// A webhook behind a Service is reached at an endpoint's address only (the control plane runs
/// with endpoint routing). This control plane has no pods, so such a call must fail at once with
/// "no endpoints", never by dialling the Service's ClusterIP from the machine's network stack,
/// which would send a packet off the machine.
#[tokio::test]
async fn a_service_backed_webhook_is_never_dialled_at_its_cluster_ip() {
    let cp = ControlPlane::shared();
    let ns = "svc-routing";
    cp.create_namespace(ns);
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: nowhere, namespace: {ns}}}\n\
             spec: {{ports: [{{port: 443, targetPort: 8443}}]}}\n"
        )),
    );
    let vwc = "svc-routing.supportgate.dev";
    cp.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {vwc}}}
webhooks:
- name: {vwc}
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}
  rules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}}]
  clientConfig: {{service: {{name: nowhere, namespace: {ns}, port: 443}}}}
"#
        )),
    );
    let cluster_ip = cp.kubectl_ok(
        &[
            "-n",
            ns,
            "get",
            "service",
            "nowhere",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
        None,
    );
    // The configuration takes a moment to reach the admission chain; until then creates pass.
    let mut last = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let name = format!("probe-{}", deadline.elapsed().as_nanos());
        let o = cp.kubectl_in(
            &["-n", ns, "create", "configmap", &name, "--from-literal=a=b"],
            None,
        );
        last = String::from_utf8_lossy(&o.stderr).into_owned();
        if !o.status.success() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    cp.kubectl_ok(&["delete", "validatingwebhookconfiguration", vwc], None);
    assert!(
        last.contains("failed calling webhook") && last.contains("endpoints"),
        "the call must fail for want of endpoints: {last}"
    );
    assert!(
        !last.contains(cluster_ip.trim()) && !last.contains("x509") && !last.contains("dial tcp"),
        "the API server must not dial the ClusterIP {cluster_ip}: {last}"
    );
}
