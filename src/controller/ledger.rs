//! What the controller records as it goes, in plain data: which kind (`KindKey`), where a kind's
//! verdicts go (`Sink`), and what the policies' status needs to know about each object (`Seen`).
//! The pure modules (`plan`, `tally`, `status_plan`, `metrics`) read these without knowing the
//! session, the watches or the API server that fill them.

use crate::base::metrics::{FleetLabels, ObjectSupportLabels};
use crate::engine::Verdict;
use crate::engine::targets::FieldMask;

/// A watched kind at the version watched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KindKey {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl KindKey {
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        KindKey {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }
}

/// Where a kind's verdicts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// `status.conditions` is a list-map keyed by `type` on a status subresource: server-side
    /// apply of our one entry leaves other owners' conditions alone.
    Conditions,
    /// The schema would prune or clobber a condition; why, for the event.
    PolicyReport(String),
}

/// What the status of the policies needs to know about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// `namespace/name (Kind)`
    pub display: String,
    pub merged: Verdict,
    pub per_policy: Vec<(String, Verdict)>,
    /// Per policy and target index, which target fields resolved in the object.
    pub resolved: Vec<(String, usize, FieldMask)>,
    /// The object's series in `supportgate_objects` (kind, namespace, verdict, reason).
    pub fleet: FleetLabels,
    /// Its `supportgate_object_support` series, when those are enabled.
    pub support: Option<ObjectSupportLabels>,
    /// The SupportExceptions (`namespace/name`) that cover it.
    pub excepted_by: Vec<String>,
    /// The `Shared::policy_changes` epoch of the policies and exceptions it was evaluated under.
    pub epoch: u64,
}
