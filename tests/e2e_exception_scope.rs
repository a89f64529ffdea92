//! End to end, issue 28 path 5: an exception names the namespaces it reaches. On the real
//! kube-apiserver with RBAC: the CRD refuses a SupportException without `match.namespaces` (a
//! name or a selector alone) with a message saying so; one stored before the CRD required it is
//! reported invalid in its status and applies to nothing; and the attack of the issue, a tenant
//! of `team-b` who may not create exceptions creating `legacy-dr` at Konvoy 1.5.6 next to a
//! trusted exception for `team-a`'s `legacy-dr`, is refused, while `team-a`'s cluster is let in.

mod support;

use std::path::Path;
use std::time::Duration;

use kube::Api;
use support::accounts::{AsUser, NamespaceUser};
use support::operator::{CertFiles, Operator, unregister_webhook};
use support::{ControlPlane, eventually, stderr};
use supportgate::api::{NAMESPACES_REQUIRED, SupportException, WILDCARD_ALONE};

const TRUSTED: &str = "scope-exc-trusted";
const TEAM_A: &str = "scope-exc-team-a";
const TEAM_B: &str = "scope-exc-team-b";
const WEBHOOK: &str = "supportgate-exception-scope-e2e";
const WAIT: Duration = Duration::from_secs(45);
const CRD: &str = "crds/supportgate.dev_supportexceptions.yaml";

/// A Konvoy 1.5.6 cluster: refused as unsupported, nothing else wrong with it.
fn cluster(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{tier: dr}}}}\nspec:\n  provisioner: {{provider: aws, version: v1.5.6}}\n  cluster:\n    kubernetes: {{version: 1.17.17}}\n    addons:\n    - configRepository: https://github.com/mesosphere/kubernetes-base-addons\n      configVersion: stable-1.17-2.7.0\n      addonsList: [{{name: prometheus, enabled: true}}]\n    - configRepository: https://github.com/mesosphere/kubeaddons-kommander\n      configVersion: stable-1.17-1.1.4\n      addonsList: [{{name: kommander, enabled: true}}]\n"
    )
}

/// A SupportException in the trusted namespace with the given `match` (flow YAML).
fn exception(name: &str, match_: &str) -> String {
    let expires = jiff::Zoned::now().date() + jiff::Span::new().days(30);
    format!(
        "apiVersion: supportgate.dev/v1alpha1\nkind: SupportException\nmetadata: {{name: {name}, namespace: {TRUSTED}}}\nspec:\n  reason: DR cluster of team A\n  expires: \"{expires}\"\n  rules: [konvoy-unsupported]\n  match: {match_}\n"
    )
}

/// The CRD as it was before it required `match.namespaces`: the generated one with that rule
/// cut out, to store an exception the way an older release accepted it.
fn legacy_crd() -> String {
    let crd = std::fs::read_to_string(support::repo().join(CRD)).expect("read the CRD");
    let rule = crd
        .lines()
        .position(|l| l.contains("match.namespaces is required"))
        .expect("the CRD requires match.namespaces");
    let lines: Vec<&str> = crd.lines().collect();
    assert!(
        lines[rule + 1].trim() == "rule: has(self.namespaces)",
        "{}",
        lines[rule + 1]
    );
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != rule && *i != rule + 1)
        .map(|(_, l)| *l)
        .collect();
    kept.join("\n") + "\n"
}

/// A ServiceAccount of `team-b` that may manage KonvoyClusters there and nothing else (no
/// SupportExceptions anywhere): the tenant of the issue.
fn tenant<'a>(cp: &'a ControlPlane, dir: &Path) -> AsUser<'a> {
    NamespaceUser {
        ns: TEAM_B,
        name: "tenant",
        group: "kommander.mesosphere.io",
        resources: &["konvoyclusters"],
        verbs: &["get", "list", "create", "update", "patch", "delete"],
    }
    .create(cp, &dir.join("tenant-kubeconfig"))
}

/// The CRD refuses every exception without namespace scope, with the reason.
fn unscoped_exceptions_are_refused(cp: &ControlPlane) {
    let cases = [
        ("{names: [legacy-dr]}", NAMESPACES_REQUIRED),
        ("{selector: {matchLabels: {tier: dr}}}", NAMESPACES_REQUIRED),
        (
            "{kinds: [{apiGroup: kommander.mesosphere.io, kind: KonvoyCluster}]}",
            NAMESPACES_REQUIRED,
        ),
        (
            &format!("{{namespaces: ['*', {TEAM_A}], names: [legacy-dr]}}"),
            WILDCARD_ALONE,
        ),
        (
            "{namespaces: [], names: [legacy-dr]}",
            "should have at least 1 items",
        ),
        (
            "{namespaces: [Team_A], names: [legacy-dr]}",
            "spec.match.namespaces[0]: Invalid value",
        ),
    ];
    for (m, want) in cases {
        let o = cp.kubectl_in(&["create", "-f", "-"], Some(&exception("bad", m)));
        assert!(
            !o.status.success() && stderr(&o).contains(want),
            "{m}: want {want:?}, got: {}",
            stderr(&o)
        );
    }
}

