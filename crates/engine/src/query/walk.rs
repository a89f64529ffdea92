//! The direct walk: the plain queries, run without serde_json_path.

use std::ops::ControlFlow;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

use super::MAX_STEPS;
use super::located::{Elem, Located, Location};
use crate::finite_pattern::Finite;

/// A plain walk: what [`Walk::parse`] accepts runs without serde_json_path.
#[derive(Debug, Clone)]
pub(super) struct Walk {
    pub(super) steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub(super) enum Step {
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
pub(super) enum Rel {
    Name(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub(super) struct Filter {
    pub(super) operand: Vec<Rel>,
    pub(super) test: Test,
}

#[derive(Debug, Clone)]
pub(super) enum Test {
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
    pub(super) fn holds(&self, node: &Value) -> bool {
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
    pub(super) fn run<'v>(
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
