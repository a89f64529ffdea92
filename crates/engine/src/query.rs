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

use serde_json::Value;
use serde_json_path::{JsonPath, ParseError, PathElement};

use crate::projection::Keep;

mod located;
mod parse;
mod walk;

pub use located::Located;
use located::{Elem, Location};
use walk::{Filter, Step, Walk};

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

#[cfg(test)]
#[path = "query_tests.rs"]
pub(crate) mod tests;
