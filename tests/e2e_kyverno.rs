//! Verdict parity with Kyverno (issue #19): the same objects, each through a real
//! `kubectl apply --dry-run=server`, first with supportgate's webhook registered alone, then with
//! Kyverno's admission controller alone enforcing the Konvoy policy as a Kyverno user would
//! write it (benches/peers/kyverno/konvoy-support.yaml). Verdicts and the rule ids they name must
//! agree wherever both can express the rule; the test prints the table of every difference and
//! why (docs/comparison.md holds a run of it). It fails, never skips, when Kyverno cannot start.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Output;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use support::kyverno::Kyverno;
use support::operator::{CertFiles, Operator, unregister_webhook};
use support::{ControlPlane, eventually, repo, stderr};
use supportgate::engine::rules::Rule;

const NS: &str = "parity";
const VWC: &str = "supportgate-parity";
const POLICY: &str = "benches/peers/kyverno/konvoy-support.yaml";

/// The rules the Kyverno policy writes; on these the two must agree.
const COMMON: [Rule; 8] = [
    Rule::KonvoyUnsupported,
    Rule::KonvoyNearingEnd,
    Rule::KubernetesOutOfRange,
    Rule::KbaKubernetesMismatch,
    Rule::KommanderMismatch,
    Rule::ExperimentalComponent,
    Rule::VersionInvalid,
    Rule::VersionMissing,
];

const FIRST_FAILURE: &str = "same verdict; a ValidatingPolicy reports only its first failed validation, so Kyverno names one rule per policy where supportgate lists every violation";

/// Why a rule outside [`COMMON`] is not in the Kyverno policy.
fn why_not_written(rule: Rule) -> &'static str {
    match rule {
        Rule::Prerelease => {
            "pre-release tags and versions: expressible (a regex on the tag), not among the issue's five rules, so not written"
        }
        Rule::RefUnrecognized => {
            "a ref outside the tag grammar: the Kyverno policy cannot tell it from a tag it should check, and lets it pass"
        }
        Rule::AddonKubernetesIncompatible => {
            "an in-cluster addon is judged against the hosting cluster's Kubernetes version (its KBA tag, its own range), which a ValidatingPolicy does not see; the Kyverno policy does not match these kinds"
        }
        Rule::SecondarySupport => "an informational note, never a warning",
        _ => FIRST_FAILURE,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A create of a kind both gates match.
    Both,
    /// An in-cluster kind (Addon, ClusterAddon) the Kyverno policy does not match.
    InCluster,
    /// An update of an object that predates both gates.
    Update,
}

struct Case {
    name: String,
    source: String,
    kind: Kind,
    doc: Value,
}

/// What one gate answered to one `kubectl apply --dry-run=server`.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    denied: bool,
    deny: BTreeSet<&'static str>,
    warn: BTreeSet<&'static str>,
}

impl Verdict {
    fn of(o: &Output, case: &str) -> Verdict {
        let err = stderr(o);
        let denied = !o.status.success();
        assert!(
            !denied || err.contains("denied the request"),
            "{case}: kubectl failed for another reason than a denial:\n{err}"
        );
        let (warnings, rest): (Vec<&str>, Vec<&str>) =
            err.lines().partition(|l| l.starts_with("Warning: "));
        Verdict {
            denied,
            deny: rule_ids(&rest.join("\n")),
            warn: rule_ids(&warnings.join("\n")),
        }
    }

    fn common(&self) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
        let ids: BTreeSet<&str> = COMMON.iter().map(|r| r.id()).collect();
        (
            self.deny.intersection(&ids).copied().collect(),
            self.warn.intersection(&ids).copied().collect(),
        )
    }

    /// Kyverno agrees with supportgate (`self`): the same verdict, and on the rules both write,
    /// warnings where supportgate warns and rule ids it names. A ValidatingPolicy stops at its
    /// first failed validation, so Kyverno names one rule per policy where supportgate names all.
    fn agrees(&self, kyverno: &Verdict) -> bool {
        let (sd, sw) = self.common();
        let (kd, kw) = kyverno.common();
        self.denied == kyverno.denied
            && kd.is_subset(&sd)
            && kd.is_empty() == sd.is_empty()
            && kw.is_subset(&sw)
            && kw.is_empty() == sw.is_empty()
    }

    fn show(&self) -> String {
        let word = if self.denied {
            "DENIED"
        } else if self.warn.is_empty() {
            "ALLOWED"
        } else {
            "WARNED"
        };
        let mut ids: Vec<String> = self.deny.iter().map(|r| r.to_string()).collect();
        ids.extend(self.warn.iter().map(|r| format!("{r} (warn)")));
        if ids.is_empty() {
            word.to_string()
        } else {
            format!("{word} {}", ids.join(", "))
        }
    }
}

