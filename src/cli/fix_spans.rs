//! Where each scalar of a YAML or JSON text sits, by document and JSON pointer, so that `check
//! --fix` can replace exactly that scalar's bytes and nothing else: comments, key order, flow or
//! block style, quoting and line endings stay as written.
//!
//! The positions come from the YAML parser's marks (the same parser [`crate::cli::yaml11`]
//! decodes with); a JSON stream is cut into its values and each one read the same way, JSON being
//! YAML flow syntax.

use std::collections::HashMap;

use serde_json::Value;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

use crate::cli::yaml11::resolve_plain;

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
}

/// A scalar's bytes in the text, with its decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub style: Style,
    pub text: String,
}

/// A scalar that cannot be rewritten by replacing its bytes, and why.
pub type Spot = Result<Span, &'static str>;

/// (1-based document, JSON pointer inside it) to where its scalar is.
pub type Spans = HashMap<(usize, String), Spot>;

/// Every value scalar of `text`: YAML, or a JSON stream when it starts with `{` or `[` (as
/// [`crate::cli::input::parse`] decides).
pub fn spans(text: &str) -> Spans {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return yaml_spans(text, 0, 1);
    }
    let mut all = Spans::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut document = 1;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            Some(Ok(_)) => {
                let end = stream.byte_offset();
                // Each value becomes its own document 1 in the YAML reading: renumber.
                for ((_, pointer), spot) in yaml_spans(&text[start..end], start, 1) {
                    all.insert((document, pointer), spot);
                }
                document += 1;
            }
            _ => break,
        }
    }
    all
}

enum Frame {
    Seq(usize),
    /// The pending key; `None` while the next scalar is a key.
    Map(Option<String>),
}

/// The char-to-byte cursor: the parser counts characters, replacing needs bytes.
struct Cursor<'t> {
    text: &'t str,
    chars: usize,
    bytes: usize,
}

impl Cursor<'_> {
    /// The byte offset of character `index`; indices only grow as the parser moves on.
    fn byte_of(&mut self, index: usize) -> Option<usize> {
        if index < self.chars {
            return None;
        }
        let mut rest = self.text[self.bytes..].chars();
        while self.chars < index {
            self.bytes += rest.next()?.len_utf8();
            self.chars += 1;
        }
        Some(self.bytes)
    }
}

/// The scalars of a YAML text whose first byte is at `offset` of the whole file; documents are
/// numbered from `first`.
fn yaml_spans(text: &str, offset: usize, first: usize) -> Spans {
    let mut out = Spans::new();
    let mut parser = Parser::new_from_str(text);
    let mut cursor = Cursor {
        text,
        chars: 0,
        bytes: 0,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut document = first.saturating_sub(1);
    // A syntax error ends the walk: the decoder reports it, and nothing after it is rewritten.
    while let Ok((event, mark)) = parser.next_token() {
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                document += 1;
                stack.clear();
            }
            Event::Scalar(value, style, anchor, _) => {
                if let Some(Frame::Map(key @ None)) = stack.last_mut() {
                    *key = Some(key_text(&value, style));
                    continue;
                }
                let spot = locate(&mut cursor, mark.index(), &value, style, anchor).map(|s| Span {
                    start: s.start + offset,
                    end: s.end + offset,
                    ..s
                });
                out.insert((document, pointer(&stack)), spot);
                advance(&mut stack);
            }
            Event::Alias(_) => advance(&mut stack),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if let Some(Frame::Map(None)) = stack.last() {
                    return out; // a collection as a key: not JSON, nothing to rewrite past it
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(0)
                } else {
                    Frame::Map(None)
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                advance(&mut stack);
            }
            _ => {}
        }
    }
    out
}

/// After a value: the next index of a sequence, the next key of a mapping.
fn advance(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Seq(i)) => *i += 1,
        Some(Frame::Map(key)) => *key = None,
        None => {}
    }
}

fn pointer(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Seq(i) => out.push_str(&format!("/{i}")),
            Frame::Map(Some(k)) => {
                out.push('/');
                out.push_str(&k.replace('~', "~0").replace('/', "~1"));
            }
            Frame::Map(None) => {}
        }
    }
    out
}

/// A key as the decoder names it: a plain `on` is the key `true`, as kubectl reads it.
fn key_text(text: &str, style: TScalarStyle) -> String {
    if style != TScalarStyle::Plain {
        return text.to_string();
    }
    match resolve_plain(text) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => text.to_string(),
    }
}

/// The bytes of a scalar that starts at character `index`, when they read back as exactly its
/// text: single-line, no escapes, not anchored (its aliases would change with it).
fn locate(
    cursor: &mut Cursor,
    index: usize,
    text: &str,
    style: TScalarStyle,
    anchor: usize,
) -> Spot {
    if anchor != 0 {
        return Err("it carries an anchor, so its aliases would change too");
    }
    let (style, written) = match style {
        TScalarStyle::Plain => (Style::Plain, text.to_string()),
        TScalarStyle::SingleQuoted if !text.contains('\'') => (Style::Single, format!("'{text}'")),
        TScalarStyle::DoubleQuoted if !text.contains(['"', '\\']) => {
            (Style::Double, format!("\"{text}\""))
        }
        _ => return Err("it is a block scalar or holds escapes"),
    };
    let start = cursor.byte_of(index).ok_or("its position is unknown")?;
    if text.contains(['\n', '\r']) || !cursor.text[start..].starts_with(&written) {
        return Err("it spans lines");
    }
    Ok(Span {
        start,
        end: start + written.len(),
        style,
        text: text.to_string(),
    })
}

/// `value` written in `style`: a plain scalar is quoted when YAML 1.1 would read it as
/// something other than that text (an unquoted `1.20` is a number).
pub fn written(value: &str, style: Style) -> String {
    let plain_is_text = matches!(resolve_plain(value), Ok(Value::String(ref s)) if s == value)
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'));
    match style {
        Style::Plain if plain_is_text => value.to_string(),
        Style::Single => format!("'{value}'"),
        Style::Plain | Style::Double => format!("\"{value}\""),
    }
}

#[cfg(test)]
mod tests {
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
}
