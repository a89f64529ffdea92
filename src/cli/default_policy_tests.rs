use super::*;

fn run_on(path: &str) -> (u8, String) {
    let mut out = Vec::new();
    let code = run(
        &DefaultPolicyArgs {
            diff: Some(path.into()),
        },
        &mut out,
    )
    .unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn without_diff_it_prints_the_embedded_policy() {
    let mut out = Vec::new();
    assert_eq!(run(&DefaultPolicyArgs::default(), &mut out).unwrap(), 0);
    assert_eq!(out, DEFAULT_POLICY_YAML.as_bytes());
}

#[test]
fn the_embedded_policy_has_no_diff_and_an_older_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("same.yaml");
    std::fs::write(&same, DEFAULT_POLICY_YAML).unwrap();
    let (code, text) = run_on(same.to_str().unwrap());
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("is the embedded default of supportgate"),
        "{text}"
    );

    // An older vendor policy: the 1.8 entry is not there yet.
    let start = DEFAULT_POLICY_YAML.find("  - version: \"1.8\"").unwrap();
    let end = DEFAULT_POLICY_YAML.find("  - version: \"1.7\"").unwrap();
    let older = format!(
        "{}{}",
        &DEFAULT_POLICY_YAML[..start],
        &DEFAULT_POLICY_YAML[end..]
    );
    let old = dir.path().join("old.yaml");
    std::fs::write(&old, older).unwrap();
    let (code, text) = run_on(old.to_str().unwrap());
    assert_eq!(code, 1, "{text}");
    assert!(text.starts_with(&format!("--- {}\n+++ the embedded default", old.display())));
    assert!(
        text.contains("+ product 1.8: only in the vendor's policy; the entry to add:\n"),
        "{text}"
    );
    assert!(text.contains("+       max: 1.20.x\n"), "{text}");
    assert!(text.contains("The embedded default knows 1.8, which this policy lacks."));
}

#[test]
fn a_file_that_is_not_a_policy_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let err = run(
        &DefaultPolicyArgs {
            diff: Some(bad.to_str().unwrap().into()),
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a SupportPolicy"), "{err}");
}
