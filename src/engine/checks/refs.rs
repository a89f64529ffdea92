//! KBA and Kommander release tags: built for the cluster's Kubernetes minor, Kommander paired
//! with the product minor, and stable.

use crate::engine::checks::Scope;
use crate::engine::collect::Out;
use crate::engine::messages;
use crate::engine::policy::Release;
use crate::engine::rules::{Rule, Severity};
use crate::engine::tag::ReleaseTag;
use crate::engine::targets::{FieldKind, Located};
use crate::engine::version::Version;

pub(crate) fn check_kba(s: &mut Scope, out: &mut Out, k8s: Option<&Version>) {
    for at in s.all(FieldKind::KbaRef) {
        let Some(tag) = out.tag(&at, "Kubernetes Base Addons", "stable-1.20-4.4.0") else {
            continue;
        };
        if let Some(k) = k8s
            && tag.kubernetes != k.minor()
        {
            let msg = messages::kba_kubernetes_mismatch(&tag, k);
            out.push(Rule::KbaKubernetesMismatch, Severity::Deny, &at, msg);
        }
        prerelease(out, &at, "KBA", &tag);
    }
}

/// Kommander refs: lock-step with the product minor, and deployed on its tag's Kubernetes minor.
pub(crate) fn check_kommander(
    s: &mut Scope,
    out: &mut Out,
    release: Option<&Release>,
    k8s: Option<&Version>,
) {
    for at in s.all(FieldKind::KommanderRef) {
        let Some(tag) = out.tag(&at, "Kommander", "stable-1.20-1.4.4") else {
            continue;
        };
        if let Some(r) = release
            && let Some(paired) = r.kommander
            && paired != tag.version.minor()
        {
            let hint = k8s.map(|k| k.minor()).unwrap_or(tag.kubernetes);
            let msg =
                messages::kommander_unpaired(&tag, &s.policy.product_name, r.minor, paired, hint);
            out.push(Rule::KommanderMismatch, Severity::Deny, &at, msg);
        }
        if let Some(k) = k8s
            && tag.kubernetes != k.minor()
        {
            let msg = messages::kommander_kubernetes_mismatch(&tag, k);
            out.push(Rule::KommanderMismatch, Severity::Deny, &at, msg);
        }
        prerelease(out, &at, "Kommander", &tag);
    }
}

fn prerelease(out: &mut Out, at: &Located, what: &str, tag: &ReleaseTag) {
    if tag.is_prerelease() {
        let msg = messages::prerelease_tag(what, tag);
        out.push(Rule::Prerelease, Severity::Warn, at, msg);
    }
}
