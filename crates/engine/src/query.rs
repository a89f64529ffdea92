//! A target's field query: RFC 9535 JSONPath, with the common shapes run as a direct walk.
//!
//! Every query is parsed by serde_json_path, which stays the reference. When the text is a plain
//! walk — names, non-negative indices, wildcards, and a filter that is one existence test, one
//! equality with a string, boolean or null literal, or one `search()`/`match()`/`repository()` on
//! a singular relative query — it is also compiled into [`Walk`], which visits the same nodes in
//! the same order without building node lists or paths. The built-in targets are all of this
//! shape; any other query (descendants, slices, negative indices, escapes in literals, logical
//! operators) runs through serde_json_path unchanged. The location of a selected node is kept as borrowed
//! path elements and rendered only when a violation names it.

use std::ops::ControlFlow;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;
use serde_json_path::{JsonPath, ParseError, PathElement};

use crate::finite_pattern::Finite;
use crate::jsonpath_functions::{match_regex, search_regex};
use crate::projection::Keep;

/// Steps a walk may have, so that a location fits on the stack; deeper queries take the full path.
const MAX_STEPS: usize = 10;

/// A compiled field query.
#[derive(Debug, Clone)]
pub struct Query {
    full: JsonPath,
    plain: Option<Walk>,
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, ParseError> {
        let full = JsonPath::parse(text)?;
        Ok(Query {
            plain: Walk::parse(text),
            full,
        })
    }

    /// Whether the query runs as a direct walk.
    pub fn is_plain(&self) -> bool {
        self.plain.is_some()
    }

    /// Visits every selected node in document order until `f` breaks.
    pub fn visit<'v>(
        &self,
        root: &'v Value,
        f: &mut dyn FnMut(Located<'v>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        match &self.plain {
            Some(w) => w.run(root, f),
            None => self.visit_full(root, f),
        }
    }

    /// The same through serde_json_path alone: the reference the walk is tested against.
    pub fn visit_full<'v>(
        &self,
        root: &'v Value,
        f: &mut dyn FnMut(Located<'v>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for node in self.full.query_located(root) {
            let location = Location::Heap(
                node.location()
                    .iter()
                    .map(|e| match e {
                        PathElement::Name(n) => Elem::Name(n),
                        PathElement::Index(i) => Elem::Index(*i),
                    })
                    .collect(),
            );
            f(Located {
                value: node.node(),
                location,
            })?;
        }
        ControlFlow::Continue(())
    }

    /// Every selected node.
    pub fn select<'v>(&self, root: &'v Value) -> Vec<Located<'v>> {
        let mut out = Vec::new();
        let _ = self.visit(root, &mut |l| {
            out.push(l);
            ControlFlow::Continue(())
        });
        out
    }

    /// The first selected node for which `keep` holds.
    pub fn first_where<'v>(
        &self,
        root: &'v Value,
        keep: impl Fn(&Value) -> bool,
    ) -> Option<Located<'v>> {
        let mut found = None;
        let _ = self.visit(root, &mut |l| {
            if keep(l.value) {
                found = Some(l);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        found
    }
}

/// The entries a ref query picks its refs from. A plain walk `<array>[?filter].<ref>` (the
/// built-in `…addons[?repository(@.configRepository, …)].configVersion`) selects the ref of the
/// elements the filter holds for; the elements it does not hold for, and the selected ones that
/// have no ref, are what nothing checks. This visits every element, so that a check can name
/// them. Whatever it reads the ref query reads too, so a cache pruned for the query keeps it.
#[derive(Debug, Clone)]
pub struct Entries {
    walk: Walk,
    filter: Filter,
    reference: String,
    /// The walk to the array, rendered: two ref queries with the same one read the same entries.
    array: String,
}

impl Entries {
    /// Visits every element of the array, selected by the filter or not, in document order.
    pub fn visit<'v>(
        &self,
        root: &'v Value,
        f: &mut dyn FnMut(Located<'v>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.walk.run(root, f)
    }

    /// Whether the ref query selects this entry's ref (when it has one).
    pub fn selects(&self, entry: &Value) -> bool {
        self.filter.holds(entry)
    }

    /// The value the filter tests (the `configRepository`), where it is set.
    pub fn repository<'v>(&self, entry: &Located<'v>) -> Option<Located<'v>> {
        entry.descend(&self.filter.operand)
    }

    /// The entry's ref member (`configVersion`), where it is set.
    pub fn reference<'v>(&self, entry: &Located<'v>) -> Option<Located<'v>> {
        let (k, v) = entry.value.as_object()?.get_key_value(&self.reference)?;
        Some(entry.child(Elem::Name(k), v))
    }

    /// The ref member's name.
    pub fn reference_name(&self) -> &str {
        &self.reference
    }

    /// Whether both read the elements of the same array.
    pub fn same_array(&self, other: &Entries) -> bool {
        self.array == other.array
    }
}

