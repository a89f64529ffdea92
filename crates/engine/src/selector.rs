//! Label selectors: the wire type (`matchLabels`, `matchExpressions`) and its compiled form.
//!
//! The engine's own, so that it needs no Kubernetes crate: [`LabelSelector`] reads, writes and
//! renders its schema exactly as Kubernetes' `meta/v1` LabelSelector does (the CRDs embed it),
//! and [`Selector`] matches labels with the semantics, texts and errors a policy reported when
//! it used kube's selector.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A label query over a set of resources: `matchLabels` and `matchExpressions`, ANDed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", expecting = "LabelSelector")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// One requirement of `matchExpressions`: a key, an operator and, for `In`/`NotIn`, values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(expecting = "LabelSelectorRequirement")]
pub struct LabelSelectorRequirement {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub key: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// Absent or `null`: empty, as Kubernetes reads `key` and `operator`.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

// The schemas are Kubernetes' own (io.k8s.apimachinery.pkg.apis.meta.v1), word for word: the
// CRDs under crds/ embed them.
impl JsonSchema for LabelSelector {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A label selector is a label query over a set of resources. The result of matchLabels and matchExpressions are ANDed. An empty label selector matches all objects. A null label selector matches no objects.",
            "type": "object",
            "properties": {
                "matchExpressions": {
                    "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                    "type": "array",
                    "items": (generator.subschema_for::<LabelSelectorRequirement>()),
                },
                "matchLabels": {
                    "description": "matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent to an element of matchExpressions, whose key field is \"key\", the operator is \"In\", and the values array contains only \"value\". The requirements are ANDed.",
                    "type": "object",
                    "additionalProperties": {
                        "type": "string",
                    },
                },
            },
        })
    }
}

impl JsonSchema for LabelSelectorRequirement {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.",
            "type": "object",
            "properties": {
                "key": {
                    "description": "key is the label key that the selector applies to.",
                    "type": "string",
                },
                "operator": {
                    "description": "operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist.",
                    "type": "string",
                },
                "values": {
                    "description": "values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty. This array is replaced during a strategic merge patch.",
                    "type": "array",
                    "items": {
                        "type": "string",
                    },
                },
            },
            "required": [
                "key",
                "operator",
            ],
        })
    }
}

/// Why a [`LabelSelector`] does not compile. The texts are the ones policies and exceptions
/// have always reported (kube's), so status conditions read as before.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed to parse value as expression: {0}")]
pub struct SelectorError(pub String);

/// One compiled requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expression {
    Equal(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Expression {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Expression::Equal(key, value) => labels.get(key) == Some(value),
            Expression::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Expression::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
            Expression::Exists(key) => labels.contains_key(key),
            Expression::DoesNotExist(key) => !labels.contains_key(key),
        }
    }

    fn compile(r: &LabelSelectorRequirement) -> Result<Expression, SelectorError> {
        let key = r.key.clone();
        let values = || r.values.as_ref().map(|v| v.iter().cloned().collect());
        match r.operator.as_str() {
            "In" => values()
                .map(|v| Expression::In(key, v))
                .ok_or_else(|| SelectorError("Expected values for In operator, got none".into())),
            // kube said `In` here too; the text is kept as policies have reported it.
            "NotIn" => values()
                .map(|v| Expression::NotIn(key, v))
                .ok_or_else(|| SelectorError("Expected values for In operator, got none".into())),
            "Exists" => Ok(Expression::Exists(key)),
            "DoesNotExist" => Ok(Expression::DoesNotExist(key)),
            _ => Err(SelectorError("Invalid expression operator".into())),
        }
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |values: &BTreeSet<String>| values.iter().cloned().collect::<Vec<_>>().join(",");
        match self {
            Expression::Equal(key, value) => write!(f, "{key}={value}"),
            Expression::In(key, values) => write!(f, "{key} in ({})", list(values)),
            Expression::NotIn(key, values) => write!(f, "{key} notin ({})", list(values)),
            Expression::Exists(key) => write!(f, "{key}"),
            Expression::DoesNotExist(key) => write!(f, "!{key}"),
        }
    }
}

/// A compiled label selector: every expression must hold (`matchLabels` first, then
/// `matchExpressions`). Empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Expression>);

impl Selector {
    /// Whether it selects every object (no requirement at all).
    pub fn selects_all(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|e| e.matches(labels))
    }

    pub fn expressions(&self) -> &[Expression] {
        &self.0
    }
}

impl TryFrom<&LabelSelector> for Selector {
    type Error = SelectorError;

    fn try_from(s: &LabelSelector) -> Result<Selector, SelectorError> {
        let mut out: Vec<Expression> = s
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Expression::Equal(k.clone(), v.clone()))
            .collect();
        for r in s.match_expressions.iter().flatten() {
            out.push(Expression::compile(r)?);
        }
        Ok(Selector(out))
    }
}

impl TryFrom<LabelSelector> for Selector {
    type Error = SelectorError;

    fn try_from(s: LabelSelector) -> Result<Selector, SelectorError> {
        Selector::try_from(&s)
    }
}

/// As `kubectl get -l` takes it: `environment=production,tier in (a,b)`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;