fn rule_ids(text: &str) -> BTreeSet<&'static str> {
    Rule::ALL
        .iter()
        .map(|r| r.id())
        .filter(|id| text.contains(&format!("[{id}]")))
        .collect()
}

/// One consistent set of versions per Konvoy release (examples/policies/default.yaml): its
/// default Kubernetes, and KBA and Kommander tags built for that Kubernetes minor.
const RELEASES: [(&str, &str, &str, &str); 5] = [
    (
        "v1.8.5",
        "1.20.13",
        "stable-1.20-4.4.0",
        "stable-1.20-1.4.4",
    ),
    (
        "v1.7.2",
        "1.19.15",
        "stable-1.19-3.2.0",
        "stable-1.19-1.3.0",
    ),
    (
        "v1.6.3",
        "1.18.13",
        "stable-1.18-3.3.0",
        "stable-1.18-1.2.2",
    ),
    (
        "v1.5.6",
        "1.17.17",
        "stable-1.17-2.7.0",
        "stable-1.17-1.1.4",
    ),
    (
        "v1.4.4",
        "1.16.14",
        "stable-1.16-2.3.0",
        "stable-1.16-1.0.3",
    ),
];

struct Spec<'a> {
    konvoy: &'a str,
    k8s: Option<&'a str>,
    kba: &'a str,
    kommander: &'a str,
    env: &'a str,
    extra_addon: Option<&'a str>,
    kba_repo: &'a str,
}

impl<'a> Spec<'a> {
    fn release(i: usize) -> Spec<'static> {
        let (konvoy, k8s, kba, kommander) = RELEASES[i];
        Spec {
            konvoy,
            k8s: Some(k8s),
            kba,
            kommander,
            env: "production",
            extra_addon: None,
            kba_repo: "https://github.com/mesosphere/kubernetes-base-addons",
        }
    }

    fn konvoy_cluster(&self, name: &str) -> Value {
        let mut addons = vec![json!({"name": "prometheus", "enabled": true})];
        if let Some(a) = self.extra_addon {
            addons.push(json!({"name": a, "enabled": true}));
        }
        let mut kubernetes = json!({});
        if let Some(k) = self.k8s {
            kubernetes = json!({"version": k});
        }
        json!({
            "apiVersion": "kommander.mesosphere.io/v1beta1",
            "kind": "KonvoyCluster",
            "metadata": {"name": name, "labels": {"environment": self.env}},
            "spec": {
                "cloudProviderAccountRef": {"name": "aws"},
                "provisioner": {"provider": "aws", "version": self.konvoy},
                "cluster": {
                    "kubernetes": kubernetes,
                    "addons": [
                        {"configRepository": self.kba_repo, "configVersion": self.kba, "addonsList": addons},
                        {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander",
                         "configVersion": self.kommander,
                         "addonsList": [{"name": "kommander", "enabled": true}]}
                    ]
                }
            }
        })
    }

    fn cluster_configuration(&self, name: &str) -> Value {
        let mut doc = self.konvoy_cluster(name);
        let cluster = doc["spec"]["cluster"].take();
        let mut spec = cluster;
        spec["version"] = json!(self.konvoy);
        json!({
            "apiVersion": "konvoy.mesosphere.io/v1beta2",
            "kind": "ClusterConfiguration",
            "metadata": doc["metadata"].take(),
            "spec": spec,
        })
    }
}

