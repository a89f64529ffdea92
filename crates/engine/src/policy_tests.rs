use super::*;
use jiff::civil::date;

fn today() -> Date {
    date(2026, 11, 24)
}

#[test]
fn embedded_default_matches_the_seed() {
    let p = Policy::embedded_default();
    assert_eq!(p.name, "default");
    assert_eq!(
        p.supported(today()),
        vec![Minor::new(1, 8), Minor::new(1, 7), Minor::new(1, 6)]
    );
    assert_eq!(p.latest(today()).unwrap().minor, Minor::new(1, 8));
    let r18 = p.release(Minor::new(1, 8)).unwrap();
    assert_eq!(r18.kubernetes_range(), "1.18.x to 1.20.x");
    assert_eq!(
        r18.kubernetes_default.as_ref().unwrap().to_string(),
        "1.20.6"
    );
    assert_eq!(r18.kommander, Some(Minor::new(1, 4)));
    assert_eq!(
        p.release(Minor::new(1, 7)).unwrap().kommander,
        Some(Minor::new(1, 3))
    );
    assert_eq!(
        p.release(Minor::new(1, 6)).unwrap().kommander,
        Some(Minor::new(1, 2))
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 6)).unwrap(), today()),
        ReleaseSupport::OldestInWindow
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 5)).unwrap(), today()),
        ReleaseSupport::OutOfWindow
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 4)).unwrap(), today()),
        ReleaseSupport::OutOfWindow
    );
    for m in [(1, 8), (1, 7), (1, 6)] {
        let exp = &p.release(Minor::new(m.0, m.1)).unwrap().experimental_addons;
        assert_eq!(
            exp.iter().map(String::as_str).collect::<Vec<_>>(),
            ["ambassador", "istio", "jaeger", "kiali"]
        );
    }
    assert_eq!(p.window_text(today()), "N-2 of latest 1.8");
    assert!(p.is_production(&BTreeMap::from([(
        "environment".into(),
        "production".into()
    )])));
    assert!(!p.is_production(&BTreeMap::from([("environment".into(), "staging".into())])));
    assert_eq!(p.targets().len(), 6, "no targets named: the presets apply");
}

#[test]
fn history_example_compiles() {
    let p = Policy::from_yaml(include_str!(
        "../../../examples/policies/konvoy-1x-history.yaml"
    ))
    .unwrap();
    // 1.8 carries an explicit end of support that overrides the window.
    let r18 = p.release(Minor::new(1, 8)).unwrap();
    assert_eq!(
        p.support_of(r18, date(2022, 12, 30)),
        ReleaseSupport::EndingOn(date(2022, 12, 31))
    );
    assert_eq!(
        p.support_of(r18, date(2022, 12, 31)),
        ReleaseSupport::EndedOn(date(2022, 12, 31))
    );
    assert_eq!(
        p.support_of(r18, date(2022, 1, 1)),
        ReleaseSupport::Supported
    );
}

fn with_release(extra: &str) -> Policy {
    let yaml = DEFAULT_POLICY_YAML.replace("  product:\n", &format!("  product:\n{extra}"));
    Policy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_new_minor_pushes_the_oldest_out() {
    let p = with_release(
        "  - version: \"1.9\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n    kommander: \"1.5\"\n",
    );
    assert_eq!(
        p.supported(today()),
        vec![Minor::new(1, 9), Minor::new(1, 8), Minor::new(1, 7)]
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 6)).unwrap(), today()),
        ReleaseSupport::OutOfWindow
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 7)).unwrap(), today()),
        ReleaseSupport::OldestInWindow
    );
}

#[test]
fn a_future_release_moves_the_window_on_its_day() {
    let p = with_release(
        "  - version: \"1.9\"\n    releaseDate: \"2027-01-15\"\n    kubernetes: {min: 1.19.x, max: 1.21.x}\n",
    );
    assert_eq!(
        p.supported(today()),
        vec![Minor::new(1, 8), Minor::new(1, 7), Minor::new(1, 6)]
    );
    assert_eq!(p.next_transition(today()), Some(date(2027, 1, 15)));
    assert_eq!(
        p.supported(date(2027, 1, 15)),
        vec![Minor::new(1, 9), Minor::new(1, 8), Minor::new(1, 7)]
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 9)).unwrap(), date(2027, 1, 14)),
        ReleaseSupport::NotYetReleased(date(2027, 1, 15))
    );
}

#[test]
fn end_of_support_overrides_the_window_both_ways() {
    let yaml = DEFAULT_POLICY_YAML
        .replace(
            "kommander: \"1.1\"",
            "kommander: \"1.1\"\n    endOfSupport: \"2027-06-01\"",
        )
        .replace(
            "kommander: \"1.4\"\n",
            "kommander: \"1.4\"\n    endOfSupport: \"2026-01-01\"\n",
        );
    let p = Policy::from_yaml(&yaml).unwrap();
    let r15 = p.release(Minor::new(1, 5)).unwrap();
    assert_eq!(
        p.support_of(r15, today()),
        ReleaseSupport::Supported,
        "extended past the window"
    );
    assert_eq!(
        p.support_of(r15, date(2027, 3, 3)),
        ReleaseSupport::EndingOn(date(2027, 6, 1)),
        "90 days before"
    );
    assert_eq!(
        p.support_of(r15, date(2027, 3, 2)),
        ReleaseSupport::Supported
    );
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 8)).unwrap(), today()),
        ReleaseSupport::EndedOn(date(2026, 1, 1))
    );
    assert_eq!(p.next_transition(today()), Some(date(2027, 3, 3)));
}

