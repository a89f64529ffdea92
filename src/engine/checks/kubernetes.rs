//! The cluster's Kubernetes version: inside its product release's range, and GA.

use crate::engine::checks::Scope;
use crate::engine::collect::{Lazy, Out};
use crate::engine::messages;
use crate::engine::policy::Release;
use crate::engine::rules::{Rule, Severity};
use crate::engine::targets::FieldKind;
use crate::engine::version::Version;

/// The Kubernetes version the cluster runs: the object's own, or, for in-cluster objects whose
/// target names none, the hosting cluster's. Only the object's own is checked here.
pub(crate) fn check(s: &mut Scope, out: &mut Out, release: Option<&Release>) -> Option<Version> {
    if s.target.kubernetes_version.is_none() {
        return s.ctx.hosting_kubernetes.clone();
    }
    let at = s.first(FieldKind::KubernetesVersion)?;
    let what = Lazy(|| format!("the {}", messages::KUBERNETES_VERSION));
    let k = out.version(&at, &what, "1.20.13")?;
    if let Some(r) = release
        && !(r.kubernetes_min.admits_as_min(&k) && r.kubernetes_max.admits_as_max(&k))
    {
        let suggestion = messages::kubernetes_suggestion(
            r.kubernetes_default.as_ref(),
            &r.kubernetes_min,
            &r.kubernetes_max,
        );
        let msg = messages::kubernetes_out_of_range(
            &k,
            &s.policy.product_name,
            r.minor,
            &r.kubernetes_range(),
            &at.field(),
            &suggestion,
        );
        out.push(Rule::KubernetesOutOfRange, Severity::Deny, &at, msg);
    }
    if k.is_prerelease() {
        let msg = messages::prerelease_kubernetes(&k);
        out.push(Rule::Prerelease, Severity::Warn, &at, msg);
    }
    Some(k)
}
