//! YAML decoded the way `kubectl` decodes it before sending JSON to the API server.
//!
//! kubectl converts YAML with a YAML 1.1 resolver (go-yaml v2 via sigs.k8s.io/yaml): an unquoted
//! `yes`, `on` or `y` is the boolean `true`, an unquoted `1.20` is the number `1.2`, `0755` is
//! octal. A YAML 1.2 reader (serde_yaml and its forks) keeps `yes` a string, so `check` would judge
//! a different object than the webhook receives. This module resolves plain scalars with the
//! YAML 1.1 rules and records where it turned text into something else, so the report can say so.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// An alias expands to a copy of its anchor; this caps a document's size after expansion, so a
/// "billion laughs" input is refused instead of exhausting memory.
const MAX_NODES_PER_DOCUMENT: usize = 1_000_000;
/// Nesting deeper than this is refused (as serde_json and serde_yaml do at 128): dropping and
/// walking a `Value` recurses, and a hostile file must not overflow the stack.
const MAX_DEPTH: usize = 128;

/// An unquoted scalar that the YAML 1.1 rules turned into something other than its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Coercion {
    /// Where, rendered like the engine's field paths (`spec.addons[0].enabled`).
    pub field: String,
    /// The scalar as written.
    pub text: String,
    pub value: Value,
}

/// One decoded document: its 1-based index in the stream.
#[derive(Debug)]
pub struct Document {
    pub index: usize,
    pub value: Value,
    pub coercions: Vec<Coercion>,
}

/// A problem at a line and column (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub document: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Decodes every document of a YAML stream. A document with a problem is reported and skipped;
/// after a syntax error the rest of the stream is, since the parser cannot resynchronise.
pub fn decode(text: &str) -> (Vec<Document>, Vec<DecodeError>) {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    let mut builder: Option<Builder> = None;
    let mut index = 0;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(e) => e,
            Err(e) => {
                errors.push(DecodeError {
                    document: index.max(1),
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                    message: e.info().to_string(),
                });
                break;
            }
        };
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => {}
            Event::DocumentStart => {
                index += 1;
                builder = Some(Builder::default());
            }
            Event::DocumentEnd => match builder.take().map(Builder::finish) {
                Some(Ok((value, coercions))) => docs.push(Document {
                    index,
                    value,
                    coercions,
                }),
                Some(Err((m, message))) => errors.push(error_at(index, &m, message)),
                None => {}
            },
            other => {
                if let Some(b) = builder.as_mut() {
                    b.on_event(other, mark);
                }
            }
        }
    }
    (docs, errors)
}

fn error_at(document: usize, m: &Marker, message: String) -> DecodeError {
    DecodeError {
        document,
        line: m.line(),
        column: m.col() + 1,
        message,
    }
}

enum Key {
    Name(String),
    /// `<<`: the value's entries are merged into the mapping, as go-yaml does (in order).
    Merge,
}

enum Frame {
    Seq(usize, Vec<Value>),
    /// Anchor, entries, the pending key, and the keys written explicitly (merged ones may be
    /// overridden; an explicit key twice is an error).
    Map(usize, Map<String, Value>, Option<Key>, HashSet<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    root: Option<Value>,
    coercions: Vec<Coercion>,
    nodes: usize,
    error: Option<(Marker, String)>,
}

impl Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        if let Err(message) = self.apply(event) {
            self.error = Some((mark, message));
        }
    }

    fn apply(&mut self, event: Event) -> Result<(), String> {
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_DEPTH
        {
            return Err(format!(
                "nested deeper than {MAX_DEPTH} levels; refusing it"
            ));
        }
        match event {
            Event::SequenceStart(anchor, tag) => {
                collection_tag(tag.as_ref(), "seq")?;
                self.stack.push(Frame::Seq(anchor, Vec::new()));
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(tag.as_ref(), "map")?;
                self.stack
                    .push(Frame::Map(anchor, Map::new(), None, HashSet::new()));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(anchor, items)) => self.complete(Value::Array(items), anchor),
                Some(Frame::Map(anchor, map, None, _)) => self.complete(Value::Object(map), anchor),
                Some(Frame::Map(..)) => Err("a mapping key has no value".into()),
                None => Err("unbalanced collection".into()),
            },
            Event::Alias(id) => {
                let v = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or("an alias refers to an unknown anchor")?;
                self.count(size(&v))?;
                self.complete(v, 0)
            }
            Event::Scalar(text, style, anchor, tag) => self.scalar(text, style, anchor, tag),
            _ => Ok(()),
        }
    }

    fn scalar(
        &mut self,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
    ) -> Result<(), String> {
        // A scalar in key position becomes the pending key.
        if let Some(Frame::Map(_, _, key @ None, _)) = self.stack.last_mut() {
            let plain = style == TScalarStyle::Plain && tag.is_none();
            *key = Some(if plain && text == "<<" {
                Key::Merge
            } else {
                Key::Name(key_text(resolve(&text, style, tag.as_ref())?))
            });
            return Ok(());
        }
        let implicit = style == TScalarStyle::Plain && tag.is_none();
        let value = resolve(&text, style, tag.as_ref())?;
        if implicit && value != Value::String(text.clone()) && value != Value::Null {
            self.coercions.push(Coercion {
                field: self.field(),
                text,
                value: value.clone(),
            });
        }
        self.complete(value, anchor)
    }

    fn complete(&mut self, value: Value, anchor: usize) -> Result<(), String> {
        self.count(1)?;
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq(_, items)) => items.push(value),
            Some(Frame::Map(_, _, None, _)) => {
                return Err("a mapping key must be a scalar (kubectl sends JSON)".into());
            }
            Some(Frame::Map(_, map, key, explicit)) => match key.take() {
                Some(Key::Merge) => merge(map, value)?,
                Some(Key::Name(k)) => {
                    if !explicit.insert(k.clone()) {
                        return Err(format!("duplicate mapping key {k:?}"));
                    }
                    map.insert(k, value);
                }
                None => unreachable!("matched above"),
            },
        }
        Ok(())
    }

    fn count(&mut self, n: usize) -> Result<(), String> {
        self.nodes += n;
        if self.nodes > MAX_NODES_PER_DOCUMENT {
            return Err(format!(
                "more than {MAX_NODES_PER_DOCUMENT} nodes after expanding aliases; refusing it"
            ));
        }
        Ok(())
    }

    /// The path of the value being completed, in the engine's field syntax.
    fn field(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Seq(_, items) => out.push_str(&format!("[{}]", items.len())),
                Frame::Map(_, _, Some(Key::Name(k)), _) => push_name(&mut out, k),
                Frame::Map(..) => {}
            }
        }
        out
    }

    fn finish(self) -> Result<(Value, Vec<Coercion>), (Marker, String)> {
        match self.error {
            Some(e) => Err(e),
            None => Ok((self.root.unwrap_or(Value::Null), self.coercions)),
        }
    }
}

