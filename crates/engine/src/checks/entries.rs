//! `ref-unidentified`: the addons entries of a cluster whose ref nothing checks.
//!
//! The KBA and Kommander ref queries select the `configVersion` of the entries whose repository
//! they recognise. An entry they pass over (another repository, or one spelled so that no filter
//! knows it), or a recognised one without a `configVersion`, used to be checked by nothing and
//! said nothing (issue 28, path 4). Every entry of the array those queries read is visited here:
//!
//! - a recognised entry without a ref field whose URL carries one (`#ref`, `?ref=`) has that ref
//!   judged by the KBA or Kommander rules, as if it were in the field (on any cluster);
//! - on a production cluster, an entry whose repository is not recognised, a recognised one with
//!   no ref at all, and one whose URL names a ref other than its field draw `ref-unidentified`
//!   at the policy's `spec.unidentifiedRefs` severity (a warning unless it says `Deny`).
//!
//! Nothing here allocates for an entry with nothing to report.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use crate::checks::Scope;
use crate::checks::addons::object_labels;
use crate::checks::refs::{self, Cluster, Source};
use crate::collect::{Out, is_set};
use crate::messages;
use crate::policy::Release;
use crate::repository::RepoUrl;
use crate::rules::{Rule, Severity};
use crate::targets::{Entries, Located};
use crate::version::Version;

/// Which ref query selects an entry.
#[derive(Clone, Copy, Default)]
struct Known {
    kba: bool,
    kommander: bool,
}

pub(crate) fn check(
    s: &mut Scope,
    out: &mut Out,
    release: Option<&Release>,
    k8s: Option<&Version>,
) {
    let t = s.target;
    let mut judge = Judge {
        release,
        k8s,
        cluster: None,
        production: None,
    };
    match (t.kba_entries.as_ref(), t.kommander_entries.as_ref()) {
        (None, None) => {}
        (Some(a), Some(b)) if a.same_array(b) => {
            let _ = a.visit(s.object, &mut |e| {
                let known = Known {
                    kba: a.selects(e.value),
                    kommander: b.selects(e.value),
                };
                judge.entry(s, out, a, b, &e, known);
                ControlFlow::Continue(())
            });
        }
        (a, b) => judge.apart(s, out, a, b),
    }
}

/// What an entry is judged against, read once and only when an entry needs it.
struct Judge<'r, 'k> {
    release: Option<&'r Release>,
    k8s: Option<&'k Version>,
    cluster: Option<Cluster<'k>>,
    production: Option<bool>,
}

impl<'k> Judge<'_, 'k> {
    /// The two ref queries read different arrays (a policy's own targets): each entry is known
    /// by its location, which costs a map; the built-in targets never come here.
    fn apart(&mut self, s: &mut Scope, out: &mut Out, a: Option<&Entries>, b: Option<&Entries>) {
        let mut all: BTreeMap<String, (Located, Known)> = BTreeMap::new();
        for (side, is_kba) in [(a, true), (b, false)] {
            let Some(side) = side else { continue };
            let _ = side.visit(s.object, &mut |e| {
                let selected = side.selects(e.value);
                let slot = all.entry(e.pointer()).or_insert((e, Known::default()));
                if is_kba {
                    slot.1.kba |= selected;
                } else {
                    slot.1.kommander |= selected;
                }
                ControlFlow::Continue(())
            });
        }
        let (a, b) = (a.or(b), b.or(a));
        if let (Some(a), Some(b)) = (a, b) {
            for (e, known) in all.into_values() {
                self.entry(s, out, a, b, &e, known);
            }
        }
    }

    fn entry(
        &mut self,
        s: &mut Scope,
        out: &mut Out,
        kba: &Entries,
        kommander: &Entries,
        e: &Located,
        known: Known,
    ) {
        if !e.value.is_object() {
            return;
        }
        // The fields of the query that selects it; the KBA query's for an unknown entry.
        let fields = if known.kommander && !known.kba {
            kommander
        } else {
            kba
        };
        let repo = fields.repository(e).filter(|r| is_set(r.value));
        let reference = fields.reference(e).filter(|r| is_set(r.value));
        let url = repo
            .as_ref()
            .and_then(|r| r.value.as_str())
            .map(RepoUrl::parse);
        let (what, example) = if known.kba {
            (refs::KBA, refs::KBA_EXAMPLE)
        } else {
            (refs::KOMMANDER, refs::KOMMANDER_EXAMPLE)
        };
        let at = repo.as_ref().unwrap_or(e);
        if !(known.kba || known.kommander) {
            let (repository, reference) = (repo.as_ref(), reference.as_ref());
            self.unidentified(s, out, at, |deny| {
                messages::repository_unidentified(
                    repository.map(|r| r.value),
                    reference.map(|r| r.value),
                    deny,
                )
            });
            return;
        }
        let mut url_refs = url.iter().flat_map(RepoUrl::refs);
        let first = url_refs.next();
        let second = url_refs.find(|r| Some(*r) != first);
        match (first, reference.as_ref()) {
            (None, Some(_)) => {} // the ref field, judged by the ref rules
            (Some(in_url), Some(field)) => {
                let other = field.value.as_str();
                if other != Some(in_url) || second.is_some() {
                    let other = second.or(other).unwrap_or("a ref that is not a string");
                    self.unidentified(s, out, at, |deny| {
                        messages::ref_conflict(what, in_url, other, deny)
                    });
                }
            }
            (Some(in_url), None) => match second {
                Some(other) => self.unidentified(s, out, at, |deny| {
                    messages::ref_conflict(what, in_url, other, deny)
                }),
                None => self.url_tag(s, out, at, in_url, known),
            },
            (None, None) => {
                let field = fields.reference_name();
                self.unidentified(s, out, at, |deny| {
                    messages::ref_missing(what, field, example, deny)
                });
            }
        }
    }

    /// The ref of a recognised entry's URL, judged as its `configVersion` would be.
    fn url_tag(&mut self, s: &mut Scope, out: &mut Out, at: &Located, text: &str, known: Known) {
        let (what, example) = if known.kba {
            (refs::KBA, refs::KBA_EXAMPLE)
        } else {
            (refs::KOMMANDER, refs::KOMMANDER_EXAMPLE)
        };
        let Some(tag) = out.tag_in(at, text, what, example) else {
            return;
        };
        let k8s = self.k8s;
        let cluster = self.cluster.get_or_insert_with(|| Cluster::of(s, k8s));
        if known.kba {
            refs::kba_tag(s, out, cluster, at, &tag, Source::Url);
        } else {
            refs::kommander_tag(s, out, cluster, self.release, at, &tag, Source::Url);
        }
    }

    fn unidentified(
        &mut self,
        s: &Scope,
        out: &mut Out,
        at: &Located,
        msg: impl FnOnce(bool) -> String,
    ) {
        if self.in_production(s) {
            let severity = s.policy.unidentified_refs;
            let msg = msg(severity == Severity::Deny);
            out.push(Rule::RefUnidentified, severity, at, msg);
        }
    }

    fn in_production(&mut self, s: &Scope) -> bool {
        *self
            .production
            .get_or_insert_with(|| s.policy.is_production(&object_labels(s.object)))
    }
}

#[cfg(test)]
#[path = "entries_tests.rs"]
mod tests;
