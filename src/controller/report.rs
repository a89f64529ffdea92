//! PolicyReports (wgpolicyk8s.io/v1alpha2) for kinds that cannot hold a condition, and for every
//! kind when a policy asks: rendering one, and reading the last verdict back from it.
//!
//! Each report records the `Supported` condition its object would carry in an annotation, so a
//! new process (a restart, a failover) knows what was already said and does not announce it
//! again.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::engine::Evaluation;
use crate::engine::policyset::PolicySet;
use crate::engine::rules::Severity;

/// The annotation on a report holding the object's `Supported` condition as JSON.
pub const CONDITION_ANNOTATION: &str = "supportgate.dev/supported-condition";

/// Where one object's report lives.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRef {
    pub name: String,
    /// `None` for a cluster-scoped object: its report is a ClusterPolicyReport.
    pub namespace: Option<String>,
    /// The report's `scope`: a reference to the object.
    pub scope: Value,
}

impl ReportRef {
    pub fn for_object(ar: &ApiResource, obj: &DynamicObject, namespaced: bool) -> Self {
        let uid = obj.uid().unwrap_or_default();
        let namespace = obj.namespace().filter(|_| namespaced);
        let mut scope = json!({"apiVersion": ar.api_version, "kind": ar.kind, "name": obj.name_any(), "uid": uid});
        if let Some(ns) = &namespace {
            scope["namespace"] = json!(ns);
        }
        ReportRef {
            // The uid keeps a recreated object from reading its predecessor's verdict.
            name: format!("supportgate-{uid}"),
            namespace,
            scope,
        }
    }

    fn api(&self, client: Client) -> Api<DynamicObject> {
        let ar = policy_report_resource(self.namespace.is_none());
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &ar),
            None => Api::all_with(client, &ar),
        }
    }

    /// The condition recorded in the report; `None` when there is no report (or one written
    /// before reports recorded it).
    pub async fn read_condition(&self, client: Client) -> Result<Option<Condition>, kube::Error> {
        let report = self.api(client).get_opt(&self.name).await?;
        Ok(report.as_ref().and_then(recorded_condition))
    }

    pub async fn write(
        &self,
        client: Client,
        field_manager: &str,
        body: &Value,
    ) -> Result<(), kube::Error> {
        self.api(client)
            .patch(
                &self.name,
                &PatchParams::apply(field_manager).force(),
                &Patch::Apply(body),
            )
            .await?;
        Ok(())
    }
}

/// The condition a report records. One that does not parse counts as none: the verdict is then
/// announced again, which is better than never correcting it.
pub fn recorded_condition(report: &DynamicObject) -> Option<Condition> {
    let raw = report.annotations().get(CONDITION_ANNOTATION)?;
    serde_json::from_str(raw).ok()
}

pub fn policy_report_resource(cluster_scoped: bool) -> ApiResource {
    let (kind, plural) = if cluster_scoped {
        ("ClusterPolicyReport", "clusterpolicyreports")
    } else {
        ("PolicyReport", "policyreports")
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", kind),
        plural,
    )
}

