//! The RBAC proof: `supportgate run` with the chart's own arguments, authenticated as the
//! chart's ServiceAccount (a TokenRequest token in a kubeconfig), behind the chart's webhook
//! configuration re-pointed at it on 127.0.0.1. The webhook, the controller (leader election,
//! Supported conditions, PolicyReports) and, in the self-managed mode, the certificate Secret
//! and the caBundle all do their work, and the API server's audit log holds requests from that
//! account and not one 403. Removing any rule the process uses makes this fail.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use supportgate::engine::policy::DEFAULT_POLICY_YAML;

use crate::cluster::{base64, ensure_project_crd, exclusive, konvoy_cluster, runtime};
use crate::support::admission::{admitted, denied};
use crate::support::chart::{
    CHART, Release, container_args, get_json, helm_ok, patch_webhook_configuration,
    point_webhook_at,
};
use crate::support::operator::{CertFiles, Operator, wait_webhook_effective};
use crate::support::{ControlPlane, stderr, stdout};

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

/// The names of one run of the proof, all derived from the release.
struct Proof<'a> {
    cp: &'a ControlPlane,
    release: String,
    ns: String,
    fullname: String,
    /// A policy of this test's own, whose status the controller must write.
    policy: String,
    /// Where the KonvoyClusters and Addons go.
    clusters: String,
    self_managed: bool,
}

async fn rbac_proof(cp: &ControlPlane, release: &str, self_managed: bool) {
    let p = Proof {
        cp,
        release: release.to_string(),
        ns: format!("{release}-e2e"),
        fullname: format!("{release}-supportgate"),
        policy: format!("{release}-policy"),
        clusters: format!("{release}-clusters"),
        self_managed,
    };
    p.prepare_the_cluster();
    let _release = p.install();
    let args = p.run_args();
    let certs = CertFiles::new();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let op = Operator::ready_as(cp, (&p.ns, &p.fullname), &certs, &arg_refs).await;
    p.point_the_webhook_at(&op, &certs).await;
    p.the_webhook_decides(&op);
    let converged = p.the_controller_converges().await;
    let leases = get_json(cp, &["-n", &p.ns, "leases"]);

    // The audit log: what the account did, and no request it was refused.
    let user = format!("system:serviceaccount:{}:{}", p.ns, p.fullname);
    let (done, forbidden) = audited(cp, &user);
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused the process:\n{}\nlog:\n{}",
        forbidden.into_iter().collect::<Vec<_>>().join("\n"),
        op.logs()
    );
    assert!(
        converged,
        "no Supported condition on prod-east, PolicyReport for the Addon or status of {} after 60 s:\n{}",
        p.policy,
        op.logs()
    );
    assert!(
        leases["items"][0]["spec"]["holderIdentity"].is_string(),
        "{leases}"
    );
    for needed in p.needed_requests() {
        assert!(
            done.contains(needed),
            "no {needed:?} by {user} in the audit log: {done:#?}"
        );
    }
    drop(op);
}