/// The generated KonvoyClusters and ClusterConfigurations, both engines judge each.
fn generated() -> Vec<Case> {
    let minors = ["1-8", "1-7", "1-6", "1-5", "1-4"];
    let mut clusters: Vec<(String, Spec)> = minors
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("gen-{m}-consistent"), Spec::release(i)))
        .collect();
    clusters.extend(one_step_off_a_release(&minors));
    clusters.extend(
        edge_cases()
            .into_iter()
            .map(|(what, s)| (format!("gen-{what}"), s)),
    );
    let mut out: Vec<Case> = clusters
        .into_iter()
        .map(|(name, s)| case(s.konvoy_cluster(&name), name))
        .collect();
    let configs: Vec<(&str, Spec)> = vec![
        ("cc-1-8", Spec::release(0)),
        ("cc-1-5", Spec::release(3)),
        (
            "cc-1-7-k8s-1-20",
            Spec {
                k8s: Some("1.20.13"),
                ..Spec::release(1)
            },
        ),
    ];
    for (what, s) in configs {
        let name = format!("gen-{what}");
        out.push(case(s.cluster_configuration(&name), name));
    }
    out
}

fn case(doc: Value, name: String) -> Case {
    Case {
        source: "generated".into(),
        name,
        kind: Kind::Both,
        doc,
    }
}

/// For the three newest releases: one part of the combination a step off (Kubernetes a minor
/// below or above the range, KBA or Kommander of the next release).
fn one_step_off_a_release(minors: &[&str]) -> Vec<(String, Spec<'static>)> {
    let mut out = vec![];
    for (i, m) in minors.iter().enumerate().take(3) {
        // One Kubernetes minor below the release's range, with tags built for it.
        let (k8s, kba, kommander) = [
            ("1.17.17", "stable-1.17-2.7.0", "stable-1.17-1.1.4"),
            ("1.16.14", "stable-1.16-2.3.0", "stable-1.16-1.0.3"),
            ("1.15.12", "stable-1.15-2.0.1", "stable-1.15-1.0.1"),
        ][i];
        let mut cases: Vec<(&str, Spec)> = vec![
            (
                "k8s-low",
                Spec {
                    k8s: Some(k8s),
                    kba,
                    kommander,
                    ..Spec::release(i)
                },
            ),
            (
                "kba-other-minor",
                Spec {
                    kba: Spec::release(i + 1).kba,
                    ..Spec::release(i)
                },
            ),
            (
                "kommander-unpaired",
                Spec {
                    kommander: Spec::release(i + 1).kommander,
                    ..Spec::release(i)
                },
            ),
        ];
        if i > 0 {
            // The next release's Kubernetes, tags unchanged.
            cases.push((
                "k8s-newer",
                Spec {
                    k8s: Some(RELEASES[i - 1].1),
                    ..Spec::release(i)
                },
            ));
        }
        for (what, s) in cases {
            out.push((format!("gen-{m}-{what}"), s));
        }
    }
    out
}

/// Single cases at the edges: out of range, extra addons by environment, unknown releases,
/// unparsable versions, KBA spellings.
#[expect(
    clippy::too_many_lines,
    reason = "a data table: one Spec per case, each a few lines in rustfmt's layout"
)]
fn edge_cases() -> Vec<(&'static str, Spec<'static>)> {
    vec![
        (
            "k8s-high",
            Spec {
                k8s: Some("1.21.2"),
                kba: "stable-1.21-4.5.0",
                kommander: "stable-1.21-1.4.4",
                ..Spec::release(0)
            },
        ),
        (
            "kommander-k8s",
            Spec {
                kommander: "stable-1.19-1.4.4",
                ..Spec::release(0)
            },
        ),
        (
            "istio-production",
            Spec {
                extra_addon: Some("istio"),
                ..Spec::release(0)
            },
        ),
        (
            "kiali-production-1-7",
            Spec {
                extra_addon: Some("Kiali"),
                ..Spec::release(1)
            },
        ),
        (
            "jaeger-staging",
            Spec {
                extra_addon: Some("jaeger"),
                env: "staging",
                ..Spec::release(0)
            },
        ),
        (
            "jaeger-staging-1-6",
            Spec {
                extra_addon: Some("jaeger"),
                env: "staging",
                ..Spec::release(2)
            },
        ),
        (
            "unknown-1-9",
            Spec {
                konvoy: "v1.9.0",
                ..Spec::release(0)
            },
        ),
        (
            "unknown-2-1",
            Spec {
                konvoy: "v2.1.0",
                ..Spec::release(0)
            },
        ),
        (
            "konvoy-invalid",
            Spec {
                konvoy: "latest",
                ..Spec::release(0)
            },
        ),
        (
            "k8s-invalid",
            Spec {
                k8s: Some("one.twenty"),
                ..Spec::release(0)
            },
        ),
        (
            "k8s-missing",
            Spec {
                k8s: None,
                ..Spec::release(0)
            },
        ),
        (
            "kba-git-url",
            Spec {
                kba_repo: "https://github.com/mesosphere/kubernetes-base-addons.git",
                kba: "stable-1.19-3.2.0",
                ..Spec::release(0)
            },
        ),
        (
            "kba-prerelease",
            Spec {
                kba: "testing-1.20-4.5.0-rc.1",
                ..Spec::release(0)
            },
        ),
        (
            "kba-master",
            Spec {
                kba: "master",
                ..Spec::release(0)
            },
        ),
    ]
}

