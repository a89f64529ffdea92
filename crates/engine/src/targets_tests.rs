use super::*;
use serde_json::json;

#[test]
fn every_preset_compiles() {
    for t in presets() {
        CompiledTarget::compile(&t).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn matching_is_by_group_version_and_kind() {
    let ts: Vec<CompiledTarget> = presets()
        .iter()
        .map(|t| CompiledTarget::compile(t).unwrap())
        .collect();
    let find = |av: &str, k: &str| {
        ts.iter()
            .find(|t| t.matches(av, k))
            .map(|t| t.spec.kind.clone())
    };
    assert_eq!(
        find("kommander.mesosphere.io/v1beta1", "KonvoyCluster").as_deref(),
        Some("KonvoyCluster")
    );
    assert_eq!(
        find("kommander.mesosphere.io/v1beta2", "KonvoyCluster"),
        None
    );
    assert_eq!(
        find("konvoy.mesosphere.io/v1beta2", "ClusterConfiguration").as_deref(),
        Some("ClusterConfiguration")
    );
    assert_eq!(
        find("konvoy.mesosphere.io/v1alpha1", "ClusterConfiguration"),
        None
    );
    assert_eq!(find("v1", "ConfigMap"), None);
    assert_eq!(
        find("kudo.dev/v1beta1", "Instance").as_deref(),
        Some("Instance")
    );
}

#[test]
fn kba_filter_picks_the_right_addons_entry() {
    let t = CompiledTarget::compile(&presets()[1]).unwrap();
    let obj = json!({"spec": {"addons": [
        {"configRepository": "https://github.com/mesosphere/kubeaddons-kommander", "configVersion": "stable-1.20-1.4.4"},
        {"configRepository": "https://github.com/mesosphere/kubernetes-base-addons.git", "configVersion": "stable-1.20-4.4.0",
         "addonsList": [{"name": "istio", "enabled": false}, {"name": "traefik", "enabled": true}]},
    ]}});
    let kba = select(t.path(FieldKind::KbaRef).unwrap(), &obj);
    assert_eq!(kba.len(), 1);
    assert_eq!(kba[0].field(), "spec.addons[1].configVersion");
    assert_eq!(kba[0].pointer(), "/spec/addons/1/configVersion");
    assert_eq!(kba[0].value, &json!("stable-1.20-4.4.0"));
    let kommander = select(t.path(FieldKind::KommanderRef).unwrap(), &obj);
    assert_eq!(kommander[0].value, &json!("stable-1.20-1.4.4"));
    let addons = select(t.path(FieldKind::EnabledAddons).unwrap(), &obj);
    assert_eq!(addons.len(), 1);
    assert_eq!(addons[0].value, &json!("traefik"));
}

#[test]
fn bad_queries_are_reported_with_their_field() {
    let mut t = presets()[0].clone();
    t.fields.kba_ref = Some("$.spec[".into());
    let e = CompiledTarget::compile(&t).unwrap_err();
    assert_eq!(e.field, "kbaRef");
    assert!(e.to_string().contains("KonvoyCluster"));
}

#[test]
fn odd_keys_render_bracketed() {
    let t = CompiledTarget::compile(&presets()[3]).unwrap();
    let obj = json!({"metadata": {"annotations": {"catalog.kubeaddons.mesosphere.io/origin-repository-version": "stable-1.20-4.4.0"}}});
    let got = select(t.path(FieldKind::KbaRef).unwrap(), &obj);
    assert_eq!(
        got[0].field(),
        "metadata.annotations['catalog.kubeaddons.mesosphere.io/origin-repository-version']"
    );
    assert_eq!(
        got[0].pointer(),
        "/metadata/annotations/catalog.kubeaddons.mesosphere.io~1origin-repository-version"
    );
    assert_eq!(obj.pointer(&got[0].pointer()), Some(got[0].value));
}
