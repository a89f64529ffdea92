//! Where a selected node is, kept as borrowed path elements and rendered only when a violation
//! names it.

use serde_json::Value;

use super::MAX_STEPS;
use super::walk::Rel;

/// One node a query selected: its value, and where it is.
#[derive(Clone, PartialEq)]
pub struct Located<'v> {
    pub value: &'v Value,
    pub(super) location: Location<'v>,
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
    pub(super) fn child(&self, elem: Elem<'v>, value: &'v Value) -> Located<'v> {
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
    pub(super) fn descend(&self, rels: &[Rel]) -> Option<Located<'v>> {
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
pub(super) fn push_decimal(out: &mut String, n: usize) {
    out.push_str(itoa::Buffer::new().format(n));
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Elem<'v> {
    Name(&'v str),
    Index(usize),
}

/// Where a node is: on the stack for a walk, from the normalized path for the full query.
#[derive(Debug, Clone)]
pub(super) enum Location<'v> {
    Inline {
        len: u8,
        elems: [Elem<'v>; MAX_STEPS],
    },
    Heap(Vec<Elem<'v>>),
}

impl<'v> Location<'v> {
    pub(super) fn elems(&self) -> &[Elem<'v>] {
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