impl<'a> Proof<'a> {
    /// The kinds the process serves and reports on, and one policy of this test's own.
    fn prepare_the_cluster(&self) {
        let cp = self.cp;
        ensure_project_crd(cp);
        cp.install_crd_files("tests/fixtures/crds/");
        cp.install_crd_files("tests/fixtures/crds-policyreport/");
        cp.install_crd_files("tests/fixtures/crds-certmanager/");
        cp.kubectl_ok(&["delete", "supportpolicies", "--all"], None);
        cp.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&DEFAULT_POLICY_YAML.replace("name: default", &format!("name: {}", self.policy))),
        );
        cp.create_namespace(&self.ns);
    }

    fn install(&self) -> Release<'a> {
        let mut install = vec![
            "install",
            self.release.as_str(),
            CHART,
            "-n",
            self.ns.as_str(),
            // The CRD is this test binary's (ensure_project_crd), the embedded default the policy.
            "--set",
            "crds.install=false",
            "--set",
            "policy.create=false",
        ];
        if !self.self_managed {
            install.extend(["--set", "certManager.enabled=true"]);
        }
        helm_ok(self.cp, &install);
        Release::new(self.cp, &self.release, &self.ns)
    }

    /// The container's arguments, as the kubelet would expand them; the listen addresses and
    /// the certificate files are the test's.
    fn run_args(&self) -> Vec<String> {
        let (ns, fullname) = (self.ns.as_str(), self.fullname.as_str());
        let mut args = container_args(self.cp, ns, fullname);
        let mut want = vec![
            "--log-format=json".to_string(),
            format!("--leader-election-namespace={ns}"),
            format!("--leader-election-lease={fullname}"),
        ];
        if self.self_managed {
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
        // The connection limits (webhook.limits) are checked by the rendering tests; here only
        // the arguments this proof is about.
        let shown: Vec<String> = args.iter().filter(|a| !is_limit(a)).cloned().collect();
        assert_eq!(shown[..want.len()], want[..]);
        args
    }

    /// The chart's webhook configuration, pointed at the process on the host, until the API
    /// server calls it. Self-managed, the process writes the caBundle itself (the CA of the
    /// Secret it wrote); otherwise (no cert-manager here) the test does.
    async fn point_the_webhook_at(&self, op: &Operator, certs: &CertFiles) {
        let cp = self.cp;
        let fullname = self.fullname.as_str();
        if self.self_managed {
            point_webhook_at(cp, fullname, &op.url());
        } else {
            let patch = json!([{"op": "replace", "path": "/webhooks/0/clientConfig",
                 "value": {"url": op.url(), "caBundle": base64(certs.generated.ca_pem.as_bytes())}}]);
            patch_webhook_configuration(cp, fullname, &patch);
        }
        cp.create_namespace(&self.clusters);
        wait_webhook_effective(cp, &self.clusters, &unsupported()).await;
        if self.self_managed {
            let secret = get_json(cp, &["-n", &self.ns, "secret", &format!("{fullname}-tls")]);
            let vwc = get_json(cp, &["validatingwebhookconfiguration", fullname]);
            assert_eq!(
                vwc["webhooks"][0]["clientConfig"]["caBundle"], secret["data"]["ca.crt"],
                "the caBundle is the CA of the Secret supportgate wrote"
            );
        }
    }

    /// The webhook: a supported cluster is admitted, an unsupported one refused; an Addon,
    /// whose schema has no conditions (its verdict goes to a PolicyReport), admitted.
    fn the_webhook_decides(&self, op: &Operator) {
        let o = self.cp.apply_in(
            &self.clusters,
            &konvoy_cluster("prod-east", "v1.8.5", "1.20.13"),
        );
        assert!(o.status.success(), "{}\n{}", stderr(&o), op.logs());
        denied(
            &self.cp.apply_in(&self.clusters, &unsupported()),
            "[konvoy-unsupported]",
        );
        admitted(&self.cp.apply_in(&self.clusters, ADDON));
    }

    /// The controller (as the leader): the Supported condition on the admitted cluster, the
    /// Addon's PolicyReport and the policy's status, within 60 s. (A missing rule shows as a
    /// timeout here; the 403s are reported first.)
    async fn the_controller_converges(&self) -> bool {
        let (cp, clusters) = (self.cp, self.clusters.as_str());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
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
                &self.policy,
                "-o",
                "jsonpath={.status.supported}",
            ]);
            if stdout(&o) == "True"
                && !stdout(&reports).trim().is_empty()
                && !stdout(&status).trim().is_empty()
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The requests the process must have made (as `verb resource[/sub].group`).
    fn needed_requests(&self) -> Vec<&'static str> {
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
        if self.self_managed {
            needed.extend([
                "create secrets",
                "watch secrets",
                "update validatingwebhookconfigurations.admissionregistration.k8s.io",
            ]);
        }
        needed
    }
}

/// A connection limit (webhook.limits), which the rendering tests check.
fn is_limit(arg: &str) -> bool {
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
    .any(|p| arg.starts_with(p))
}

fn unsupported() -> String {
    konvoy_cluster("old-west", "v1.5.6", "1.17.17")
}

const ADDON: &str = "apiVersion: kubeaddons.mesosphere.io/v1beta2\nkind: Addon\nmetadata:\n  name: prometheus\n  labels: {kubeaddons.mesosphere.io/name: prometheus}\n  annotations: {catalog.kubeaddons.mesosphere.io/origin-repository-version: stable-1.36-4.4.0}\nspec:\n  kubernetes: {minSupportedVersion: v1.15.6}\n  chartReference: {chart: kube-prometheus-stack, version: 12.11.3}\n";

/// What `user` did according to the API server's audit log (`verb resource[/sub].group`), and
/// which of those requests were refused with 403.
fn audited(cp: &ControlPlane, user: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut done = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for line in cp.audit_log().lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event["user"]["username"] != user {
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
    (done, forbidden)
}
