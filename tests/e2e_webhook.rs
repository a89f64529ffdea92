//! End to end: the real API server calls supportgate's webhook, and real `kubectl apply` of an
//! unsupported combination is refused with the webhook's message.

mod support;

use std::process::Output;
use std::time::Duration;

use support::admission::{admitted, denied};
use support::operator::{
    CertFiles, Operator, http_get, post, raw_exchange, register_webhook, unregister_webhook,
    wait_webhook_effective,
};
use support::{ControlPlane, eventually, stderr, stdout};
use supportgate::webhook::tls::{GeneratedCerts, generate};

fn cluster(
    name: &str,
    konvoy: &str,
    k8s: &str,
    kba: &str,
    kommander: &str,
    labels: &str,
) -> String {
    format!(
        r#"apiVersion: kommander.mesosphere.io/v1beta1
kind: KonvoyCluster
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  cloudProviderAccountRef: {{name: aws}}
  provisioner:
    provider: aws
    aws: {{region: us-west-2}}
    version: {konvoy}
  cluster:
    kubernetes: {{version: {k8s}}}
    addons:
    - configRepository: https://github.com/mesosphere/kubernetes-base-addons
      configVersion: {kba}
      addonsList:
      - {{name: prometheus, enabled: true}}
    - configRepository: https://github.com/mesosphere/kubeaddons-kommander
      configVersion: {kommander}
      addonsList: [{{name: kommander, enabled: true}}]
"#
    )
}

async fn register(cp: &ControlPlane, name: &str, url: String, ca_bundle: Vec<u8>) {
    register_webhook(cp, name, url, ca_bundle, "kube-system").await;
}

const NS: &str = "webhook-e2e";

/// `kubectl -n webhook-e2e apply -f -`.
fn apply(cp: &ControlPlane, doc: &str) -> Output {
    cp.apply_in(NS, doc)
}

fn unsupported() -> String {
    cluster(
        "old-west",
        "v1.5.6",
        "1.17.17",
        "stable-1.17-2.7.0",
        "stable-1.17-1.1.4",
        "",
    )
}

#[tokio::test]
async fn kubectl_apply_is_refused_warned_ratcheted_and_rotation_is_live() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);

    // An old cluster that exists before supportgate is installed.
    let legacy = cluster(
        "legacy",
        "v1.5.6",
        "1.17.17",
        "stable-1.17-2.7.0",
        "stable-1.17-1.1.4",
        "",
    );
    let o = apply(cp, &legacy);
    assert!(o.status.success(), "{}", stderr(&o));

    let certs = CertFiles::new();
    // The bundle carries the next CA too, as a rotation with overlap does.
    let next = generate(&["127.0.0.1", "localhost"], "supportgate-test-ca-2").unwrap();
    let mut op = Operator::start(cp, &certs, &[]);
    op.wait_ready().await;
    let bundle = format!("{}{}", certs.generated.ca_pem, next.ca_pem).into_bytes();
    register(cp, "supportgate-e2e", op.url(), bundle).await;
    wait_webhook_effective(cp, NS, &unsupported()).await;

    a_supported_cluster_is_created(cp, &op);
    each_unsupported_combination_is_refused_with_its_rule(cp);
    a_warn_level_cluster_is_created_with_the_warning(cp);
    an_old_cluster_is_labelled_and_upgraded_but_not_worsened(cp);
    upgrades_skip_no_minor_and_never_go_down(cp);
    dry_runs_are_judged_and_deletes_and_status_writes_are_not(cp);
    rotation_is_live(cp, &op, &certs, &next).await;
    a_rotation_to_a_broken_pair_keeps_the_last_good_one(&op, &certs, &next).await;
    metrics_saw_it_all(&op).await;

    unregister_webhook(cp, "supportgate-e2e")
        .await
        .expect("cleanup");
}

fn a_supported_cluster_is_created(cp: &ControlPlane, op: &Operator) {
    // A supported cluster is created.
    let o = apply(
        cp,
        &cluster(
            "prod-east",
            "v1.8.5",
            "1.20.13",
            "stable-1.20-4.4.0",
            "stable-1.20-1.4.4",
            "environment: production",
        ),
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), op.logs());
    assert_eq!(
        stdout(&o).trim(),
        "konvoycluster.kommander.mesosphere.io/prod-east created"
    );
    assert!(!stderr(&o).contains("Warning"), "{}", stderr(&o));
}

