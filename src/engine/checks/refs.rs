//! KBA and Kommander release tags: built for the cluster's Kubernetes minor, Kommander paired
//! with the product minor, and stable.

use crate::engine::checks::Scope;
use crate::engine::collect::Out;
use crate::engine::fix;
use crate::engine::messages;
use crate::engine::policy::Release;
use crate::engine::rules::{Rule, Severity};
use crate::engine::tag::ReleaseTag;
use crate::engine::targets::{FieldKind, Located};
use crate::engine::version::Version;

pub(crate) fn check_kba(s: &mut Scope, out: &mut Out, k8s: Option<&Version>) {
    let minor = s.plan.kubernetes_minor().or(k8s.map(Version::minor));
    let kubernetes_to = s.plan.kubernetes_change();
    for at in s.all(FieldKind::KbaRef) {
        let Some(tag) = out.tag(&at, "Kubernetes Base Addons", "stable-1.20-4.4.0") else {
            continue;
        };
        // The exact KBA version for another minor is not the policy's to know.
        let to = minor.and_then(|m| fix::kba_target(&tag, m));
        if let Some(to) = &to {
            s.plan.record(&at, to.clone(), true);
        }
        if let Some(k) = k8s
            && tag.kubernetes != k.minor()
        {
            let msg = messages::kba_kubernetes_mismatch(
                &tag,
                k,
                to.as_deref(),
                minor,
                kubernetes_to.as_deref(),
            );
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
    let minor = s.plan.kubernetes_minor().or(k8s.map(Version::minor));
    let kubernetes_to = s.plan.kubernetes_change();
    // The pairing of the combination's release, which may be an upgrade of the object's.
    let paired_to = s.plan.release.and_then(|t| t.kommander);
    let moved_to = s
        .plan
        .release
        .filter(|_| s.plan.moves_release)
        .map(|t| t.minor);
    for at in s.all(FieldKind::KommanderRef) {
        let Some(tag) = out.tag(&at, "Kommander", "stable-1.20-1.4.4") else {
            continue;
        };
        let to = fix::kommander_target(&tag, minor.unwrap_or(tag.kubernetes), paired_to);
        if let Some(to) = &to {
            s.plan.record(&at, to.clone(), true);
        }
        let product = &s.policy.product_name;
        if let Some(r) = release
            && let Some(paired) = r.kommander
            && paired != tag.version.minor()
        {
            let msg = messages::kommander_unpaired(
                &tag,
                product,
                r.minor,
                paired,
                to.as_deref(),
                moved_to,
            );
            out.push(Rule::KommanderMismatch, Severity::Deny, &at, msg);
        }
        if let Some(k) = k8s
            && tag.kubernetes != k.minor()
        {
            let msg = messages::kommander_kubernetes_mismatch(
                &tag,
                k,
                to.as_deref(),
                minor,
                kubernetes_to.as_deref(),
            );
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