/// Renders a map key into a field path as [`crate::engine::targets::select`] does.
pub fn push_name(out: &mut String, name: &str) {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(name);
    } else {
        out.push_str(&format!("['{name}']"));
    }
}

fn merge(map: &mut Map<String, Value>, value: Value) -> Result<(), String> {
    match value {
        Value::Object(m) => map.extend(m),
        Value::Array(items) => {
            for item in items {
                let Value::Object(m) = item else {
                    return Err("a merge key (<<) takes a mapping or a list of mappings".into());
                };
                map.extend(m);
            }
        }
        _ => return Err("a merge key (<<) takes a mapping or a list of mappings".into()),
    }
    Ok(())
}

fn size(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(size).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

/// A non-string key becomes its JSON text, as sigs.k8s.io/yaml does (`on:` is the key "true").
fn key_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == expected => Ok(()),
        Some(t) => Err(format!("unsupported tag {}{}", t.handle, t.suffix)),
    }
}

/// A scalar's value: quoted and block scalars are strings; plain ones go through the YAML 1.1
/// resolver; `!!str`, `!!int`, `!!float`, `!!bool` and `!!null` are honoured.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let Some(tag) = tag else {
        return if style == TScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Ok(Value::String(text.to_string()))
        };
    };
    if tag.handle == "!" && tag.suffix.is_empty() {
        return Ok(Value::String(text.to_string()));
    }
    if tag.handle != "tag:yaml.org,2002:" {
        return Err(format!("unsupported tag {}{}", tag.handle, tag.suffix));
    }
    let v = resolve_plain(text);
    let fits = match (tag.suffix.as_str(), &v) {
        ("str", _) => return Ok(Value::String(text.to_string())),
        ("bool", Ok(Value::Bool(_))) | ("null", Ok(Value::Null)) => true,
        ("int", Ok(Value::Number(n))) => n.is_i64() || n.is_u64(),
        ("float", Ok(Value::Number(_))) => true,
        _ => false,
    };
    if fits {
        v
    } else {
        Err(format!("{text:?} is not a valid !!{}", tag.suffix))
    }
}

/// go-yaml v2's resolver for an untagged plain scalar.
pub fn resolve_plain(s: &str) -> Result<Value, String> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return Ok(Value::Bool(true));
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return Ok(Value::Bool(false));
        }
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            return Err(format!(
                "{s} is not a number JSON can carry (kubectl refuses it too); quote it"
            ));
        }
        _ => {}
    }
    if !s.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '+' | '-' | '.')) {
        return Ok(Value::String(s.to_string()));
    }
    // go-yaml resolves `2024-1-2` as a timestamp, but kubectl's decoder keeps timestamps as the
    // text written (the e2e test checks it), so a date falls through to a string below.
    let plain = s.replace('_', "");
    if let Some(n) = go_parse_int(&plain) {
        return Ok(Value::Number(n));
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
        && f.is_finite()
    {
        return Ok(Value::Number(float_number(f)));
    }
    Ok(Value::String(s.to_string()))
}

/// Go's `strconv.ParseInt(s, 0, 64)`, then `ParseUint`: `0x`, `0o`, `0b` prefixes and a leading
/// `0` for octal.
fn go_parse_int(s: &str) -> Option<Number> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let v = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Number::from(v))
    } else if s.starts_with('+') {
        // ParseUint takes no sign, so `+` only reaches int64.
        i64::try_from(magnitude).ok().map(Number::from)
    } else {
        Some(Number::from(magnitude))
    }
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((int, frac)) => !int.is_empty() && all_digits(int) && all_digits(frac),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Go encodes a whole float64 without a fraction (`3`, not `3.0`), and the API server then holds
/// an integer: do the same so the engine sees what the webhook sees.
fn float_number(f: f64) -> Number {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Number::from(f as i64)
    } else {
        Number::from_f64(f).unwrap_or_else(|| Number::from(0))
    }
}

#[cfg(test)]
#[path = "yaml11_tests.rs"]
mod tests;