fn each_unsupported_combination_is_refused_with_its_rule(cp: &ControlPlane) {
    // Each kind of unsupported combination is refused with its rule id.
    for (doc, rule) in [
        (unsupported(), "[konvoy-unsupported]"),
        (
            cluster(
                "k8s-too-new",
                "v1.8.5",
                "1.21.2",
                "stable-1.21-4.4.0",
                "stable-1.21-1.4.4",
                "",
            ),
            "[kubernetes-out-of-range]",
        ),
        (
            cluster(
                "kba-mismatch",
                "v1.8.5",
                "1.20.13",
                "stable-1.19-3.2.0",
                "stable-1.20-1.4.4",
                "",
            ),
            "[kba-kubernetes-mismatch]",
        ),
        (
            cluster(
                "kommander-mix",
                "v1.8.5",
                "1.20.13",
                "stable-1.20-4.4.0",
                "stable-1.20-1.3.0",
                "",
            ),
            "[kommander-mismatch]",
        ),
    ] {
        let err = denied(&apply(cp, &doc), rule);
        assert!(
            err.contains("admission webhook \"versions.supportgate.dev\" denied the request"),
            "{err}"
        );
    }
    let o = apply(cp, &unsupported());
    let err = stderr(&o);
    assert!(
        err.contains("Konvoy 1.5.6 is out of support: supported are 1.8.x, 1.7.x, 1.6.x (N-2 of latest 1.8); upgrade to 1.6 or later"),
        "{err}"
    );
}

fn a_warn_level_cluster_is_created_with_the_warning(cp: &ControlPlane) {
    // A warn-level cluster is created and kubectl prints the warning.
    let o = apply(
        cp,
        &cluster(
            "nearing-end",
            "v1.6.3",
            "1.18.13",
            "stable-1.18-3.3.0",
            "stable-1.18-1.2.2",
            "",
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "Warning: [konvoy-nearing-end] spec.provisioner.version: Konvoy 1.6.3 is the oldest"
        ),
        "{}",
        stderr(&o)
    );
}

/// Ratcheting: an object out of support before supportgate came may change, but not get worse.
fn an_old_cluster_is_labelled_and_upgraded_but_not_worsened(cp: &ControlPlane) {
    // The pre-existing out-of-support cluster can be labelled...
    let o = cp.kubectl(&[
        "-n",
        NS,
        "label",
        "konvoycluster",
        "legacy",
        "team=payments",
    ]);
    assert!(
        o.status.success(),
        "labelling an old cluster must work: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("Warning: [konvoy-unsupported]"),
        "{}",
        stderr(&o)
    );
    // ...a worsening change is refused...
    let worse = cluster(
        "legacy",
        "v1.5.6",
        "1.17.17",
        "stable-1.16-2.7.0",
        "stable-1.17-1.1.4",
        "team: payments",
    );
    let o = apply(cp, &worse);
    assert!(
        !o.status.success(),
        "a new violation on an old cluster was admitted"
    );
    assert!(
        stderr(&o).contains("[kba-kubernetes-mismatch]"),
        "{}",
        stderr(&o)
    );
    // ...and it can be upgraded one step.
    let o = apply(
        cp,
        &cluster(
            "legacy",
            "v1.6.3",
            "1.17.17",
            "stable-1.17-2.7.0",
            "stable-1.17-1.2.2",
            "team: payments",
        ),
    );
    assert!(
        o.status.success(),
        "the upgrade 1.5 -> 1.6 was refused: {}",
        stderr(&o)
    );
}

fn upgrades_skip_no_minor_and_never_go_down(cp: &ControlPlane) {
    // Upgrade paths (issue #12): an UPDATE from 1.6 to 1.8 skips 1.7 and is refused, naming the
    // release to go through; 1.6 -> 1.7 is admitted; a patch back down is refused.
    let hop = |konvoy: &str, kommander: &str| {
        cluster(
            "hop",
            konvoy,
            "1.18.13",
            "stable-1.18-3.3.0",
            &format!("stable-1.18-{kommander}"),
            "",
        )
    };
    let o = apply(cp, &hop("v1.6.3", "1.2.2"));
    assert!(o.status.success(), "{}", stderr(&o));
    let skip = hop("v1.8.5", "1.4.4");
    // The same object is fine as a CREATE: only the path from 1.6 is wrong.
    let fresh = skip.replace("name: hop", "name: hop-fresh");
    admitted(&cp.dry_run_in(NS, &fresh));
    let o = apply(cp, &skip);
    assert!(!o.status.success(), "the update 1.6 -> 1.8 was admitted");
    let err = stderr(&o);
    assert!(
        err.contains("admission webhook \"versions.supportgate.dev\" denied the request"),
        "{err}"
    );
    assert!(
        err.contains("[upgrade-skips-minor] spec.provisioner.version: the update moves Konvoy from 1.6.3 to 1.8.5, 2 minors up")
            && err.contains("upgrade to 1.7 first (1.7.5 with Kubernetes 1.19.15)"),
        "{err}"
    );
    let o = apply(cp, &hop("v1.7.5", "1.3.4"));
    assert!(
        o.status.success(),
        "the upgrade 1.6 -> 1.7 was refused: {}",
        stderr(&o)
    );
    let stored = cp.kubectl_ok(
        &[
            "-n",
            NS,
            "get",
            "konvoycluster",
            "hop",
            "-o",
            "jsonpath={.spec.provisioner.version}",
        ],
        None,
    );
    assert_eq!(stored.trim(), "v1.7.5");
    let o = apply(cp, &hop("v1.7.4", "1.3.4"));
    assert!(
        !o.status.success(),
        "the downgrade 1.7.5 -> 1.7.4 was admitted"
    );
    assert!(
        stderr(&o).contains(
            "[downgrade] spec.provisioner.version: the update lowers Konvoy from 1.7.5 to 1.7.4"
        ),
        "{}",
        stderr(&o)
    );
}

