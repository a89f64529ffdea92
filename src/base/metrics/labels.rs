//! The label sets of the metric families: the admission, controller and connection counters',
//! and the observed fleet, policy and SupportException gauges'.

use std::fmt::{self, Write as _};

use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
};

use crate::engine::rules::Severity;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub verdict: &'static str,
    pub operation: &'static str,
}

/// A rule and its severity, written as the severity's `Display` (`info`, `warn`, `deny`).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct RuleLabels {
    pub rule: &'static str,
    pub severity: Severity,
}

impl EncodeLabelSet for RuleLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("rule", self.rule).encode(encoder.encode_label())?;
        ("severity", Shown(self.severity)).encode(encoder.encode_label())
    }
}

/// A label value written with its `Display`: the engine's enums name themselves.
struct Shown<T>(T);

impl<T: fmt::Display> EncodeLabelValue for Shown<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        write!(encoder, "{}", self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
}

/// What a failed write was for: the object's kind (`KonvoyCluster`, `SupportPolicy`,
/// `SupportException`, ...) or `Event`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
}

/// Why an event was given up: `queue_full`, `expired` (unpublished for an hour) or `rejected`
/// (the API server refused it for good: invalid, or its namespace is gone).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: &'static str,
}

/// `supportgate_objects`: bounded labels, no object names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct FleetLabels {
    pub kind: String,
    pub namespace: String,
    pub verdict: String,
    pub reason: String,
}

/// `supportgate_object_support`: one series per object, opt in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ObjectSupportLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub verdict: String,
    pub rule: String,
    pub konvoy_version: String,
    pub kubernetes_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyInfoLabels {
    pub policy: String,
    pub product: String,
    pub window: String,
    pub latest: String,
    pub supported: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PolicyChangeLabels {
    pub policy: String,
    /// `release`, `end_of_support` or `nearing_end`.
    pub change: String,
}

/// The per-SupportException series: its namespace and name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ExceptionLabels {
    pub namespace: String,
    pub exception: String,
}