impl Query {
    /// The entries of a query of the shape `<array>[?filter].<ref>`; `None` for any other.
    pub fn entries(&self) -> Option<Entries> {
        let steps = &self.plain.as_ref()?.steps;
        let [prefix @ .., Step::Filter(filter), Step::Name(reference)] = steps.as_slice() else {
            return None;
        };
        let mut walk = prefix.to_vec();
        walk.push(Step::Wildcard);
        Some(Entries {
            array: format!("{prefix:?}"),
            walk: Walk { steps: walk },
            filter: filter.clone(),
            reference: reference.clone(),
        })
    }

    /// Marks in `keep` what this query can read: the member names it walks down, then the
    /// whole subtree from its first step that is not a name (an index, a wildcard or a filter,
    /// whose operands lie inside that subtree). A query that is not a plain walk may read
    /// anything.
    pub fn mark_read(&self, keep: &mut Keep) {
        match &self.plain {
            Some(w) => mark(&w.steps, keep),
            None => keep.set_all(),
        }
    }
}

fn mark(steps: &[Step], keep: &mut Keep) {
    match steps.split_first() {
        Some((Step::Name(n), rest)) => mark(rest, keep.path(&[n])),
        Some((Step::Names(names), rest)) => {
            for n in names {
                mark(rest, keep.path(&[n]));
            }
        }
        _ => keep.set_all(),
    }
}

/// One node a query selected: its value, and where it is.
#[derive(Clone, PartialEq)]
pub struct Located<'v> {
    pub value: &'v Value,
    location: Location<'v>,
}

impl std::fmt::Debug for Located<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Located")
            .field("field", &self.field())
            .field("pointer", &self.pointer())
            .field("value", self.value)
            .finish()
    }
}

impl<'v> Located<'v> {
    /// The node at `elem` below this one.
    fn child(&self, elem: Elem<'v>, value: &'v Value) -> Located<'v> {
        let location = match &self.location {
            Location::Inline { len, elems } if (*len as usize) < MAX_STEPS => {
                let mut elems = *elems;
                elems[*len as usize] = elem;
                Location::Inline {
                    len: len + 1,
                    elems,
                }
            }
            other => {
                let mut v = other.elems().to_vec();
                v.push(elem);
                Location::Heap(v)
            }
        };
        Located { value, location }
    }

    /// The node a singular relative query reaches from this one.
    fn descend(&self, rels: &[Rel]) -> Option<Located<'v>> {
        let mut at = self.clone();
        for r in rels {
            at = match r {
                Rel::Name(n) => {
                    let (k, v) = at.value.as_object()?.get_key_value(n)?;
                    at.child(Elem::Name(k), v)
                }
                Rel::Index(i) => {
                    let v = at.value.as_array()?.get(*i)?;
                    at.child(Elem::Index(*i), v)
                }
            };
        }
        Some(at)
    }

    /// About the length of either rendering, so that it is allocated once.
    fn text_len(&self) -> usize {
        self.location
            .elems()
            .iter()
            .map(|e| match e {
                Elem::Name(n) => n.len() + 4,
                Elem::Index(_) => 4,
            })
            .sum()
    }

    /// The location as users write field paths (`spec.cluster.addons[0].configVersion`).
    pub fn field(&self) -> String {
        let mut out = String::with_capacity(self.text_len());
        for el in self.location.elems() {
            match el {
                Elem::Name(name) => {
                    if !name.is_empty()
                        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                    {
                        if !out.is_empty() {
                            out.push('.');
                        }
                        out.push_str(name);
                    } else {
                        out.push_str("['");
                        out.push_str(name);
                        out.push_str("']");
                    }
                }
                Elem::Index(i) => {
                    out.push('[');
                    push_decimal(&mut out, *i);
                    out.push(']');
                }
            }
        }
        out
    }

    /// The same location as an RFC 6901 JSON pointer: the only form used to read a value back
    /// (ratcheting), since keys may contain `.`, `']` or `/` that the display form cannot carry
    /// unambiguously.
    pub fn pointer(&self) -> String {
        let mut out = String::with_capacity(self.text_len());
        for el in self.location.elems() {
            out.push('/');
            match el {
                Elem::Name(name) if !name.contains(['~', '/']) => out.push_str(name),
                Elem::Name(name) => out.push_str(&name.replace('~', "~0").replace('/', "~1")),
                Elem::Index(i) => push_decimal(&mut out, *i),
            }
        }
        out
    }
}

/// `write!(out, "{n}")` without the formatting machinery, which costs more than the rest of a
/// location's rendering.
fn push_decimal(out: &mut String, n: usize) {
    out.push_str(itoa::Buffer::new().format(n));
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Elem<'v> {
    Name(&'v str),
    Index(usize),
}

/// Where a node is: on the stack for a walk, from the normalized path for the full query.
#[derive(Debug, Clone)]
enum Location<'v> {
    Inline {
        len: u8,
        elems: [Elem<'v>; MAX_STEPS],
    },
    Heap(Vec<Elem<'v>>),
}

impl<'v> Location<'v> {
    fn elems(&self) -> &[Elem<'v>] {
        match self {
            Location::Inline { len, elems } => &elems[..*len as usize],
            Location::Heap(v) => v,
        }
    }
}

impl PartialEq for Location<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.elems() == other.elems()
    }
}

