//! Two supportgate replicas against one API server: only the Lease holder writes status, both
//! serve the webhook, and when the leader dies the other takes over.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind};
use kube::core::ApiResource;
use support::operator::{CertFiles, Operator, http_get};
use support::{ControlPlane, eventually};
use supportgate::engine::policy::DEFAULT_POLICY_YAML;

const NS: &str = "leader-e2e";

fn cluster(name: &str) -> String {
    format!(
        "apiVersion: kommander.mesosphere.io/v1beta1\nkind: KonvoyCluster\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  provisioner: {{version: v1.8.5}}\n  cluster: {{kubernetes: {{version: 1.20.13}}}}\n"
    )
}

async fn status_writes(op: &Operator) -> u64 {
    let (_, text) = http_get(op.health_port, "/metrics").await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("supportgate_status_writes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get_opt("supportgate-e2e")
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// Whether the KonvoyCluster `name` has a Supported condition.
async fn has_supported(clusters: &Api<DynamicObject>, name: &str) -> Option<()> {
    let o = clusters.get(name).await.ok()?;
    o.data["status"]["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Supported")
        .then_some(())
}

/// A replica with leader election on the test's lease, as `id`.
fn replica(cp: &ControlPlane, certs: &CertFiles, id: &str) -> Operator {
    Operator::start(
        cp,
        certs,
        &[
            "--leader-election-namespace",
            NS,
            "--leader-election-lease",
            "supportgate-e2e",
            "--identity",
            id,
        ],
    )
}

#[tokio::test]
async fn only_the_leader_writes_and_the_other_takes_over() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);
    cp.kubectl_ok(&["apply", "-f", "-"], Some(DEFAULT_POLICY_YAML));
    for n in ["one", "two", "three"] {
        cp.kubectl_ok(&["apply", "-f", "-"], Some(&cluster(n)));
    }
    let client = cp.client().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NS);
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters",
    );
    let clusters: Api<DynamicObject> = Api::namespaced_with(client, NS, &ar);

    let certs = CertFiles::new();
    let mut a = replica(cp, &certs, "replica-a");
    a.wait_ready().await;
    eventually(Duration::from_secs(20), "replica-a to lead", || async {
        (holder(&leases).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let mut b = replica(cp, &certs, "replica-b");
    b.wait_ready().await;
    only_the_leader_writes(&a, &b, &leases, &clusters).await;
    the_follower_takes_over_once_the_lease_expires(cp, a, &mut b, &leases, &clusters).await;
}

async fn only_the_leader_writes(
    a: &Operator,
    b: &Operator,
    leases: &Api<Lease>,
    clusters: &Api<DynamicObject>,
) {
    for n in ["one", "two", "three"] {
        eventually(Duration::from_secs(30), "a Supported condition", || {
            has_supported(clusters, n)
        })
        .await;
    }
    // The conditions are there, so the leader's counter follows within a scrape or two.
    eventually(
        Duration::from_secs(30),
        "the leader to count its 3 status writes",
        || async { (status_writes(a).await >= 3).then_some(()) },
    )
    .await;
    assert_eq!(
        status_writes(b).await,
        0,
        "the follower must not write:\n{}",
        b.logs()
    );
    assert_eq!(holder(leases).await.as_deref(), Some("replica-a"));
    // Both replicas serve the webhook.
    for op in [a, b] {
        assert_eq!(http_get(op.health_port, "/readyz").await.unwrap().0, 200);
    }
}

/// The leader dies without releasing the lease; after it expires the follower takes over.
async fn the_follower_takes_over_once_the_lease_expires(
    cp: &ControlPlane,
    mut a: Operator,
    b: &mut Operator,
    leases: &Api<Lease>,
    clusters: &Api<DynamicObject>,
) {
    a.child.kill().expect("kill the leader");
    let _ = a.child.wait();
    let killed = Instant::now();
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&cluster("four")));
    eventually(
        Duration::from_secs(45),
        "replica-b to take the lease",
        || async { (holder(leases).await.as_deref() == Some("replica-b")).then_some(()) },
    )
    .await;
    // client-go semantics with the defaults (15 s lease, 2 s retry): a's last renewal was at most
    // one retry before the kill, and b takes over once it has seen no change for 15 s, looking
    // again right at expiry. So 13 s <= takeover <= 17 s, plus request and polling latency.
    let takeover = killed.elapsed();
    println!("takeover {takeover:?} after the leader was killed");
    assert!(
        takeover >= Duration::from_secs(12),
        "b took over {takeover:?} after the kill: before the lease could expire:\n{}",
        b.logs()
    );
    assert!(
        takeover <= Duration::from_secs(17 + 5),
        "b took over only {takeover:?} after the kill:\n{}",
        b.logs()
    );
    eventually(
        Duration::from_secs(30),
        "the new leader to reconcile the new cluster",
        || has_supported(clusters, "four"),
    )
    .await;
    // The counter moves just after the write it counts returns: poll briefly rather than race.
    eventually(
        Duration::from_secs(10),
        "the new leader's status-write counter",
        || async { (status_writes(b).await >= 1).then_some(()) },
    )
    .await;
    let lease = leases.get("supportgate-e2e").await.unwrap();
    assert_eq!(lease.spec.and_then(|s| s.lease_transitions), Some(1));
    assert!(b.child.try_wait().unwrap().is_none());
}
