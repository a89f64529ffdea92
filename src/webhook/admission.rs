//! AdmissionReview in, AdmissionReview out: the webhook's decision, without any networking.
//!
//! The request path makes no API calls: it reads the policy snapshot and the engine decides.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use thiserror::Error;

use crate::api::object::engine_value;
use crate::engine::policyset::PolicySet;
use crate::engine::rules::{Rule, Severity};
use crate::engine::{Context, Evaluation, Verdict};
use crate::runtime::metrics::{Metrics, RuleLabels, VerdictLabels};

/// Why a request could not be answered with an AdmissionReview (an HTTP 4xx).
#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("the request body is not a JSON AdmissionReview: {0}")]
    Malformed(serde_json::Error),
    #[error(
        "unsupported review {api_version}/{kind}: supportgate answers admission.k8s.io/v1 AdmissionReview"
    )]
    WrongVersion { api_version: String, kind: String },
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// The outcome, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: &'static str,
    pub violations: Vec<(Rule, Severity)>,
}

/// Decodes a review, decides, and encodes the answer.
pub fn review(
    body: &[u8],
    policies: &PolicySet,
    ctx: &Context,
    metrics: Option<&Metrics>,
) -> Result<(Vec<u8>, Decision), ReviewError> {
    let start = Instant::now();
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(ReviewError::Malformed)?;
    if review.types.api_version != "admission.k8s.io/v1" || review.types.kind != "AdmissionReview" {
        return Err(ReviewError::WrongVersion {
            api_version: review.types.api_version,
            kind: review.types.kind,
        });
    }
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let span = tracing::info_span!(
        "admission",
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        operation = ?request.operation,
        dry_run = request.dry_run,
        verdict = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    let _enter = span.enter();
    let operation = operation_name(&request.operation);
    let (response, decision) = decide(request, policies, ctx);
    let encoded = serde_json::to_vec(&response.into_review()).map_err(ReviewError::Malformed)?;
    let elapsed = start.elapsed();
    span.record("verdict", decision.verdict);
    span.record("duration_us", elapsed.as_micros() as u64);
    if decision.verdict == "denied" {
        tracing::info!(violations = ?decision.violations, "denied");
    } else {
        tracing::debug!(violations = ?decision.violations, "answered");
    }
    if let Some(m) = metrics {
        m.admission_requests
            .get_or_create(&VerdictLabels {
                verdict: decision.verdict,
                operation,
            })
            .inc();
        m.admission_duration.observe(elapsed.as_secs_f64());
        for (rule, severity) in &decision.violations {
            m.admission_violations
                .get_or_create(&RuleLabels {
                    rule: rule.id(),
                    severity: severity_name(*severity),
                })
                .inc();
        }
    }
    Ok((encoded, decision))
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn decide(
    request: AdmissionRequest<DynamicObject>,
    policies: &PolicySet,
    ctx: &Context,
) -> (AdmissionResponse, Decision) {
    let response = AdmissionResponse::from(&request);
    let pass = |verdict| Decision {
        verdict,
        violations: Vec::new(),
    };
    // Deleting is how users get rid of unsupported clusters; status writes are the controller's.
    if matches!(request.operation, Operation::Delete | Operation::Connect)
        || request.sub_resource.is_some()
    {
        return (response, pass("skipped"));
    }
    let Some(object) = request.object.map(|o| engine_value(o, None)) else {
        return (response, pass("skipped"));
    };
    let old = match request.operation {
        Operation::Update => request.old_object.map(|o| engine_value(o, None)),
        _ => None,
    };
    let Some(assessment) = policies.assess(&object, old.as_ref(), ctx) else {
        return (response, pass("skipped"));
    };
    let evaluation = assessment.evaluation;
    let decision = Decision {
        verdict: evaluation.verdict.as_str(),
        violations: evaluation
            .violations
            .iter()
            .map(|v| (v.rule, v.severity))
            .collect(),
    };
    (
        respond(
            response,
            &request.kind.kind,
            request.namespace.as_deref(),
            &request.name,
            &evaluation,
        ),
        decision,
    )
}

fn respond(
    mut response: AdmissionResponse,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    e: &Evaluation,
) -> AdmissionResponse {
    let warnings: Vec<String> = e
        .of(Severity::Warn)
        .map(|v| {
            format!(
                "[{}] {}{}",
                v.rule.id(),
                v.field
                    .as_deref()
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default(),
                v.message
            )
        })
        .collect();
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    // Each rule once, in the order found: a HashSet, since equal rules need not be adjacent.
    let mut seen = std::collections::HashSet::new();
    let rules: Vec<&str> = e
        .violations
        .iter()
        .map(|v| v.rule.id())
        .filter(|id| seen.insert(*id))
        .collect();
    let mut annotations = HashMap::new();
    annotations.insert("verdict".to_string(), e.verdict.as_str().to_string());
    if !rules.is_empty() {
        annotations.insert("rules".to_string(), rules.join(","));
    }
    response.audit_annotations = annotations;
    if e.verdict != Verdict::Denied {
        return response;
    }
    let who = match namespace {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    };
    let mut message = format!("{who} violates the version support policy:");
    for v in e.of(Severity::Deny) {
        let field = v
            .field
            .as_deref()
            .map(|f| format!("{f}: "))
            .unwrap_or_default();
        let _ = write!(message, "\n- [{}] {field}{}", v.rule.id(), v.message);
    }
    let mut response = response.deny(message);
    response.result.code = 403;
    response.result.reason = "Forbidden".to_string();
    response
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warn => "warn",
        Severity::Deny => "deny",
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