#[tokio::test]
async fn an_exception_reaches_only_the_namespaces_it_names() {
    let cp = ControlPlane::shared();
    cp.install_crd_files("tests/fixtures/crds/");
    for ns in [TRUSTED, TEAM_A, TEAM_B] {
        cp.create_namespace(ns);
    }
    a_legacy_crd_stores_a_name_only_exception(cp).await;
    // The current CRD: (a) no exception without namespace scope gets in.
    the_current_crd_requires_namespaces(cp).await;
    unscoped_exceptions_are_refused(cp);

    let certs = CertFiles::new();
    let ns_flag = format!("--namespace={TRUSTED}");
    let mut op = Operator::start(cp, &certs, &["--no-leader-election", &ns_flag]);
    op.serve_admission(cp, &certs, WEBHOOK, TEAM_B, &cluster(TEAM_B, "probe"))
        .await;

    // (b) The attack: a trusted exception for team A's legacy-dr.
    let team_a = a_trusted_exception_admits_team_as_cluster(cp, &op).await;
    the_stored_name_only_exception_is_invalid(cp).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let user = tenant(cp, dir.path());
    team_bs_tenant_can_neither_grant_nor_borrow_an_exception(&user, &team_a, &op);
    the_wildcard_reaches_every_namespace(cp, &user).await;

    let _ = unregister_webhook(cp, WEBHOOK).await;
}

/// Before the requirement: a name-only exception is stored as an older release let it be.
async fn a_legacy_crd_stores_a_name_only_exception(cp: &ControlPlane) {
    let legacy = legacy_crd();
    cp.kubectl_ok(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&legacy),
    );
    cp.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/supportexceptions.supportgate.dev",
        ],
        None,
    );
    let unscoped = exception("unscoped-dr", "{names: [legacy-dr]}");
    eventually(
        WAIT,
        "the legacy CRD to accept a name-only exception",
        || async {
            cp.kubectl_in(&["apply", "-f", "-"], Some(&unscoped))
                .status
                .success()
                .then_some(())
        },
    )
    .await;
}

async fn the_current_crd_requires_namespaces(cp: &ControlPlane) {
    cp.install_crds();
    cp.install_crd_files(CRD);
    eventually(WAIT, "the CRD to require match.namespaces", || async {
        let o = cp.kubectl_in(
            &["create", "--dry-run=server", "-f", "-"],
            Some(&exception("probe", "{names: [legacy-dr]}")),
        );
        stderr(&o).contains(NAMESPACES_REQUIRED).then_some(())
    })
    .await;
}

/// A trusted exception for team A's legacy-dr lets that cluster in; returns the exception.
async fn a_trusted_exception_admits_team_as_cluster(cp: &ControlPlane, op: &Operator) -> String {
    let team_a = exception(
        "team-a-dr",
        &format!("{{namespaces: [{TEAM_A}], names: [legacy-dr]}}"),
    );
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&team_a));
    let admitted = eventually(WAIT, "team A's legacy-dr admitted", || async {
        let o = cp.kubectl_in(&["apply", "-f", "-"], Some(&cluster(TEAM_A, "legacy-dr")));
        o.status.success().then(|| stderr(&o))
    })
    .await;
    assert!(
        admitted.contains(&format!("excepted by SupportException {TRUSTED}/team-a-dr")),
        "{admitted}\n{}",
        op.logs()
    );
    team_a
}

/// The stored name-only exception is invalid, and says why (the status pass runs once a
/// reconcile recorded something, here team A's cluster).
async fn the_stored_name_only_exception_is_invalid(cp: &ControlPlane) {
    let exceptions: Api<SupportException> = Api::namespaced(cp.client().await, TRUSTED);
    let ready = eventually(WAIT, "unscoped-dr Ready=False", || async {
        let st = exceptions.get("unscoped-dr").await.ok()?.status?;
        let c = st.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        (c.status == "False").then_some(c)
    })
    .await;
    assert_eq!(ready.reason, "InvalidSpec", "{ready:?}");
    assert!(
        ready.message.contains("spec.match.namespaces is required"),
        "{ready:?}"
    );
}

/// Team B's tenant may not grant exceptions, and cannot borrow team A's.
fn team_bs_tenant_can_neither_grant_nor_borrow_an_exception(
    user: &AsUser<'_>,
    team_a: &str,
    op: &Operator,
) {
    let o = user.kubectl(&["create", "-f", "-"], Some(team_a));
    assert!(
        !o.status.success() && stderr(&o).contains("Forbidden"),
        "the tenant must not create exceptions: {}",
        stderr(&o)
    );
    let o = user.kubectl(&["create", "-f", "-"], Some(&cluster(TEAM_B, "legacy-dr")));
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("[konvoy-unsupported]") && !err.contains("excepted"),
        "team B's legacy-dr must be refused: {err}\n{}",
        op.logs()
    );
}

/// The wildcard, spelled out, is what reaches every namespace.
async fn the_wildcard_reaches_every_namespace(cp: &ControlPlane, user: &AsUser<'_>) {
    let all = exception("all-dr", "{namespaces: ['*'], names: [wide-dr]}");
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&all));
    let admitted = eventually(WAIT, "team B's wide-dr admitted under all-dr", || async {
        let o = user.apply(&cluster(TEAM_B, "wide-dr"));
        o.status.success().then(|| stderr(&o))
    })
    .await;
    assert!(
        admitted.contains(&format!("excepted by SupportException {TRUSTED}/all-dr")),
        "{admitted}"
    );
}
