use std::sync::Arc;

use jiff::civil::date;

use super::*;
use crate::api::ObjectCounts;
use crate::engine::Verdict;
use crate::engine::targets::FieldMask;

/// Issue #18, reproduction 2: a path with a typo resolves in no watched object; the policy
/// says so in `TargetFieldUnresolved` (and an event), and clears it once the path resolves.
#[test]
fn a_target_field_that_resolves_nowhere_raises_target_field_unresolved() {
    use crate::engine::targets::FieldKind;
    let yaml = format!(
        "{}  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields:\n      productVersion: $.spec.provisioner.verison\n      kubernetesVersion: $.spec.cluster.kubernetes.version\n",
        crate::engine::policy::DEFAULT_POLICY_YAML
    );
    let sp: SupportPolicy = serde_norway::from_str(&yaml).unwrap();
    let policy = Policy::compile(&sp).unwrap();
    let mut coverage = BTreeMap::new();
    let mut only_kubernetes = FieldMask::default();
    only_kubernetes.insert(FieldKind::KubernetesVersion);
    coverage
        .entry(0)
        .or_insert_with(TargetCoverage::default)
        .record(only_kubernetes);
    let c = fields_resolved(&sp, &policy, &coverage, None);
    assert_eq!(
        (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
        (UNRESOLVED, "True", "FieldMatchesNothing")
    );
    assert!(
        c.message
            .contains("productVersion `$.spec.provisioner.verison`"),
        "{}",
        c.message
    );
    let raised = SupportPolicyStatus {
        conditions: vec![c],
        ..SupportPolicyStatus::default()
    };
    assert!(newly_unresolved(None, &raised).is_some(), "announced once");
    assert_eq!(newly_unresolved(Some(&raised), &raised), None, "not twice");

    // Once the field resolves in one object, the condition clears.
    let mut both = only_kubernetes;
    both.insert(FieldKind::ProductVersion);
    coverage.get_mut(&0).unwrap().record(both);
    let c = fields_resolved(&sp, &policy, &coverage, Some(&raised));
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "AllFieldsResolved")
    );
}

#[test]
fn policy_status_counts_and_names_denials() {
    let sp: SupportPolicy =
        serde_norway::from_str(crate::engine::policy::DEFAULT_POLICY_YAML).unwrap();
    let mut t = Tally::default();
    t.add(Verdict::Allowed, "ns/a (KonvoyCluster)");
    t.add(Verdict::Warned, "ns/b (KonvoyCluster)");
    t.add(Verdict::Denied, "ns/d (KonvoyCluster)");
    t.add(Verdict::Denied, "ns/c (KonvoyCluster)");
    let today = date(2026, 11, 24);
    let source = PolicySource::compile(Arc::new(sp.clone()));
    let st = policy_status(&source, &t, today, 1, None);
    assert_eq!(st.latest.as_deref(), Some("1.8"));
    assert_eq!(st.supported.as_deref(), Some("1.8, 1.7, 1.6"));
    assert_eq!(
        st.objects,
        Some(ObjectCounts {
            allowed: 1,
            warned: 1,
            denied: 2
        })
    );
    assert_eq!(
        st.denied_objects,
        vec!["ns/c (KonvoyCluster)"],
        "sorted, capped at max_denied"
    );
    assert_eq!(st.conditions[0].status, "True");
    let again = policy_status(&source, &t, today, 1, Some(&st));
    assert_eq!(
        again.conditions[0].last_transition_time,
        st.conditions[0].last_transition_time
    );

    let mut bad = sp.clone();
    bad.spec.product[0].kubernetes.min = "1.99.x".into();
    let st = policy_status(&PolicySource::compile(Arc::new(bad)), &t, today, 20, None);
    assert_eq!(
        (
            st.conditions[0].status.as_str(),
            st.conditions[0].reason.as_str()
        ),
        ("False", "InvalidSpec")
    );
    assert!(
        st.conditions[0].message.contains("min 1.99.x is above max"),
        "{}",
        st.conditions[0].message
    );
    assert_eq!(st.objects, None, "no counts from an invalid policy");
}