#[test]
fn invalid_specs_list_every_problem() {
    let yaml = DEFAULT_POLICY_YAML
        .replace(
            "{min: 1.18.x, max: 1.20.x, default: 1.20.6}",
            "{min: 1.21.x, max: 1.20.x, default: 1.19.1}",
        )
        .replace("version: \"1.7\"", "version: \"1.8\"")
        .replace("releaseDate: \"2020-11-16\"", "releaseDate: \"16.11.2020\"")
        .replace("min: 1.15.4, max: 1.17.x", "min: latest, max: 1.17.x")
        .replace("kommander: \"1.0\"", "kommander: \"one\"");
    let Err(PolicyError::Invalid(problems)) = Policy::from_yaml(&yaml) else {
        panic!("accepted")
    };
    let all = problems.join("\n");
    for needle in [
        "spec.product[0].kubernetes: min 1.21.x is above max 1.20.x",
        "spec.product[0].kubernetes.default: 1.19.1 is outside",
        "spec.product[1].version: 1.8 is listed twice",
        "spec.product[2].releaseDate: `16.11.2020` is not a date",
        "spec.product[3].kubernetes.min",
        "spec.product[4].kommander",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
}

#[test]
fn decode_errors_are_reported() {
    assert!(matches!(
        Policy::from_yaml("spec: [1, 2"),
        Err(PolicyError::Decode(_))
    ));
    let unknown = DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: three");
    assert!(matches!(
        Policy::from_yaml(&unknown),
        Err(PolicyError::Decode(_))
    ));
}

#[test]
fn window_of_one_never_warns_nearing_end() {
    let p = Policy::from_yaml(&DEFAULT_POLICY_YAML.replace("supportWindow: 3", "supportWindow: 1"))
        .unwrap();
    assert_eq!(
        p.support_of(p.release(Minor::new(1, 8)).unwrap(), today()),
        ReleaseSupport::Supported
    );
    assert_eq!(p.supported(today()), vec![Minor::new(1, 8)]);
    assert_eq!(p.window_text(today()), "N of latest 1.8");
}

fn with_target_fields(fields: &str) -> Result<Policy, PolicyError> {
    Policy::from_yaml(&format!(
        "{DEFAULT_POLICY_YAML}  targets:\n  - apiGroup: kommander.mesosphere.io\n    kind: KonvoyCluster\n    resource: konvoyclusters\n    fields: {fields}\n"
    ))
}

#[test]
fn a_target_that_checks_nothing_is_refused() {
    for fields in [
        "{}",
        "{kubernetesVersion: $.spec.k8s}",
        "{kommanderRef: $.spec.k}",
    ] {
        let Err(PolicyError::Invalid(p)) = with_target_fields(fields) else {
            panic!("{fields}: accepted")
        };
        assert!(
            p.iter().any(|m| m.starts_with(
                "spec.targets[0] (KonvoyCluster).fields: a target must name productVersion"
            )),
            "{fields}: {p:?}"
        );
    }
    for fields in [
        "{productVersion: $.spec.v}",
        "{kudoOperator: $.metadata.name}",
        "{kbaRef: $.spec.kba}",
    ] {
        with_target_fields(fields).unwrap_or_else(|e| panic!("{fields}: {e}"));
    }
    let Err(PolicyError::Decode(e)) = with_target_fields("{productVersoin: $.spec.v}") else {
        panic!("a misspelled key is accepted")
    };
    assert!(e.contains("unknown field `productVersoin`"), "{e}");
}

#[test]
fn missing_version_is_warn_unless_the_policy_says_deny() {
    assert_eq!(Policy::embedded_default().missing_version, Severity::Warn);
    let deny =
        Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  missingVersion: Deny\n")).unwrap();
    assert_eq!(deny.missing_version, Severity::Deny);
    assert!(matches!(
        Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  missingVersion: Maybe\n")),
        Err(PolicyError::Decode(_))
    ));
}

#[test]
fn unidentified_refs_is_warn_unless_the_policy_says_deny() {
    assert_eq!(Policy::embedded_default().unidentified_refs, Severity::Warn);
    let deny =
        Policy::from_yaml(&format!("{DEFAULT_POLICY_YAML}  unidentifiedRefs: Deny\n")).unwrap();
    assert_eq!(deny.unidentified_refs, Severity::Deny);
    assert!(matches!(
        Policy::from_yaml(&format!(
            "{DEFAULT_POLICY_YAML}  unidentifiedRefs: Ignore\n"
        )),
        Err(PolicyError::Decode(_))
    ));
}

#[test]
fn empty_production_selector_is_refused() {
    let yaml = DEFAULT_POLICY_YAML.replace(
        "    matchLabels:\n      environment: production\n",
        "    {}\n",
    );
    let Err(PolicyError::Invalid(p)) = Policy::from_yaml(&yaml) else {
        panic!("accepted")
    };
    assert!(
        p.iter().any(|m| m.contains("every cluster as production")),
        "{p:?}"
    );
}