/// A plain walk: what [`Walk::parse`] accepts runs without serde_json_path.
#[derive(Debug, Clone)]
struct Walk {
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Name(String),
    /// Several member names (`['provisioner','cluster']`), selected in the order written.
    Names(Vec<String>),
    Index(usize),
    /// Every element of an array, or member value of an object.
    Wildcard,
    /// The elements or member values for which the test holds.
    Filter(Filter),
}

/// A singular relative query (`@.a['b'][0]`).
#[derive(Debug, Clone)]
enum Rel {
    Name(String),
    Index(usize),
}

#[derive(Debug, Clone)]
struct Filter {
    operand: Vec<Rel>,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    /// `?@.a`: the member exists, whatever its value.
    Exists,
    /// `?@.a == 'x'`, `true`, `false` or `null`: exact JSON equality (no numbers, whose
    /// comparison is numeric).
    Equals(Value),
    /// `?search(@.a, 're')` or `?match(...)`: the regex the registered function compiles for the
    /// same pattern (`None`: invalid, matches nothing).
    Regex(Option<Arc<Regex>>),
    /// The same, for a pattern that matches a short list of strings: compared, not run.
    Finite(Finite),
    /// `?repository(@.a, 'name')`: the value is a repository URL naming `name`.
    Repository(String),
}

impl Filter {
    fn holds(&self, node: &Value) -> bool {
        let mut at = Some(node);
        for r in &self.operand {
            at = at.and_then(|v| match r {
                Rel::Name(n) => v.as_object().and_then(|o| o.get(n)),
                Rel::Index(i) => v.as_array().and_then(|a| a.get(*i)),
            });
        }
        match (&self.test, at) {
            (_, None) => false,
            (Test::Exists, Some(_)) => true,
            (Test::Equals(lit), Some(v)) => v == lit,
            (Test::Finite(f), Some(v)) => v.as_str().is_some_and(|s| f.holds(s)),
            (Test::Repository(name), Some(v)) => v
                .as_str()
                .is_some_and(|s| crate::repository::names(s, name)),
            (Test::Regex(re), Some(v)) => match (re, v.as_str()) {
                (Some(re), Some(s)) => re.is_match(s),
                _ => false,
            },
        }
    }
}

/// The path of the node being visited, on the stack.
struct Stack<'v> {
    len: usize,
    elems: [Elem<'v>; MAX_STEPS],
}

impl Walk {
    fn run<'v>(
        &self,
        root: &'v Value,
        f: &mut dyn FnMut(Located<'v>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut stack = Stack {
            len: 0,
            elems: [Elem::Index(0); MAX_STEPS],
        };
        step(&self.steps, root, &mut stack, f)
    }

    fn parse(text: &str) -> Option<Walk> {
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

fn step<'v>(
    steps: &[Step],
    node: &'v Value,
    stack: &mut Stack<'v>,
    f: &mut dyn FnMut(Located<'v>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Some((first, rest)) = steps.split_first() else {
        return f(Located {
            value: node,
            location: Location::Inline {
                len: stack.len as u8,
                elems: stack.elems,
            },
        });
    };
    let mut child = |elem: Elem<'v>, v: &'v Value, stack: &mut Stack<'v>| {
        stack.elems[stack.len] = elem;
        stack.len += 1;
        let flow = step(rest, v, stack, f);
        stack.len -= 1;
        flow
    };
    match first {
        Step::Name(n) => {
            if let Some((k, v)) = node.as_object().and_then(|o| o.get_key_value(n)) {
                child(Elem::Name(k), v, stack)?;
            }
        }
        Step::Names(names) => {
            if let Some(o) = node.as_object() {
                for n in names {
                    if let Some((k, v)) = o.get_key_value(n) {
                        child(Elem::Name(k), v, stack)?;
                    }
                }
            }
        }
        Step::Index(i) => {
            if let Some(v) = node.as_array().and_then(|a| a.get(*i)) {
                child(Elem::Index(*i), v, stack)?;
            }
        }
        Step::Wildcard | Step::Filter(_) => {
            let keep = |v: &Value| match first {
                Step::Filter(flt) => flt.holds(v),
                _ => true,
            };
            match node {
                Value::Array(a) => {
                    for (i, v) in a.iter().enumerate().filter(|(_, v)| keep(v)) {
                        child(Elem::Index(i), v, stack)?;
                    }
                }
                Value::Object(o) => {
                    for (k, v) in o.iter().filter(|(_, v)| keep(v)) {
                        child(Elem::Name(k), v, stack)?;
                    }
                }
                _ => {}
            }
        }
    }
    ControlFlow::Continue(())
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

#[cfg(test)]
#[path = "query_tests.rs"]
pub(crate) mod tests;
