use jiff::civil::date;
use serde_json::{Value, json};

use super::*;

fn ctx() -> Context {
    Context::new(date(2026, 11, 24)).with_hosting_kubernetes(Some("1.34.0".parse().unwrap()))
}

fn cluster(konvoy: &str, k8s: &str, kba: &str) -> Value {
    json!({
        "apiVersion": "kommander.mesosphere.io/v1beta1", "kind": "KonvoyCluster",
        "metadata": {"name": "c1", "namespace": "kommander", "labels": {"environment": "staging"}},
        "spec": {"provisioner": {"version": konvoy}, "cluster": {"kubernetes": {"version": k8s}, "addons": [
            {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons", "configVersion": kba,
             "addonsList": [{"name": "jaeger", "enabled": true}]}]}}
    })
}

fn review_json(operation: &str, object: Value, old: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "kommander.mesosphere.io", "version": "v1beta1", "kind": "KonvoyCluster"},
            "resource": {"group": "kommander.mesosphere.io", "version": "v1beta1", "resource": "konvoyclusters"},
            "name": "c1", "namespace": "kommander", "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object, "oldObject": old, "dryRun": false
        }
    }))
    .unwrap()
}

fn answer(body: &[u8]) -> Value {
    let (bytes, _) = review(body, &PolicySet::embedded_default(), &ctx(), None).expect("answered");
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    v["response"].clone()
}

#[test]
fn supported_create_is_allowed() {
    let r = answer(&review_json(
        "CREATE",
        cluster("v1.8.5", "1.20.13", "stable-1.20-4.4.0"),
        Value::Null,
    ));
    assert_eq!(r["allowed"], true);
    assert_eq!(
        r["auditAnnotations"]["verdict"], "warned",
        "jaeger is experimental"
    );
    assert!(r["warnings"][0].as_str().unwrap().starts_with(
        "[experimental-component] spec.cluster.addons[0].addonsList[0].name: addon jaeger"
    ));
}

#[test]
fn unsupported_create_is_denied_with_every_rule() {
    let r = answer(&review_json(
        "CREATE",
        cluster("v1.5.6", "1.20.13", "stable-1.19-3.2.0"),
        Value::Null,
    ));
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("KonvoyCluster kommander/c1 violates the version support policy:"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "\n- [konvoy-unsupported] spec.provisioner.version: Konvoy 1.5.6 is out of support"
        ),
        "{msg}"
    );
    assert!(msg.contains("\n- [kubernetes-out-of-range]"), "{msg}");
    assert!(msg.contains("\n- [kba-kubernetes-mismatch]"), "{msg}");
    let rules = r["auditAnnotations"]["rules"].as_str().unwrap();
    assert!(
        rules.contains("konvoy-unsupported") && rules.contains("kba-kubernetes-mismatch"),
        "{rules}"
    );
}

#[test]
fn delete_and_subresources_are_never_blocked() {
    let bad = cluster("v1.5.6", "1.20.13", "stable-1.19-3.2.0");
    assert_eq!(
        answer(&review_json("DELETE", Value::Null, bad.clone()))["allowed"],
        true
    );
    let mut status =
        serde_json::from_slice::<Value>(&review_json("UPDATE", bad.clone(), bad)).unwrap();
    status["request"]["subResource"] = json!("status");
    assert_eq!(
        answer(&serde_json::to_vec(&status).unwrap())["allowed"],
        true
    );
}

#[test]
fn updates_ratchet() {
    let old = cluster("v1.5.6", "1.17.17", "stable-1.17-2.7.0");
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"]["owner"] = json!("team-a");
    let r = answer(&review_json("UPDATE", relabelled, old.clone()));
    assert_eq!(r["allowed"], true, "{r:#}");
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("[konvoy-unsupported]"))
    );

    let r = answer(&review_json(
        "UPDATE",
        cluster("v1.6.3", "1.17.17", "stable-1.17-2.7.0"),
        old.clone(),
    ));
    assert_eq!(r["allowed"], true, "one step toward support: {r:#}");

    let r = answer(&review_json(
        "UPDATE",
        cluster("v1.5.6", "1.17.17", "stable-1.16-2.7.0"),
        old,
    ));
    assert_eq!(r["allowed"], false, "a new violation");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[kba-kubernetes-mismatch]")
    );
}

