use super::*;

fn at<'a>(s: &'a Spans, doc: usize, pointer: &str) -> &'a Spot {
    s.get(&(doc, pointer.to_string()))
        .unwrap_or_else(|| panic!("{pointer} not found in {s:#?}"))
}

#[test]
fn block_flow_and_quoted_scalars_are_found_by_pointer() {
    let text = "# c\na: {b: 'x', c: [1, \"é\", v1.2.3]} # tail\n---\nlist:\n- k: plain # note\n  on: yes\n";
    let s = spans(text);
    let span = at(&s, 1, "/a/c/2").clone().unwrap();
    assert_eq!(
        &text[span.start..span.end],
        "v1.2.3",
        "after a multi-byte char"
    );
    assert_eq!(span.style, Style::Plain);
    let span = at(&s, 1, "/a/b").clone().unwrap();
    assert_eq!(
        (&text[span.start..span.end], span.style),
        ("'x'", Style::Single)
    );
    let span = at(&s, 1, "/a/c/1").clone().unwrap();
    assert_eq!(&text[span.start..span.end], "\"é\"");
    let span = at(&s, 2, "/list/0/k").clone().unwrap();
    assert_eq!(&text[span.start..span.end], "plain");
    assert!(
        at(&s, 2, "/list/0/true").is_ok(),
        "a plain `on` key is `true`"
    );
}

#[test]
fn what_cannot_be_replaced_in_place_says_why() {
    let text = "a: &x 1.2.3\nb: *x\nc: |\n  1.2.3\nd: \"1.2\\u002e3\"\ne: 1.2\n  .3\n";
    let s = spans(text);
    assert!(at(&s, 1, "/a").is_err(), "anchored");
    assert!(
        !s.contains_key(&(1, "/b".to_string())),
        "an alias is no scalar of its own"
    );
    assert!(at(&s, 1, "/c").is_err(), "block");
    assert!(at(&s, 1, "/d").is_err(), "escapes");
    assert!(at(&s, 1, "/e").is_err(), "multi-line plain");
}

#[test]
fn json_streams_number_their_values() {
    let text = "{\"a\": \"1\"}\n{\"b\": [\"x\", {\"c\": \"v1.8.5\"}]}\n";
    let s = spans(text);
    let span = at(&s, 2, "/b/1/c").clone().unwrap();
    assert_eq!(&text[span.start..span.end], "\"v1.8.5\"");
    assert_eq!(span.style, Style::Double);
    assert!(at(&s, 1, "/a").is_ok());
}

#[test]
fn values_keep_their_quoting_and_stay_text() {
    assert_eq!(written("1.19.15", Style::Plain), "1.19.15");
    assert_eq!(written("1.20", Style::Plain), "\"1.20\"", "else a number");
    assert_eq!(written("yes", Style::Plain), "\"yes\"", "else a boolean");
    assert_eq!(written("1.19.15", Style::Single), "'1.19.15'");
    assert_eq!(written("1.19.15", Style::Double), "\"1.19.15\"");
}
