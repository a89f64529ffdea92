use super::*;

#[test]
fn versions_parse_leniently() {
    let cases: &[(&str, (u64, u64, u64), bool)] = &[
        ("1.20.13", (1, 20, 13), false),
        ("v1.8.5", (1, 8, 5), false),
        ("V1.8.5", (1, 8, 5), false),
        (" 1.20.6 ", (1, 20, 6), false),
        ("1.16.9+d2iq.2", (1, 16, 9), false),
        ("1.21.3+fips.1", (1, 21, 3), false),
        ("v1.8.0-rc.1", (1, 8, 0), true),
        ("1.16.0-beta.0+d2iq", (1, 16, 0), true),
    ];
    for (input, triple, pre) in cases {
        let v: Version = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(v.triple(), *triple, "{input}");
        assert_eq!(v.is_prerelease(), *pre, "{input}");
    }
}

#[test]
fn build_metadata_does_not_change_identity() {
    let a: Version = "1.16.9+d2iq.2".parse().unwrap();
    let b: Version = "1.16.9".parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "1.16.9");
}

#[test]
fn bad_versions_are_rejected_with_reason() {
    assert_eq!("".parse::<Version>(), Err(VersionError::Empty));
    assert_eq!("  ".parse::<Version>(), Err(VersionError::Empty));
    assert!(matches!(
        "latest".parse::<Version>(),
        Err(VersionError::NotAVersion(_))
    ));
    assert!(matches!(
        "1.20".parse::<Version>(),
        Err(VersionError::NotAVersion(_))
    ));
    assert!(matches!(
        "1.20.x".parse::<Version>(),
        Err(VersionError::Wildcard(_))
    ));
    assert!(matches!(
        "1.20.*".parse::<Version>(),
        Err(VersionError::Wildcard(_))
    ));
    assert!(matches!(
        "1.2o.1".parse::<Version>(),
        Err(VersionError::NotAVersion(_))
    ));
    assert!(matches!(
        "1.020.1".parse::<Version>(),
        Err(VersionError::NotAVersion(_))
    ));
    assert!(matches!(
        "１.２０.１".parse::<Version>(),
        Err(VersionError::NotAVersion(_))
    ));
    assert!(matches!(
        "vv1.2.3".parse::<Version>(),
        Err(VersionError::NotAVersion(_))
    ));
    let e = "latest".parse::<Version>().unwrap_err().to_string();
    assert!(e.contains("latest") && e.contains("1.20.13"), "{e}");
}

#[test]
fn pre_release_orders_before_release() {
    let rc: Version = "1.8.0-rc.1".parse().unwrap();
    let ga: Version = "1.8.0".parse().unwrap();
    assert!(rc < ga);
}

#[test]
fn minors_parse() {
    assert_eq!("1.8".parse::<Minor>(), Ok(Minor::new(1, 8)));
    assert_eq!("v1.8".parse::<Minor>(), Ok(Minor::new(1, 8)));
    assert_eq!("1.8.x".parse::<Minor>(), Ok(Minor::new(1, 8)));
    assert_eq!("1.8.5".parse::<Minor>(), Ok(Minor::new(1, 8)));
    assert!("1".parse::<Minor>().is_err());
    assert!("1.8.5.1".parse::<Minor>().is_err());
    assert!("one.eight".parse::<Minor>().is_err());
    assert_eq!("".parse::<Minor>(), Err(VersionError::Empty));
    assert!(Minor::new(1, 10) > Minor::new(1, 9));
    assert!(Minor::new(2, 0) > Minor::new(1, 10));
}

#[test]
fn bounds_cover_both_sides() {
    let min: Bound = "1.18.x".parse().unwrap();
    let max: Bound = "1.20.x".parse().unwrap();
    let v = |s: &str| s.parse::<Version>().unwrap();
    assert!(!min.admits_as_min(&v("1.17.99")));
    assert!(min.admits_as_min(&v("1.18.0")));
    assert!(
        min.admits_as_min(&v("1.18.0-rc.1")),
        "pre-release of a minor inside the range"
    );
    assert!(max.admits_as_max(&v("1.20.99")));
    assert!(!max.admits_as_max(&v("1.21.0")));

    let exact_min: Bound = "1.15.4".parse().unwrap();
    assert!(!exact_min.admits_as_min(&v("1.15.3")));
    assert!(exact_min.admits_as_min(&v("1.15.4")));
    let exact_max: Bound = "1.17.8".parse().unwrap();
    assert!(exact_max.admits_as_max(&v("1.17.8")));
    assert!(!exact_max.admits_as_max(&v("1.17.9")));

    assert_eq!(
        "1.18".parse::<Bound>(),
        Ok(Bound::AnyPatch(Minor::new(1, 18)))
    );
    assert_eq!(
        "v1.18.X".parse::<Bound>(),
        Ok(Bound::AnyPatch(Minor::new(1, 18)))
    );
    assert!("1.18.y".parse::<Bound>().is_err());
    assert!("1".parse::<Bound>().is_err());
    assert!("".parse::<Bound>().is_err());
}

#[test]
fn range_ordering() {
    let b = |s: &str| s.parse::<Bound>().unwrap();
    assert!(b("1.18.x").le_as_range(&b("1.20.x")));
    assert!(b("1.20.x").le_as_range(&b("1.20.x")));
    assert!(b("1.20.3").le_as_range(&b("1.20.x")));
    assert!(!b("1.21.x").le_as_range(&b("1.20.x")));
    assert!(b("1.15.4").le_as_range(&b("1.15.4")));
    assert!(!b("1.15.5").le_as_range(&b("1.15.4")));
    assert!(!b("1.16.x").le_as_range(&b("1.15.9")));
}
