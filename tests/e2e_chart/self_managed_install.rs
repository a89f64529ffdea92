//! `helm install`, `helm upgrade` and `helm uninstall` in the self-managed certificate mode (the
//! default): what the API server stores is the webhook configuration, Deployment, RBAC and
//! Service the process needs, an upgrade keeps the caBundle supportgate wrote, and uninstall
//! leaves no webhook configuration behind (the CRD stays).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use supportgate::api::webhook_configuration::rules_for;
use supportgate::engine::policyset::PolicySet;

use crate::cluster::{CRD_NAME, delete_project_crd, exclusive};
use crate::rbac::{allowed, expected_rbac, rule_lines};
use crate::render::strs;
use crate::support::chart::{CHART, Release, get_json, helm, helm_ok};
use crate::support::{ControlPlane, stderr, stdout};

const NS: &str = "sg-e2e";
const FULLNAME: &str = "sg-supportgate";

#[test]
fn helm_install_upgrade_and_uninstall_in_the_self_managed_certificate_mode() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    // A first install: the CRD is not there yet.
    delete_project_crd(cp);
    cp.create_namespace(NS);

    let out = helm_ok(cp, &["install", "sg", CHART, "-n", NS]);
    // Uninstalled however the test ends: a webhook configuration left behind (failurePolicy
    // Fail, no pods) would refuse the next tests' objects.
    let _release = Release::new(cp, "sg", NS);
    assert!(out.contains("STATUS: deployed"), "{out}");

    the_crd_is_kept_and_helm_creates_no_policy(cp);
    the_webhook_configuration_is_fail_closed_on_the_engines_targets(cp);
    the_deployment_runs_two_spread_restricted_replicas(cp);
    the_pdb_and_the_service(cp);
    the_rbac_is_exactly_what_the_process_uses(cp);
    helm_upgrade_keeps_the_ca_bundle(cp);
    helm_uninstall_leaves_only_the_crd(cp);

    // The kept CRD is adopted again by a re-install of the same release.
    helm_ok(cp, &["install", "sg", CHART, "-n", NS]);
    helm_ok(cp, &["uninstall", "sg", "-n", NS, "--wait"]);
}

/// The CRD is the chart's, kept on uninstall. Helm creates no policy: supportgate does, when
/// it starts and finds none (--create-default-policy, below), so no Helm step needs the CRD
/// to be served already.
fn the_crd_is_kept_and_helm_creates_no_policy(cp: &ControlPlane) {
    let crd = get_json(cp, &[CRD_NAME]);
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let o = cp.kubectl(&["get", "supportpolicy", "default"]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
}

/// The webhook configuration: the engine's targets, fail-closed, never its own namespace.
fn the_webhook_configuration_is_fail_closed_on_the_engines_targets(cp: &ControlPlane) {
    let vwc = get_json(cp, &["validatingwebhookconfiguration", FULLNAME]);
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
        json!({"service": {"name": FULLNAME, "namespace": NS, "path": "/validate", "port": 443}})
    );
    assert_eq!(
        w["namespaceSelector"],
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NS, "kube-system"]}]})
    );
    assert!(vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_null());
}

/// The Deployment: two spread replicas, restricted, probes on the health port.
fn the_deployment_runs_two_spread_restricted_replicas(cp: &ControlPlane) {
    let deploy = get_json(cp, &["-n", NS, "deployment", FULLNAME]);
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["serviceAccountName"], FULLNAME);
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
    assert_eq!(strs(&c["args"]), SELF_MANAGED_ARGS);
    the_container_is_restricted_with_probes_on_the_health_port(c);
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "sg-supportgate-tls"
    );
    assert_eq!(pod["volumes"][0]["secret"]["optional"], true);
}

/// The container's arguments with default values, self-managed certificates.
const SELF_MANAGED_ARGS: [&str; 33] = [
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
];