#[test]
fn untargeted_kinds_pass() {
    let mut body: Value = serde_json::from_slice(&review_json(
        "CREATE",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        Value::Null,
    ))
    .unwrap();
    body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    let r = answer(&serde_json::to_vec(&body).unwrap());
    assert_eq!(r["allowed"], true);
    assert!(r.get("warnings").is_none());
}

#[test]
fn wrong_typed_versions_are_denied_not_allowed_by_accident() {
    let mut obj = cluster("v1.8.5", "1.20.13", "stable-1.20-4.4.0");
    obj["spec"]["cluster"]["kubernetes"]["version"] = json!(1.2);
    let r = answer(&review_json("CREATE", obj, Value::Null));
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("[version-invalid]")
    );
}

#[test]
fn bad_reviews_are_errors() {
    let p = PolicySet::embedded_default();
    for (body, want) in [
        (&b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionRev"[..], "not a JSON AdmissionReview"),
        (&b"[]"[..], "not a JSON AdmissionReview"),
        (&b"{\"apiVersion\": \"admission.k8s.io/v1beta1\", \"kind\": \"AdmissionReview\", \"request\": null}"[..], "unsupported review"),
        (&b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionReview\"}"[..], "has no request"),
    ] {
        let e = review(body, &p, &ctx(), None).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(
        review(deep.as_bytes(), &p, &ctx(), None).is_err(),
        "recursion limit, not a stack overflow"
    );
}

#[test]
fn metrics_count_verdicts_and_rules() {
    let m = Metrics::new();
    let body = review_json(
        "CREATE",
        cluster("v1.5.6", "1.17.17", "stable-1.17-2.7.0"),
        Value::Null,
    );
    review(&body, &PolicySet::embedded_default(), &ctx(), Some(&m)).unwrap();
    let text = m.encode();
    assert!(
        text.contains(
            "supportgate_admission_requests_total{verdict=\"denied\",operation=\"CREATE\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("supportgate_admission_violations_total{rule=\"konvoy-unsupported\",severity=\"deny\"} 1"), "{text}");
    assert!(
        text.contains("supportgate_admission_duration_seconds_count 1"),
        "{text}"
    );
}

/// kube's own types read every answer back and write it out unchanged: the hand-written encoder
/// gives exactly the shape kube's `AdmissionResponse::into_review` gives.
#[test]
fn answers_have_kubes_shape() {
    use kube::core::DynamicObject;
    use kube::core::admission::AdmissionReview;
    let allowed = cluster("v1.8.5", "1.20.13", "stable-1.20-4.4.0");
    let mut plain = allowed.clone();
    plain["spec"]["cluster"]["addons"][0]["addonsList"] = json!([]);
    let bodies = [
        review_json("CREATE", plain, Value::Null),
        review_json("CREATE", allowed.clone(), Value::Null),
        review_json(
            "CREATE",
            cluster("v1.5.6", "1.20.13", "stable-1.19-3.2.0"),
            Value::Null,
        ),
        review_json("DELETE", Value::Null, allowed),
    ];
    let mut verdicts = Vec::new();
    for body in bodies {
        let (bytes, decision) =
            review(&body, &PolicySet::embedded_default(), &ctx(), None).unwrap();
        verdicts.push(decision.verdict.label());
        let ours: Value = serde_json::from_slice(&bytes).unwrap();
        let kubes: AdmissionReview<DynamicObject> = serde_json::from_slice(&bytes).unwrap();
        let response = kubes.response.clone().expect("a response");
        assert_eq!(serde_json::to_value(&kubes).unwrap(), ours);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            ours["response"],
            "as kube encodes its own response"
        );
    }
    assert_eq!(verdicts, ["allowed", "warned", "denied", "skipped"]);
}

/// The review's objects reach the engine as the controller's conversion gives them, metadata
/// included (normalized through `ObjectMeta`: `creationTimestamp: null` dropped, timestamps kept).
#[test]
fn objects_decode_as_engine_value_gives_them() {
    use crate::api::object::EngineObject;
    use crate::api::object::engine_value;
    let mut obj = cluster("v1.8.5", "1.20.13", "stable-1.20-4.4.0");
    obj["metadata"]["creationTimestamp"] = Value::Null;
    obj["metadata"]["annotations"] = json!({"a/b": "c"});
    obj["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Update",
        "apiVersion": "v1", "time": "2021-03-29T23:02:16Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]);
    let mut bare = obj.clone();
    bare.as_object_mut().unwrap().remove("metadata");
    for o in [obj, bare] {
        let via_kube = engine_value(serde_json::from_value(o.clone()).unwrap(), None);
        let EngineObject(direct) = serde_json::from_value(o.clone()).unwrap();
        assert_eq!(direct, via_kube, "{o}");
    }
    // Without a type that is a pair of strings the views differ (kube drops it), and the engine
    // skips the object in both.
    let p = PolicySet::embedded_default();
    for o in [
        json!({"kind": "KonvoyCluster", "spec": 1}),
        json!({"apiVersion": 1, "kind": "KonvoyCluster"}),
        json!({"apiVersion": "kommander.mesosphere.io/v1beta1", "kind": ["KonvoyCluster"]}),
        json!({}),
    ] {
        let via_kube = engine_value(serde_json::from_value(o.clone()).unwrap(), None);
        let EngineObject(direct) = serde_json::from_value(o.clone()).unwrap();
        assert!(p.assess(&via_kube, &ctx()).is_none(), "{o}");
        assert!(p.assess(&direct, &ctx()).is_none(), "{o}");
    }
    let repeated = [
        r#"{"metadata": 5, "metadata": {}}"#,
        r#"{"metadata": {"labels": {"a": 1, "a": "x"}}}"#,
    ];
    for text in repeated {
        assert!(
            serde_json::from_str::<EngineObject>(text).is_err(),
            "{text}"
        );
        assert!(
            serde_json::from_str::<kube::core::DynamicObject>(text).is_err(),
            "{text}"
        );
    }
    for bad in [
        json!({"metadata": {"labels": {"a": 1}}}),
        json!({"metadata": null}),
        json!("string"),
    ] {
        assert!(
            serde_json::from_value::<EngineObject>(bad.clone()).is_err(),
            "{bad}"
        );
        assert!(
            serde_json::from_value::<kube::core::DynamicObject>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn hostile_reviews_are_refused_as_before() {
    let p = PolicySet::embedded_default();
    let good = String::from_utf8(review_json(
        "CREATE",
        cluster("v1.8.5", "1.20.13", "stable-1.20-4.4.0"),
        Value::Null,
    ))
    .unwrap();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases = [
        (
            good.replacen("\"request\":", "\"request\":null,\"request\":", 1),
            "duplicate field `request`",
        ),
        (
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","extra":{nested}}}"#
            ),
            "recursion limit exceeded",
        ),
        (
            good.replacen(",\"userInfo\":{\"username\":\"admin\"}", "", 1),
            "missing field `userInfo`",
        ),
        (
            r#"{"kind":"AdmissionReview","request":null}"#.to_string(),
            "missing field `apiVersion`",
        ),
        (
            good.replacen(
                "\"labels\":{\"environment\":\"staging\"}",
                "\"labels\":{\"environment\":3}",
                1,
            ),
            "not a JSON AdmissionReview",
        ),
    ];
    for (body, want) in cases {
        assert!(body != good, "the case changed the body");
        let e = review(body.as_bytes(), &p, &ctx(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn before_the_policies_are_synced_a_create_or_update_is_refused_with_503_and_a_delete_passes() {
    let good = cluster("v1.8.5", "1.20.13", "stable-1.20-4.4.0");
    for op in ["CREATE", "UPDATE"] {
        let (bytes, decision) =
            review_unsynced(&review_json(op, good.clone(), good.clone())).expect("answered");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let r = &v["response"];
        assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(r["allowed"], false, "{op}: even a supported object waits");
        assert_eq!(r["status"]["code"], 503);
        assert!(
            r["status"]["message"]
                .as_str()
                .unwrap()
                .contains("not synced yet"),
            "{r}"
        );
        assert_eq!(decision.verdict.label(), "unsynced");
    }
    let (bytes, _) = review_unsynced(&review_json("DELETE", Value::Null, good)).expect("answered");
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(matches!(
        review_unsynced(b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}"),
        Err(ReviewError::WrongVersion { .. })
    ));
}
