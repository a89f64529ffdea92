//! `version-missing`: a targeted object that names no product version, or no Kubernetes version
//! where its target says one lives, is reported instead of silently allowed. Its severity is the
//! policy's call (`spec.missingVersion`).

use crate::checks::Scope;
use crate::collect::Out;
use crate::messages;
use crate::rules::{Rule, Severity};
use crate::targets::FieldKind;

/// Runs after the other families, which have recorded what resolved.
pub(crate) fn check(s: &Scope, out: &mut Out) {
    let severity = s.policy.missing_version;
    for kind in [FieldKind::ProductVersion, FieldKind::KubernetesVersion] {
        let Some(query) = s.target.query(kind) else {
            continue;
        };
        if s.resolved.contains(kind) {
            continue;
        }
        // Named only once known missing, so a complete object builds no text.
        let what = match kind {
            FieldKind::ProductVersion => messages::product_version(&s.policy.product_name),
            _ => messages::KUBERNETES_VERSION.to_string(),
        };
        let msg = messages::version_missing(&what, query, severity == Severity::Deny);
        out.push_absent(Rule::VersionMissing, severity, query, msg);
    }
}