/// The container: its namespace from the downward API, restricted, probes on the health port,
/// memory bounded, the certificate mounted read-only.
fn the_container_is_restricted_with_probes_on_the_health_port(c: &Value) {
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
}

fn the_pdb_and_the_service(cp: &ControlPlane) {
    let pdb = get_json(cp, &["-n", NS, "poddisruptionbudget", FULLNAME]);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let svc = get_json(cp, &["-n", NS, "service", FULLNAME]);
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}])
    );
}

/// RBAC: exactly the rules of the process, nothing with "*"...
fn the_rbac_is_exactly_what_the_process_uses(cp: &ControlPlane) {
    let cr = get_json(cp, &["clusterrole", FULLNAME]);
    let role = get_json(cp, &["-n", NS, "role", FULLNAME]);
    assert!(!cr.to_string().contains("\"*\"") && !role.to_string().contains("\"*\""));
    let (want_cluster, want_ns) = expected_rbac(FULLNAME, true, true);
    assert_eq!(rule_lines(&cr["rules"]), want_cluster);
    assert_eq!(rule_lines(&role["rules"]), want_ns);
    // ...as the API server's authorizer sees them for the chart's ServiceAccount.
    for (verb, resource, namespace, want) in ACCESS {
        assert_eq!(
            allowed(cp, (NS, FULLNAME), verb, resource, namespace),
            *want,
            "{verb} {resource} in {namespace:?}"
        );
    }
}

/// (verb, resource, namespace, whether the chart's ServiceAccount may).
const ACCESS: &[(&str, &str, &str, bool)] = &[
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
    ("create", "leases.coordination.k8s.io", NS, true),
    ("create", "leases.coordination.k8s.io", "default", false),
    (
        "update",
        "leases.coordination.k8s.io:sg-supportgate",
        NS,
        true,
    ),
    ("update", "leases.coordination.k8s.io:another", NS, false),
    (
        "delete",
        "leases.coordination.k8s.io:sg-supportgate",
        NS,
        false,
    ),
    ("create", "secrets", NS, true),
    ("get", "secrets:sg-supportgate-tls", NS, true),
    ("patch", "secrets:sg-supportgate-tls", NS, true),
    ("watch", "secrets:sg-supportgate-tls", NS, true),
    ("get", "secrets:another", NS, false),
    ("list", "secrets", NS, false),
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
];

/// supportgate writes the caBundle; `helm upgrade` keeps it (the chart never sets it).
fn helm_upgrade_keeps_the_ca_bundle(cp: &ControlPlane) {
    let bundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";
    cp.kubectl_ok(
        &[
            "patch",
            "validatingwebhookconfiguration",
            FULLNAME,
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
            NS,
            "--reuse-values",
            "--set",
            "webhook.failurePolicy=Ignore",
        ],
    );
    assert!(out.contains("REVISION: 2"), "{out}");
    let w = get_json(cp, &["validatingwebhookconfiguration", FULLNAME])["webhooks"][0].clone();
    assert_eq!(w["failurePolicy"], "Ignore");
    assert_eq!(w["clientConfig"]["caBundle"], bundle);
}

/// Uninstall: no webhook configuration is left behind; the CRD (and the policies) are.
fn helm_uninstall_leaves_only_the_crd(cp: &ControlPlane) {
    let o = helm(cp, &["uninstall", "sg", "-n", NS, "--wait"]);
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
    let o = cp.kubectl(&["get", "validatingwebhookconfiguration", FULLNAME]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    for kind in ["deployment", "service", "role", "serviceaccount"] {
        let o = cp.kubectl(&["-n", NS, "get", kind, FULLNAME]);
        assert!(stderr(&o).contains("NotFound"), "{kind}: {}", stderr(&o));
    }
    let o = cp.kubectl(&["get", "clusterrole", FULLNAME]);
    assert!(stderr(&o).contains("NotFound"), "{}", stderr(&o));
    get_json(cp, &[CRD_NAME]);
}