#[test]
fn a_forbidden_kind_shows_in_the_policies_that_target_it() {
    let sp: SupportPolicy =
        serde_norway::from_str(crate::engine::policy::DEFAULT_POLICY_YAML).unwrap();
    let policy = Policy::compile(&sp).unwrap();
    let mut forbidden = BTreeMap::new();
    let ok = kinds_watched(&sp, &policy, &forbidden, None);
    assert_eq!(
        (ok.status.as_str(), ok.reason.as_str()),
        ("True", "Watching")
    );
    forbidden.insert(
        KindKey::new("example.dev", "v1", "Widget"),
        "widgets is forbidden".into(),
    );
    let other = kinds_watched(&sp, &policy, &forbidden, None);
    assert_eq!(other.status, "True", "a kind this policy does not target");
    forbidden.insert(
        KindKey::new("kommander.mesosphere.io", "v1beta1", "KonvoyCluster"),
        "konvoyclusters is forbidden".into(),
    );
    let refused = kinds_watched(&sp, &policy, &forbidden, None);
    assert_eq!(
        (refused.status.as_str(), refused.reason.as_str()),
        ("False", "Forbidden")
    );
    assert!(
        refused
            .message
            .contains("KonvoyCluster.kommander.mesosphere.io/v1beta1: konvoyclusters is forbidden")
            && !refused.message.contains("Widget")
            && refused
                .message
                .contains("supportgate.dev/aggregate-to-supportgate"),
        "{}",
        refused.message
    );
}

fn default_policy(name: &str) -> SupportPolicy {
    let mut sp: SupportPolicy =
        serde_norway::from_str(crate::engine::policy::DEFAULT_POLICY_YAML).unwrap();
    sp.metadata.name = Some(name.into());
    sp
}

/// The tally of `denied` denied and `allowed` allowed objects, and of one ClusterProvisioner
/// (the presets' target 2, which reads only `productVersion`) in which `resolved` resolved.
fn tally_of(allowed: usize, denied: &[&str], resolved: FieldMask) -> Tally {
    let mut t = Tally::default();
    for i in 0..allowed {
        t.add(Verdict::Allowed, &format!("ns/ok{i} (KonvoyCluster)"));
    }
    for d in denied {
        t.add(Verdict::Denied, d);
    }
    t.coverage.entry(2).or_default().record(resolved);
    t
}

/// (type, status, reason) of each condition, in order.
fn shown(st: &SupportPolicyStatus) -> Vec<(&str, &str, &str)> {
    st.conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect()
}

