//! AdmissionReview in, AdmissionReview out: the webhook's decision, without any networking.
//!
//! The request path makes no API calls: it reads the policy snapshot and the engine decides.

use std::fmt::Write as _;
use std::time::Instant;

use kube::core::admission::Operation;
use thiserror::Error;

use crate::api::object::EngineObject;
use crate::base::metrics::{Metrics, RuleLabels, VerdictLabels};
use crate::engine::policyset::{PolicySet, Subject};
use crate::engine::rules::{Rule, Severity};
use crate::engine::{Context, Evaluation, Verdict};
use crate::webhook::wire::{Answer, Request, Review};

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
    pub verdict: Outcome,
    pub violations: Vec<(Rule, Severity)>,
}

/// What became of a review: the engine's verdict, or why it was not judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Judged(Verdict),
    /// Never judged: a delete, a subresource, no object, or a kind no policy targets.
    Skipped,
    /// Refused before the policies were synced.
    Unsynced,
}

impl Outcome {
    /// The `verdict` label of `supportgate_admission_requests` and the `verdict` audit
    /// annotation: the one place a verdict becomes a string on the webhook's side.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Judged(Verdict::Allowed) => "allowed",
            Outcome::Judged(Verdict::Warned) => "warned",
            Outcome::Judged(Verdict::Denied) => "denied",
            Outcome::Skipped => "skipped",
            Outcome::Unsynced => "unsynced",
        }
    }
}

/// Decodes a review, decides, and encodes the answer.
pub fn review(
    body: &[u8],
    policies: &PolicySet,
    ctx: &Context,
    metrics: Option<&Metrics>,
) -> Result<(Vec<u8>, Decision), ReviewError> {
    let start = Instant::now();
    let request = decode_request(body)?;
    // One field at info level: the span is formatted for every review, and allowed reviews log
    // nothing else at info. What identifies the object is on the events below.
    let span = tracing::info_span!("admission", uid = %request.uid);
    let _enter = span.enter();
    let operation = operation_name(&request.operation);
    let (encoded, decision) = decide(&request, policies, ctx);
    let encoded = encoded.map_err(ReviewError::Malformed)?;
    let elapsed = start.elapsed();
    let duration_us = elapsed.as_micros() as u64;
    let namespace = request.namespace.as_deref().unwrap_or("");
    if decision.verdict == Outcome::Judged(Verdict::Denied) {
        tracing::info!(
            kind = %request.kind.kind, namespace, name = %request.name, operation,
            dry_run = request.dry_run, duration_us, violations = ?decision.violations, "denied"
        );
    } else {
        tracing::debug!(
            kind = %request.kind.kind, namespace, name = %request.name, operation,
            dry_run = request.dry_run, duration_us, verdict = decision.verdict.label(),
            violations = ?decision.violations, "answered"
        );
    }
    if let Some(m) = metrics {
        m.admission_requests
            .get_or_create(&VerdictLabels {
                verdict: decision.verdict.label(),
                operation,
            })
            .inc();
        m.admission_duration.observe(elapsed.as_secs_f64());
        for (rule, severity) in &decision.violations {
            m.admission_violations
                .get_or_create(&RuleLabels {
                    rule: rule.id(),
                    severity: *severity,
                })
                .inc();
        }
    }
    Ok((encoded, decision))
}

/// The answer before the SupportPolicies and SupportExceptions are synced: a CREATE or UPDATE
/// is refused with 503 (the client retries), since the policies in force are not known yet and
/// judging by the embedded default could admit what the cluster's policy refuses, or refuse
/// what an exception admits. A `url:` webhook has no readiness gate in front of it, so this is
/// the gate. Deletes and subresources pass, as they always do.
pub fn review_unsynced(body: &[u8]) -> Result<(Vec<u8>, Decision), ReviewError> {
    let request = decode_request(body)?;
    let passes = never_judged(&request);
    let denial = (!passes).then(|| {
        (
            503,
            "ServiceUnavailable",
            "supportgate is starting: its SupportPolicies and SupportExceptions are not synced yet, so it cannot tell whether this is supported; retry in a few seconds".to_string(),
        )
    });
    let verdict = if passes {
        Outcome::Skipped
    } else {
        Outcome::Unsynced
    };
    let encoded = serde_json::to_vec(&Answer {
        uid: &request.uid,
        allowed: passes,
        denial,
        audit_annotations: &[("verdict", verdict.label())],
        warnings: Vec::new(),
    })
    .map_err(ReviewError::Malformed)?;
    Ok((
        encoded,
        Decision {
            verdict,
            violations: Vec::new(),
        },
    ))
}

