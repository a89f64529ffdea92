use super::*;
use serde_json::json;

#[test]
fn identity_ignores_the_api_version_but_not_the_group() {
    let a =
        json!({"apiVersion": "g.io/v1", "kind": "K", "metadata": {"name": "n", "namespace": "ns"}});
    let b =
        json!({"apiVersion": "g.io/v2", "kind": "K", "metadata": {"name": "n", "namespace": "ns"}});
    let c =
        json!({"apiVersion": "h.io/v1", "kind": "K", "metadata": {"name": "n", "namespace": "ns"}});
    let core = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "n"}});
    assert_eq!(key_of(&a), key_of(&b));
    assert_ne!(key_of(&a), key_of(&c));
    assert_eq!(
        key_of(&core),
        Some((String::new(), "K".into(), None, "n".into()))
    );
    assert_eq!(key_of(&json!({"apiVersion": "v1", "kind": "K"})), None);
}