fn dry_runs_are_judged_and_deletes_and_status_writes_are_not(cp: &ControlPlane) {
    // Dry runs are answered the same way.
    denied(&cp.dry_run_in(NS, &unsupported()), "[konvoy-unsupported]");

    // DELETE is never blocked.
    let o = cp.kubectl(&["-n", NS, "delete", "konvoycluster", "legacy"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The status subresource is not intercepted: the controller's writes never wait on admission.
    let o = cp.kubectl(&[
        "-n",
        NS,
        "patch",
        "konvoycluster",
        "nearing-end",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Provisioned"}}"#,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

async fn rotation_is_live(
    cp: &ControlPlane,
    op: &Operator,
    certs: &CertFiles,
    next: &GeneratedCerts,
) {
    // Rotation: the files change under the running server; the next handshake gets the new cert.
    let (status, _, served) = post(
        op.webhook_port,
        &certs.generated.ca_pem,
        "/validate",
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(status, 400);
    let old_der = served;
    certs.write(&next.cert_pem, &next.key_pem);
    let new_der = eventually(
        Duration::from_secs(15),
        "the rotated certificate to be served",
        || async {
            match post(op.webhook_port, &next.ca_pem, "/validate", b"{}".to_vec()).await {
                Ok((_, _, der)) => Some(der),
                Err(_) => None,
            }
        },
    )
    .await;
    assert_ne!(old_der, new_der);
    assert!(
        post(
            op.webhook_port,
            &certs.generated.ca_pem,
            "/validate",
            b"{}".to_vec()
        )
        .await
        .is_err(),
        "the old certificate is no longer served"
    );
    // The API server (bundle with both CAs) keeps calling the webhook across the rotation.
    denied(&apply(cp, &unsupported()), "[konvoy-unsupported]");
}

async fn a_rotation_to_a_broken_pair_keeps_the_last_good_one(
    op: &Operator,
    certs: &CertFiles,
    next: &GeneratedCerts,
) {
    certs.write("not a certificate", "not a key");
    eventually(
        Duration::from_secs(30),
        "the broken pair to be read and refused",
        || async {
            op.logs()
                .contains("serving certificate not reloaded")
                .then_some(())
        },
    )
    .await;
    assert!(
        post(op.webhook_port, &next.ca_pem, "/validate", b"{}".to_vec())
            .await
            .is_ok()
    );
}

/// Metrics saw it all.
async fn metrics_saw_it_all(op: &Operator) {
    let (code, metrics) = http_get(op.health_port, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            "supportgate_admission_requests_total{verdict=\"denied\",operation=\"CREATE\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "supportgate_admission_violations_total{rule=\"kommander-mismatch\",severity=\"deny\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_http_errors_and_the_server_keeps_serving() {
    let cp = ControlPlane::shared();
    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &["--max-body-bytes=1048576"]);
    op.wait_ready().await;
    let ca = certs.generated.ca_pem.clone();
    let port = op.webhook_port;

    let (code, body, _) = post(
        port,
        &ca,
        "/validate",
        b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": ".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("not a JSON AdmissionReview"), "{body}");

    // Declared too large: refused before the body is read.
    let head = b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 10485760\r\n\r\n{";
    let answer = raw_exchange(port, &ca, head).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 1048576 bytes"), "{answer}");
    // Not declared (chunked): refused once the limit is crossed while reading.
    let mut chunked =
        b"POST /validate HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 0x10000));
        chunked.extend_from_slice(b"\r\n");
    }
    let answer = raw_exchange(port, &ca, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let review =
        r#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#;
    let (code, body, _) = post(port, &ca, "/validate", review.as_bytes().to_vec())
        .await
        .unwrap();
    assert_eq!(code, 400);
    assert!(body.contains("admission.k8s.io/v1"), "{body}");

    let (code, _, _) = post(port, &ca, "/other", b"{}".to_vec()).await.unwrap();
    assert_eq!(code, 404);

    // Still serving real reviews afterwards.
    let good = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "konvoy.mesosphere.io", "version": "v1beta2", "kind": "ClusterProvisioner"},
        "resource": {"group": "konvoy.mesosphere.io", "version": "v1beta2", "resource": "clusterprovisioners"},
        "name": "p", "namespace": "default", "operation": "CREATE", "userInfo": {},
        "object": {"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": "ClusterProvisioner", "metadata": {"name": "p"}, "spec": {"version": "v1.4.0"}}}});
    let (code, body, _) = post(port, &ca, "/validate", serde_json::to_vec(&good).unwrap())
        .await
        .unwrap();
    assert_eq!(code, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["uid"], "u1");

    let (code, text) = http_get(op.health_port, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(
        text.contains("supportgate_admission_errors_total{kind=\"too_large\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("supportgate_admission_errors_total{kind=\"malformed\"} 1"),
        "{text}"
    );
}