/// The example objects whose kinds have CRDs here (tests/fixtures/crds); ClusterProvisioner and
/// KUDO Instance have none, so the API server would refuse them before any webhook.
fn examples() -> Vec<Case> {
    let mut out = Vec::new();
    for file in [
        "examples/clusters/konvoyclusters.yaml",
        "examples/clusters/cluster.yaml",
        "examples/clusters/addons.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).expect("example file");
        for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let doc = Value::deserialize(de).expect("example YAML");
            let kind = match doc["kind"].as_str().unwrap_or_default() {
                "KonvoyCluster" | "ClusterConfiguration" => Kind::Both,
                "Addon" | "ClusterAddon" => Kind::InCluster,
                _ => continue,
            };
            let name = doc["metadata"]["name"]
                .as_str()
                .expect("a name")
                .to_string();
            out.push(Case {
                name: format!("{name} ({})", doc["kind"].as_str().unwrap_or_default()),
                source: format!("{file}#{}", i + 1),
                kind,
                doc,
            });
        }
    }
    out
}

/// The README's refused example (Konvoy 1.5.6) as an object that predates both gates.
fn legacy() -> Value {
    Spec::release(3).konvoy_cluster("ratchet-legacy")
}

fn ratchet_case() -> Case {
    let mut doc = legacy();
    // An edit that changes nothing about versions: supportgate ratchets it, Kyverno re-judges.
    doc["metadata"]["labels"]["team"] = json!("platform");
    Case {
        name: "ratchet-legacy (update)".into(),
        source: "generated".into(),
        kind: Kind::Update,
        doc,
    }
}

fn corpus() -> Vec<Case> {
    let mut all = examples();
    all.extend(generated());
    all.push(ratchet_case());
    all
}

/// The document as sent: in the test namespace when namespaced.
fn placed(doc: &Value) -> String {
    let mut d = doc.clone();
    if d["kind"] == "ClusterAddon" {
        if let Some(m) = d["metadata"].as_object_mut() {
            m.remove("namespace");
        }
    } else {
        d["metadata"]["namespace"] = json!(NS);
    }
    d.to_string()
}

fn run_all(cp: &ControlPlane, cases: &[Case]) -> Vec<Verdict> {
    cases
        .iter()
        .map(|c| {
            let o = cp.kubectl_in(
                &["apply", "--dry-run=server", "-f", "-"],
                Some(&placed(&c.doc)),
            );
            Verdict::of(&o, &c.name)
        })
        .collect()
}

/// Until the API server stops calling a removed webhook: the probe is admitted again.
async fn wait_no_gate(cp: &ControlPlane, probe: &str) {
    eventually(Duration::from_secs(60), "no gate in effect", || async {
        let o = cp.kubectl_in(&["apply", "--dry-run=server", "-f", "-"], Some(probe));
        o.status.success().then_some(())
    })
    .await;
}

async fn supportgate_pass(cp: &ControlPlane, cases: &[Case], probe: &str) -> Vec<Verdict> {
    let certs = CertFiles::new();
    let mut op = Operator::start(cp, &certs, &[]);
    op.serve_admission(cp, &certs, VWC, NS, probe).await;
    let verdicts = run_all(cp, cases);
    unregister_webhook(cp, VWC)
        .await
        .expect("delete supportgate's webhook configuration");
    wait_no_gate(cp, probe).await;
    verdicts
}

