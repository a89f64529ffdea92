use super::*;

/// The general parser, as `from_str` ran before the plain path existed.
fn general(s: &str) -> Option<semver::Version> {
    let mut v = semver::Version::parse(strip_v(s.trim())).ok()?;
    v.build = semver::BuildMetadata::EMPTY;
    Some(v)
}

#[test]
fn the_plain_path_reads_what_the_general_parser_reads() {
    for s in [
        "1.18.13",
        "v1.6.3",
        "0.0.0",
        "10.200.3000",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1..3",
        ".1.2",
        "1.2.",
        "1.2.3-rc.1",
        "1.2.3+d2iq.2",
        "1.2.x",
        "1.x.3",
        "a.b.c",
        "1.2.3 ",
        " 1.2.3",
        "V1.2.3",
        "vv1.2.3",
        "1.2.-3",
        "1.2.+3",
        "9999999999999999999.0.0",
        "18446744073709551615.1.1",
        "18446744073709551616.1.1",
        "99999999999999999999.1.1",
        "1.2.3\u{0}",
        "１.2.3",
        "",
    ] {
        let fast = plain_triple(strip_v(s.trim()));
        if let Some(v) = &fast {
            assert_eq!(Some(v.as_semver().clone()), general(s), "{s:?}");
        }
        let parsed = s.parse::<Version>().ok().map(|v| v.as_semver().clone());
        let wildcard = strip_v(s.trim()).split(['-', '+']).next().is_some_and(|c| {
            c.split('.')
                .any(|p| p.eq_ignore_ascii_case("x") || p == "*")
        });
        if !wildcard {
            assert_eq!(parsed, general(s), "{s:?}");
        }
    }
    assert!(
        plain_triple("1.18.13").is_some(),
        "the usual case takes the plain path"
    );
}

#[test]
fn byte_splits_and_trim_agree_with_str() {
    for (text, sep) in [
        ("1.2.3", '.'),
        ("", '.'),
        (".a..b.", '.'),
        ("é.ü.", '.'),
        ("a-b", '-'),
    ] {
        let ours: Vec<&str> = ascii_split(text, sep as u8).collect();
        assert_eq!(ours, text.split(sep).collect::<Vec<_>>(), "{text:?}");
        assert_eq!(
            split_once_ascii(text, sep as u8),
            text.split_once(sep),
            "{text:?}"
        );
    }
    for text in [
        "",
        " ",
        " 1.2 ",
        "1.2",
        "\t1.2\n",
        "1.2\u{a0}",
        "\u{2003}1.2",
        "é",
    ] {
        assert_eq!(trim(text), text.trim(), "{text:?}");
    }
    assert!(
        plain_triple("18446744073709551616.1.1").is_none(),
        "past u64::MAX goes the long way, which refuses it"
    );
}
