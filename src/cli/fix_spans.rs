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
#[path = "fix_spans_tests.rs"]
mod tests;
