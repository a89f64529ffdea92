use super::*;
use crate::cli::input::SourcedObject;
use serde_json::json;

fn loaded(object: Value) -> Loaded {
    Loaded {
        object: SourcedObject {
            source: "x.yaml".into(),
            document: 1,
            item: None,
            object,
        },
        coercions: Vec::new(),
    }
}

fn obj(kind: &str, ns: Option<&str>, name: &str, v: &str) -> Value {
    json!({"apiVersion": "konvoy.mesosphere.io/v1beta2", "kind": kind,
           "metadata": {"name": name, "namespace": ns}, "spec": {"version": v}})
}

#[test]
fn a_configuration_pairs_with_the_provisioner_of_its_name_and_namespace_only() {
    let objects = vec![
        loaded(obj(PROVISIONER, None, "prod-east", "v1.8.4")),
        loaded(obj(PROVISIONER, Some("team"), "prod-east", "v1.8.3")),
    ];
    let p = Provisioners::index(&objects);
    let cfg = obj(CONFIGURATION, None, "prod-east", "v1.8.5");
    assert_eq!(
        p.paired_with(&cfg).map(|o| o["spec"]["version"].clone()),
        Some(json!("v1.8.4"))
    );
    let in_team = obj(CONFIGURATION, Some("team"), "prod-east", "v1.8.5");
    assert_eq!(
        p.paired_with(&in_team)
            .map(|o| o["spec"]["version"].clone()),
        Some(json!("v1.8.3"))
    );
    assert!(
        p.paired_with(&obj(CONFIGURATION, None, "west", "v1.8.5"))
            .is_none()
    );
    assert!(
        p.paired_with(&obj(PROVISIONER, None, "prod-east", "v1.8.5"))
            .is_none(),
        "a provisioner is never judged beside itself"
    );
}
