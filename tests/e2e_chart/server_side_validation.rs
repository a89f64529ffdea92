//! Every rendering of the chart (default values, cert-manager, everything on, everything off)
//! passes the API server's strict server-side validation in a namespace that enforces the
//! `restricted` Pod Security profile, and those checks can fail.

use crate::cluster::{dry_run, ensure_project_crd, exclusive, restricted_namespace};
use crate::render::{docs, kinds, template};
use crate::support::{ControlPlane, stderr, stdout};
use crate::values_schema::EVERYTHING;

#[test]
fn every_rendered_manifest_passes_server_side_validation_and_pod_security() {
    let cp = ControlPlane::shared();
    let _g = exclusive();
    ensure_project_crd(cp);
    cp.install_crd_files("tests/fixtures/crds-certmanager/");
    cp.install_crd_files("tests/fixtures/crds-prometheus-operator/");
    let ns = "chart-dry-run";
    restricted_namespace(cp, ns);

    let mut default_render = String::new();
    for (name, sets, want_kinds) in &render_cases() {
        let rendered = accepted_rendering(cp, ns, name, sets, want_kinds);
        if sets.is_empty() {
            default_render = rendered;
        }
    }
    the_checks_can_fail(cp, &default_render);
}

/// The kinds every rendering holds, plus `extra`, sorted.
fn kinds_with(extra: &[&str]) -> Vec<String> {
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
    let mut k: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// (name, `--set` values, the kinds rendered) of each rendering checked.
fn render_cases() -> Vec<(&'static str, Vec<&'static str>, Vec<String>)> {
    let with = kinds_with;
    vec![
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
    ]
}

/// Renders with `sets`, checks the kinds, and has the API server accept every document with no
/// Pod Security warning; returns the rendering.
fn accepted_rendering(
    cp: &ControlPlane,
    ns: &str,
    name: &str,
    sets: &[&str],
    want_kinds: &[String],
) -> String {
    let rendered = template(cp, "sg", ns, sets);
    let d = docs(&rendered);
    assert_eq!(&kinds(&d), want_kinds, "{name}: rendered kinds");
    // A self-signed certificate is its own caBundle: a new key at renewal would leave the
    // pods serving a certificate the API server no longer trusts (docs/reliability.md).
    let rotation = match name {
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
    rendered
}

/// The checks above can fail: the same namespace warns about a Pod Security violation, and
/// strict validation refuses a misspelt field.
fn the_checks_can_fail(cp: &ControlPlane, default_render: &str) {
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