/// The request of an `admission.k8s.io/v1` AdmissionReview.
fn decode_request(body: &[u8]) -> Result<Request, ReviewError> {
    let review: Review = serde_json::from_slice(body).map_err(ReviewError::Malformed)?;
    if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
        return Err(ReviewError::WrongVersion {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    Ok(request)
}

/// Deleting is how users get rid of unsupported clusters; status writes are the controller's.
fn never_judged(request: &Request) -> bool {
    matches!(request.operation, Operation::Delete | Operation::Connect)
        || request.sub_resource.is_some()
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
    request: &Request,
    policies: &PolicySet,
    ctx: &Context,
) -> (Result<Vec<u8>, serde_json::Error>, Decision) {
    let skip = || {
        let answer = Answer {
            uid: &request.uid,
            allowed: true,
            denial: None,
            audit_annotations: &[],
            warnings: Vec::new(),
        };
        let decision = Decision {
            verdict: Outcome::Skipped,
            violations: Vec::new(),
        };
        (serde_json::to_vec(&answer), decision)
    };
    if never_judged(request) {
        return skip();
    }
    let Some(EngineObject(object)) = &request.object else {
        return skip();
    };
    let old = match request.operation {
        Operation::Update => request.old_object.as_ref().map(|o| &o.0),
        _ => None,
    };
    let Some(assessment) = policies.assess(Subject::update(object, old), ctx) else {
        return skip();
    };
    let evaluation = assessment.evaluation;
    let decision = Decision {
        verdict: Outcome::Judged(evaluation.verdict),
        violations: evaluation
            .violations
            .iter()
            .map(|v| (v.rule, v.severity))
            .collect(),
    };
    (respond(request, &evaluation), decision)
}

fn respond(request: &Request, e: &Evaluation) -> Result<Vec<u8>, serde_json::Error> {
    let warnings: Vec<String> = e
        .of(Severity::Warn)
        .map(|v| {
            let mut w = format!("[{}] ", v.rule.id());
            if let Some(f) = &v.field {
                let _ = write!(w, "{f}: ");
            }
            w.push_str(&v.message);
            w
        })
        .collect();
    // Each rule once, in the order found; a handful of rules, so a linear scan.
    let mut rules = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for id in e.violations.iter().map(|v| v.rule.id()) {
        if !seen.contains(&id) {
            if !seen.is_empty() {
                rules.push(',');
            }
            rules.push_str(id);
            seen.push(id);
        }
    }
    let verdict = Outcome::Judged(e.verdict).label();
    let verdict = [("verdict", verdict), ("rules", rules.as_str())];
    let audit_annotations = if rules.is_empty() {
        &verdict[..1]
    } else {
        &verdict[..]
    };
    let denial = (e.verdict == Verdict::Denied).then(|| {
        let kind = &request.kind.kind;
        let name = &request.name;
        let mut message = match request.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
            _ => format!("{kind} {name}"),
        };
        message.push_str(" violates the version support policy:");
        for v in e.of(Severity::Deny) {
            let _ = write!(message, "\n- [{}] ", v.rule.id());
            if let Some(f) = &v.field {
                let _ = write!(message, "{f}: ");
            }
            message.push_str(&v.message);
        }
        (403, "Forbidden", message)
    });
    serde_json::to_vec(&Answer {
        uid: &request.uid,
        allowed: denial.is_none(),
        denial,
        audit_annotations,
        warnings,
    })
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
