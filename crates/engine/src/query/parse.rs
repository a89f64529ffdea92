//! Reading a query text as a plain walk.

use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

use super::MAX_STEPS;
use super::walk::{Filter, Rel, Step, Test, Walk};
use crate::finite_pattern::Finite;
use crate::jsonpath_functions::{match_regex, search_regex};

impl Walk {
    pub(super) fn parse(text: &str) -> Option<Walk> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        p.eat(b'$')?;
        let mut steps = Vec::new();
        while !p.done() {
            steps.push(p.segment()?);
        }
        (steps.len() <= MAX_STEPS).then_some(Walk { steps })
    }
}

/// A strict reader of the plain subset; `None` for anything else, which then runs in full.
/// The text has already been accepted by serde_json_path.
struct Parser<'t> {
    s: &'t [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.i += 1)
    }

    fn eat_str(&mut self, word: &str) -> Option<()> {
        self.s[self.i..]
            .starts_with(word.as_bytes())
            .then(|| self.i += word.len())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn segment(&mut self) -> Option<Step> {
        match self.peek()? {
            b'.' => {
                self.i += 1;
                if self.eat(b'*').is_some() {
                    return Some(Step::Wildcard);
                }
                self.shorthand().map(Step::Name)
            }
            b'[' => {
                self.i += 1;
                self.ws();
                let step = match self.peek()? {
                    b'*' => {
                        self.i += 1;
                        Step::Wildcard
                    }
                    b'?' => {
                        self.i += 1;
                        Step::Filter(self.filter()?)
                    }
                    _ => match self.name_or_index()? {
                        Rel::Name(n) => self.more_names(n)?,
                        Rel::Index(i) => Step::Index(i),
                    },
                };
                self.ws();
                self.eat(b']')?;
                Some(step)
            }
            _ => None,
        }
    }

    /// After a quoted name in brackets: further quoted names separated by commas, if any.
    fn more_names(&mut self, first: String) -> Option<Step> {
        let mut names = vec![first];
        loop {
            self.ws();
            if self.peek() != Some(b',') {
                break;
            }
            self.i += 1;
            self.ws();
            match self.name_or_index()? {
                Rel::Name(n) => names.push(n),
                Rel::Index(_) => return None,
            }
        }
        Some(if names.len() == 1 {
            Step::Name(names.remove(0))
        } else {
            Step::Names(names)
        })
    }

    /// ASCII member-name shorthand; non-ASCII names take the full path.
    fn shorthand(&mut self) -> Option<String> {
        self.name_ending(|c| matches!(c, None | Some(b'.' | b'[')))
    }

    /// An ASCII name (a letter or `_`, then letters, digits or `_`) followed by something
    /// `ends` accepts; `None` otherwise.
    fn name_ending(&mut self, ends: impl Fn(Option<u8>) -> bool) -> Option<String> {
        let start = self.i;
        match self.peek()? {
            c if c.is_ascii_alphabetic() || c == b'_' => self.i += 1,
            _ => return None,
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        if !ends(self.peek()) {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .map(str::to_string)
    }

    /// A quoted name without escapes, or a non-negative index.
    fn name_or_index(&mut self) -> Option<Rel> {
        match self.peek()? {
            q @ (b'\'' | b'"') => self.string(q).map(Rel::Name),
            b'0'..=b'9' => self.index().map(Rel::Index),
            _ => None,
        }
    }

    fn string(&mut self, quote: u8) -> Option<String> {
        self.eat(quote)?;
        let start = self.i;
        loop {
            match self.peek()? {
                b'\\' => return None,
                c if c < 0x20 => return None,
                c if c == quote => break,
                _ => self.i += 1,
            }
        }
        let s = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .to_string();
        self.i += 1;
        Some(s)
    }

    fn index(&mut self) -> Option<usize> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        // RFC 9535 caps indices at 2^53-1; larger ones are left to the full path to refuse.
        digits
            .parse::<u64>()
            .ok()
            .filter(|n| *n < (1u64 << 53))
            .and_then(|n| usize::try_from(n).ok())
    }

    fn filter(&mut self) -> Option<Filter> {
        self.ws();
        type Compile = fn(&str) -> Option<Arc<Regex>>;
        let regex = if self.eat_str("search(").is_some() {
            Some((
                search_regex as Compile,
                Finite::search as fn(&str) -> Option<Finite>,
            ))
        } else if self.eat_str("match(").is_some() {
            Some((
                match_regex as Compile,
                Finite::full as fn(&str) -> Option<Finite>,
            ))
        } else {
            None
        };
        if let Some((compile, finite)) = regex {
            self.ws();
            let operand = self.relative()?;
            self.ws();
            self.eat(b',')?;
            self.ws();
            let q = self.peek()?;
            if q != b'\'' && q != b'"' {
                return None;
            }
            let pattern = self.string(q)?;
            self.ws();
            self.eat(b')')?;
            return Some(Filter {
                operand,
                // Only where the regex crate takes the pattern: one it refuses matches nothing.
                test: match compile(&pattern) {
                    Some(re) => finite(&pattern)
                        .map(Test::Finite)
                        .unwrap_or(Test::Regex(Some(re))),
                    None => Test::Regex(None),
                },
            });
        }
        if self.eat_str("repository(").is_some() {
            return self.repository();
        }
        let operand = self.relative()?;
        self.ws();
        if self.eat_str("==").is_none() {
            return Some(Filter {
                operand,
                test: Test::Exists,
            });
        }
        self.ws();
        let literal = match self.peek()? {
            q @ (b'\'' | b'"') => Value::String(self.string(q)?),
            _ if self.eat_str("true").is_some() => Value::Bool(true),
            _ if self.eat_str("false").is_some() => Value::Bool(false),
            _ if self.eat_str("null").is_some() => Value::Null,
            _ => return None,
        };
        match self.peek() {
            Some(b' ' | b'\t' | b'\n' | b'\r' | b']') => Some(Filter {
                operand,
                test: Test::Equals(literal),
            }),
            _ => None,
        }
    }

    /// The rest of `repository(@.a, 'name')`.
    fn repository(&mut self) -> Option<Filter> {
        self.ws();
        let operand = self.relative()?;
        self.ws();
        self.eat(b',')?;
        self.ws();
        let q = self.peek()?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let name = self.string(q)?;
        self.ws();
        self.eat(b')')?;
        Some(Filter {
            operand,
            test: Test::Repository(name),
        })
    }

    /// `@` followed by `.name`, `['name']` or `[index]` segments.
    fn relative(&mut self) -> Option<Vec<Rel>> {
        self.eat(b'@')?;
        let mut rel = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.i += 1;
                    rel.push(Rel::Name(self.rel_shorthand()?));
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    rel.push(self.name_or_index()?);
                    self.ws();
                    self.eat(b']')?;
                }
                _ => return Some(rel),
            }
        }
    }

    /// A shorthand name inside a filter, where it may also end at blank space, `,`, `)`, `]`
    /// or `=`.
    fn rel_shorthand(&mut self) -> Option<String> {
        self.name_ending(|c| {
            matches!(
                c,
                Some(b'.' | b'[' | b' ' | b'\t' | b'\n' | b'\r' | b',' | b')' | b']' | b'=')
            )
        })
    }
}