fn kyverno_pass(cp: &ControlPlane, cases: &[Case], probe: &str) -> Vec<Verdict> {
    let mut ky = Kyverno::start(cp);
    ky.apply_and_wait(cp, &repo().join(POLICY), NS, probe);
    let urls = ky.webhook_urls(cp);
    assert!(
        !urls.is_empty(),
        "Kyverno registered no webhooks\n{}",
        ky.logs()
    );
    let base = format!("https://127.0.0.1:{}/", ky.webhook_port);
    for u in &urls {
        assert!(
            u.starts_with(&base),
            "a Kyverno webhook points elsewhere than {base}: {u}"
        );
    }
    let verdicts = run_all(cp, cases);
    ky.assert_running();
    verdicts
}

/// Why two verdicts differ, from the case's kind and the rules only one side named.
fn reason(case: &Case, sg: &Verdict, ky: &Verdict) -> String {
    match case.kind {
        Kind::InCluster => return why_not_written(Rule::AddonKubernetesIncompatible).into(),
        Kind::Update => {
            return "ratcheting: supportgate admits an update that adds no violation to an object that predates it; the Kyverno policy judges every update afresh".into();
        }
        Kind::Both => {}
    }
    let ours: BTreeSet<&str> = sg.deny.union(&sg.warn).copied().collect();
    let theirs: BTreeSet<&str> = ky.deny.union(&ky.warn).copied().collect();
    let common: BTreeSet<&str> = COMMON.iter().map(|r| r.id()).collect();
    let mut why: Vec<&str> = ours
        .symmetric_difference(&theirs)
        .filter(|id| !common.contains(*id))
        .filter_map(|id| Rule::ALL.iter().find(|r| r.id() == *id))
        .map(|r| why_not_written(*r))
        .collect();
    if sg.common() != ky.common() {
        why.push(FIRST_FAILURE);
    }
    why.dedup();
    why.join("; ")
}

#[tokio::test]
async fn supportgate_and_kyverno_agree_where_both_can_express_the_rule() {
    let cp = ControlPlane::shared();
    cp.install_crds();
    cp.install_crd_files("tests/fixtures/crds/");
    cp.create_namespace(NS);
    // Before any gate: the object the ratchet case updates.
    cp.kubectl_ok(&["apply", "-f", "-"], Some(&placed(&legacy())));

    let cases = corpus();
    assert!(cases.len() >= 30, "only {} objects", cases.len());
    let probe = placed(&Spec::release(3).konvoy_cluster("probe-unsupported"));
    let sg = supportgate_pass(cp, &cases, &probe).await;
    let ky = kyverno_pass(cp, &cases, &probe);

    let mut table = String::from(
        "| object | source | supportgate | Kyverno | why they differ |\n| --- | --- | --- | --- | --- |\n",
    );
    let mut agreed = 0;
    let mut disagreements = Vec::new();
    for ((c, s), k) in cases.iter().zip(&sg).zip(&ky) {
        let both =
            c.kind == Kind::Both && s.deny.iter().all(|id| COMMON.iter().any(|r| r.id() == *id));
        if both {
            if s.agrees(k) {
                agreed += 1;
            } else {
                disagreements.push(format!(
                    "{}: supportgate {} / Kyverno {}",
                    c.name,
                    s.show(),
                    k.show()
                ));
            }
        }
        if s != k {
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} |",
                c.name,
                c.source,
                s.show(),
                k.show(),
                reason(c, s, k)
            );
        }
    }
    println!(
        "\n{} objects, {agreed} where both express every rule that fired and agree\n",
        cases.len()
    );
    println!("{table}");
    if let Ok(path) = std::env::var("SG_PARITY_TABLE") {
        std::fs::write(&path, &table).expect("write the parity table");
    }
    assert!(
        disagreements.is_empty(),
        "verdicts differ where both can express the rule:\n{}",
        disagreements.join("\n")
    );
    assert!(agreed >= 30, "only {agreed} objects both can judge");

    // The ratchet row is measured, not claimed: supportgate admits the edit, Kyverno refuses it.
    let r = cases
        .iter()
        .position(|c| c.kind == Kind::Update)
        .expect("the ratchet case");
    assert!(
        !sg[r].denied,
        "supportgate refused a ratcheted update: {:?}",
        sg[r]
    );
    assert!(
        ky[r].denied,
        "Kyverno admitted the update of an unsupported cluster: {:?}",
        ky[r]
    );
}