/// One status pass, row by row: what a policy shows given its tally (found by the policy's
/// name), the kinds this account may not watch, and the cap on the denied objects listed.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table: one row per case, each with its whole expected status"
)]
fn a_pass_gives_each_policy_the_status_its_tally_and_access_call_for() {
    use crate::engine::targets::FieldKind;
    let mut product = FieldMask::default();
    product.insert(FieldKind::ProductVersion);
    let konvoy = KindKey::new("kommander.mesosphere.io", "v1beta1", "KonvoyCluster");
    let widget = KindKey::new("example.dev", "v1", "Widget");
    let mut invalid = default_policy("default");
    invalid.spec.product[0].kubernetes.min = "1.99.x".into();

    const READY: (&str, &str, &str) = ("Ready", "True", "Valid");
    const UP_TO_DATE: (&str, &str, &str) = ("NewerVendorPolicy", "False", "UpToDate");
    const WATCHING: (&str, &str, &str) = ("KindsWatched", "True", "Watching");
    const RESOLVED: (&str, &str, &str) = (UNRESOLVED, "False", "AllFieldsResolved");
    struct Row {
        name: &'static str,
        policy: SupportPolicy,
        /// The policy name the tally is recorded under.
        tallied_as: &'static str,
        tally: Tally,
        forbidden: Vec<KindKey>,
        max_denied: usize,
        objects: Option<ObjectCounts>,
        denied: Vec<&'static str>,
        conditions: Vec<(&'static str, &'static str, &'static str)>,
    }
    let counts = |allowed, denied| {
        Some(ObjectCounts {
            allowed,
            warned: 0,
            denied,
        })
    };
    let rows = [
        Row {
            name: "no objects recorded: zero counts, nothing unresolved",
            policy: default_policy("default"),
            tallied_as: "default",
            tally: Tally::default(),
            forbidden: vec![],
            max_denied: 20,
            objects: counts(0, 0),
            denied: vec![],
            conditions: vec![READY, UP_TO_DATE, WATCHING, RESOLVED],
        },
        Row {
            name: "denied objects are named sorted, up to the cap",
            policy: default_policy("default"),
            tallied_as: "default",
            tally: tally_of(
                2,
                &[
                    "ns/z (KonvoyCluster)",
                    "ns/b (KonvoyCluster)",
                    "ns/m (KonvoyCluster)",
                ],
                product,
            ),
            forbidden: vec![],
            max_denied: 2,
            objects: counts(2, 3),
            denied: vec!["ns/b (KonvoyCluster)", "ns/m (KonvoyCluster)"],
            conditions: vec![READY, UP_TO_DATE, WATCHING, RESOLVED],
        },
        Row {
            name: "another policy's tally counts nothing here; no vendor condition off `default`",
            policy: default_policy("strict"),
            tallied_as: "default",
            tally: tally_of(1, &["ns/d (KonvoyCluster)"], FieldMask::default()),
            forbidden: vec![],
            max_denied: 20,
            objects: counts(0, 0),
            denied: vec![],
            conditions: vec![READY, WATCHING, RESOLVED],
        },
        Row {
            name: "a field that resolved in none of its objects",
            policy: default_policy("default"),
            tallied_as: "default",
            tally: tally_of(0, &[], FieldMask::default()),
            forbidden: vec![],
            max_denied: 20,
            objects: counts(0, 0),
            denied: vec![],
            conditions: vec![
                READY,
                UP_TO_DATE,
                WATCHING,
                (UNRESOLVED, "True", "FieldMatchesNothing"),
            ],
        },
        Row {
            name: "a refused kind the policy targets",
            policy: default_policy("default"),
            tallied_as: "default",
            tally: Tally::default(),
            forbidden: vec![widget.clone(), konvoy.clone()],
            max_denied: 20,
            objects: counts(0, 0),
            denied: vec![],
            conditions: vec![
                READY,
                UP_TO_DATE,
                ("KindsWatched", "False", "Forbidden"),
                RESOLVED,
            ],
        },
        Row {
            name: "a refused kind the policy does not target",
            policy: default_policy("default"),
            tallied_as: "default",
            tally: Tally::default(),
            forbidden: vec![widget.clone()],
            max_denied: 20,
            objects: counts(0, 0),
            denied: vec![],
            conditions: vec![READY, UP_TO_DATE, WATCHING, RESOLVED],
        },
        Row {
            name: "an invalid spec: Ready False alone, no counts, whatever is refused",
            policy: invalid,
            tallied_as: "default",
            tally: tally_of(1, &["ns/d (KonvoyCluster)"], FieldMask::default()),
            forbidden: vec![konvoy.clone()],
            max_denied: 20,
            objects: None,
            denied: vec![],
            conditions: vec![("Ready", "False", "InvalidSpec")],
        },
    ];
    for row in rows {
        let tallies: HashMap<String, Tally> = [(row.tallied_as.to_string(), row.tally)].into();
        let forbidden: BTreeMap<KindKey, String> = row
            .forbidden
            .into_iter()
            .map(|k| (k, "forbidden".to_string()))
            .collect();
        let pass = Pass {
            tallies: &tallies,
            forbidden: &forbidden,
            today: date(2026, 11, 24),
            max_denied: row.max_denied,
        };
        let source = PolicySource::compile(Arc::new(row.policy));
        let st = pass.status(&source, None);
        assert_eq!(st.objects, row.objects, "{}", row.name);
        assert_eq!(st.denied_objects, row.denied, "{}", row.name);
        assert_eq!(shown(&st), row.conditions, "{}", row.name);
        // Written again over itself, nothing moves: no condition's transition time either.
        assert_eq!(pass.status(&source, Some(&st)), st, "{}", row.name);
    }
}

/// (type, status, reason, message) of each condition.
type Cs = Vec<(&'static str, &'static str, &'static str, &'static str)>;
/// (type, reason, action) of an event.
type Announced = (EventType, String, &'static str);

fn status_with(conditions: &[(&str, &str, &str, &str)]) -> SupportPolicyStatus {
    SupportPolicyStatus {
        conditions: conditions
            .iter()
            .map(|(type_, status, reason, message)| Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message: message.to_string(),
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
                observed_generation: None,
            })
            .collect(),
        ..SupportPolicyStatus::default()
    }
}

/// What a write announces, row by row: each news once, in a fixed order.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table: one row per case, each with the statuses before and after"
)]
fn a_write_announces_what_it_newly_shows() {
    let ready = ("Ready", "True", "Valid", "1.8, 1.7, 1.6");
    let invalid = ("Ready", "False", "InvalidSpec", "min 1.99.x is above max");
    let invalid_too = ("Ready", "False", "InvalidSpec", "min 1.98.x is above max");
    let unresolved_targets = ("Ready", "False", "TargetsUnresolved", "no such kind");
    let typo = (
        UNRESOLVED,
        "True",
        "FieldMatchesNothing",
        "productVersion `$.spec.verison`",
    );
    let other_typo = (
        UNRESOLVED,
        "True",
        "FieldMatchesNothing",
        "productVersion `$.spec.vers`",
    );
    let resolved = (
        UNRESOLVED,
        "False",
        "AllFieldsResolved",
        "every target field resolves",
    );
    let newer = (
        vendor::CONDITION_TYPE,
        "True",
        vendor::REASON_NEWER,
        "knows Konvoy 1.9",
    );
    let up_to_date = (
        vendor::CONDITION_TYPE,
        "False",
        vendor::REASON_UP_TO_DATE,
        "knows none",
    );
    let not_ready = |reason: &str| (EventType::Warning, reason.to_string(), "Compile");
    let compared = |reason: &str| {
        let action = "CompareWithEmbeddedDefault";
        (EventType::Normal, reason.to_string(), action)
    };
    // (case, last written, stored on the policy, now, the events announced)
    type Row = (&'static str, Option<Cs>, Option<Cs>, Cs, Vec<Announced>);
    let rows: Vec<Row> = vec![
        (
            "first write, valid",
            None,
            None,
            vec![ready, resolved],
            vec![],
        ),
        (
            "turns invalid",
            Some(vec![ready]),
            None,
            vec![invalid],
            vec![not_ready("InvalidSpec")],
        ),
        (
            "first write, invalid",
            None,
            None,
            vec![invalid],
            vec![not_ready("InvalidSpec")],
        ),
        (
            "still invalid, for the same reason",
            Some(vec![invalid]),
            None,
            vec![invalid_too],
            vec![],
        ),
        (
            "still not ready, for another reason",
            Some(vec![invalid]),
            None,
            vec![unresolved_targets],
            vec![not_ready("TargetsUnresolved")],
        ),
        (
            "a field turns unresolved",
            Some(vec![ready, resolved]),
            None,
            vec![ready, typo],
            vec![compared(UNRESOLVED)],
        ),
        (
            "still unresolved, same fields",
            Some(vec![ready, typo]),
            None,
            vec![ready, typo],
            vec![],
        ),
        (
            "still unresolved, other fields",
            Some(vec![ready, typo]),
            None,
            vec![ready, other_typo],
            vec![compared(UNRESOLVED)],
        ),
        (
            "the field resolves again",
            Some(vec![ready, typo]),
            None,
            vec![ready, resolved],
            vec![],
        ),
        (
            "a newer vendor policy, first seen",
            None,
            None,
            vec![ready, newer],
            vec![compared(vendor::REASON_NEWER)],
        ),
        (
            "a newer vendor policy the stored status already shows",
            None,
            Some(vec![ready, newer]),
            vec![ready, newer],
            vec![],
        ),
        (
            "up to date",
            None,
            Some(vec![ready, newer]),
            vec![ready, up_to_date],
            vec![],
        ),
        (
            "all at once, in order",
            Some(vec![ready, resolved]),
            Some(vec![ready, up_to_date]),
            vec![invalid, typo, newer],
            vec![
                compared(UNRESOLVED),
                not_ready("InvalidSpec"),
                compared(vendor::REASON_NEWER),
            ],
        ),
    ];
    for (name, before, stored, now, want) in rows {
        let before = before.map(|c| status_with(&c));
        let stored = stored.map(|c| status_with(&c));
        let now = status_with(&now);
        let got: Vec<_> = announcements(before.as_ref(), stored.as_ref(), &now)
            .into_iter()
            .map(|n| (n.type_, n.reason, n.action))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_flip_summary_warns_when_any_object_is_now_denied() {
    let some_denied = Flips {
        allowed: 1,
        warned: 0,
        denied: 1,
    };
    let none_denied = Flips {
        allowed: 2,
        warned: 1,
        denied: 0,
    };
    for (flips, type_) in [
        (some_denied, EventType::Warning),
        (none_denied, EventType::Normal),
    ] {
        let note = flips_note(&flips, 7);
        assert_eq!(
            (note.type_, note.reason.as_str(), note.action),
            (type_, summary::REASON, "Evaluate")
        );
        assert_eq!(note.note, flips.note(7));
    }
}