/// The name reports give the policies in force.
pub fn policies_name(set: &PolicySet) -> String {
    if set.is_embedded_default() {
        "supportgate-default".into()
    } else {
        set.policies()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The report for one object: one result per violation, or one pass, and the condition.
pub fn report_body(
    at: &ReportRef,
    evaluation: &Evaluation,
    policy: &str,
    condition: &Condition,
    now: Timestamp,
) -> Value {
    let stamp = json!({"seconds": now.as_second(), "nanos": 0});
    let mut results = Vec::new();
    let (mut pass, mut fail, mut warn) = (0, 0, 0);
    for v in &evaluation.violations {
        let (result, severity) = match v.severity {
            Severity::Deny => ("fail", "high"),
            Severity::Warn => ("warn", "medium"),
            Severity::Info => ("pass", "info"),
        };
        match v.severity {
            Severity::Deny => fail += 1,
            Severity::Warn => warn += 1,
            Severity::Info => pass += 1,
        }
        let mut r = json!({
            "policy": policy, "rule": v.rule.id(), "result": result, "severity": severity,
            "message": v.message, "source": "supportgate", "category": "Version support",
            "timestamp": stamp,
        });
        if let Some(f) = &v.field {
            r["properties"] = json!({"field": f});
        }
        if let Some(x) = &v.exception {
            r["properties"]["exception"] = json!(x);
        }
        results.push(r);
    }
    if evaluation
        .violations
        .iter()
        .all(|v| v.severity == Severity::Info)
    {
        pass += 1;
        results.push(json!({
            "policy": policy, "rule": "supported", "result": "pass", "severity": "info",
            "message": "supported by the version support policy", "source": "supportgate",
            "category": "Version support", "timestamp": stamp,
        }));
    }
    let ar = policy_report_resource(at.namespace.is_none());
    // A condition always serializes (strings, an integer and a timestamp).
    let recorded = serde_json::to_string(condition).unwrap_or_default();
    let mut metadata = json!({
        "name": at.name,
        "labels": {"app.kubernetes.io/managed-by": "supportgate"},
        "annotations": {CONDITION_ANNOTATION: recorded},
    });
    if let Some(ns) = &at.namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": ar.api_version, "kind": ar.kind, "metadata": metadata, "scope": at.scope,
        "summary": {"pass": pass, "fail": fail, "warn": warn, "error": 0, "skip": 0},
        "results": results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::condition::supported_condition;
    use crate::engine::rules::Rule;
    use crate::engine::{Verdict, Violation};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn addon(namespace: Option<&str>) -> (ApiResource, DynamicObject) {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("kubeaddons.mesosphere.io", "v1beta2", "Addon"),
            "addons",
        );
        let mut obj = DynamicObject::new("istio", &ar);
        obj.metadata.namespace = namespace.map(str::to_string);
        obj.metadata.uid = Some("u".into());
        (ar, obj)
    }

    fn denied() -> Evaluation {
        Evaluation {
            verdict: Verdict::Denied,
            violations: vec![
                Violation {
                    exception: None,
                    rule: Rule::ExperimentalComponent,
                    severity: Severity::Deny,
                    message: "m".into(),
                    field: Some("f".into()),
                },
                Violation {
                    exception: None,
                    rule: Rule::SecondarySupport,
                    severity: Severity::Info,
                    message: "n".into(),
                    field: None,
                },
            ],
        }
    }

    fn condition(e: &Evaluation) -> Condition {
        supported_condition(e, Some(2), None, Time(Timestamp::UNIX_EPOCH))
    }

    #[test]
    fn reports_have_one_result_per_violation_or_a_pass() {
        let (ar, obj) = addon(Some("kubeaddons"));
        let at = ReportRef::for_object(&ar, &obj, true);
        assert_eq!(at.name, "supportgate-u");
        let e = denied();
        let r = report_body(&at, &e, "default", &condition(&e), Timestamp::UNIX_EPOCH);
        assert_eq!(r["kind"], "PolicyReport");
        assert_eq!(r["metadata"]["namespace"], "kubeaddons");
        assert_eq!(r["scope"]["namespace"], "kubeaddons");
        assert_eq!(r["scope"]["uid"], "u");
        assert_eq!(
            r["summary"],
            json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0})
        );
        assert_eq!(r["results"][0]["rule"], "experimental-component");
        assert_eq!(r["results"][0]["properties"]["field"], "f");
        let ok = Evaluation {
            verdict: Verdict::Allowed,
            violations: vec![],
        };
        let at = ReportRef::for_object(&ar, &obj, false);
        assert_eq!(at.namespace, None, "a cluster-scoped kind's report");
        let r = report_body(&at, &ok, "default", &condition(&ok), Timestamp::UNIX_EPOCH);
        assert_eq!(r["kind"], "ClusterPolicyReport");
        assert_eq!(r["results"][0]["result"], "pass");
        assert!(r["metadata"].get("namespace").is_none());
    }

    #[test]
    fn excepted_results_name_their_exception() {
        let (ar, obj) = addon(Some("kubeaddons"));
        let at = ReportRef::for_object(&ar, &obj, true);
        let mut e = denied();
        e.verdict = Verdict::Warned;
        e.violations[0].severity = Severity::Warn;
        e.violations[0].exception = Some("supportgate/legacy".into());
        let c = condition(&e);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "Excepted")
        );
        let r = report_body(&at, &e, "default", &c, Timestamp::UNIX_EPOCH);
        assert_eq!(r["results"][0]["result"], "warn");
        assert_eq!(
            r["results"][0]["properties"]["exception"],
            "supportgate/legacy"
        );
        assert_eq!(r["results"][0]["properties"]["field"], "f");
        assert!(r["results"][1]["properties"].get("exception").is_none());
    }

    #[test]
    fn the_condition_reads_back_from_the_report() {
        let (ar, obj) = addon(Some("ns"));
        let at = ReportRef::for_object(&ar, &obj, true);
        let e = denied();
        let c = condition(&e);
        let body = report_body(&at, &e, "default", &c, Timestamp::UNIX_EPOCH);
        let stored: DynamicObject = serde_json::from_value(body).unwrap();
        assert_eq!(recorded_condition(&stored), Some(c));

        let mut edited = stored.clone();
        edited
            .annotations_mut()
            .insert(CONDITION_ANNOTATION.into(), "{not json".into());
        assert_eq!(recorded_condition(&edited), None);
        edited.annotations_mut().clear();
        assert_eq!(recorded_condition(&edited), None, "a report from before");
    }
}
