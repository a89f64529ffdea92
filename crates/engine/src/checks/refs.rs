//! KBA and Kommander release tags: built for the cluster's Kubernetes minor, Kommander paired
//! with the product minor, and stable.
//!
//! A tag is read from the ref field the target names (`configVersion`) or, for an entry that has
//! none, from the ref its repository URL carries (`…/kubernetes-base-addons#stable-1.18-3.0.0`,
//! `?ref=`): either way it is judged by the same rules. Entries that neither identify
//! are [`crate::checks::entries`]'s.

use crate::checks::Scope;
use crate::collect::Out;
use crate::fix;
use crate::messages;
use crate::policy::Release;
use crate::rules::{Rule, Severity};
use crate::tag::ReleaseTag;
use crate::targets::{FieldKind, Located};
use crate::version::{Minor, Version};

pub(crate) const KBA: &str = "Kubernetes Base Addons";
pub(crate) const KBA_EXAMPLE: &str = "stable-1.20-4.4.0";
pub(crate) const KOMMANDER: &str = "Kommander";
pub(crate) const KOMMANDER_EXAMPLE: &str = "stable-1.20-1.4.4";

/// Where a tag came from: the ref field, which a fix may rewrite, or the repository URL, which
/// it may not (the tag is only part of the string).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Field,
    Url,
}

/// The cluster's Kubernetes facts every tag is judged against, read once per object.
pub(crate) struct Cluster<'k> {
    pub k8s: Option<&'k Version>,
    /// The combination's Kubernetes minor, else the cluster's.
    pub minor: Option<Minor>,
    /// The combination's Kubernetes version when it differs from the cluster's.
    pub kubernetes_to: Option<String>,
}

impl<'k> Cluster<'k> {
    pub fn of(s: &Scope, k8s: Option<&'k Version>) -> Self {
        Cluster {
            k8s,
            minor: s.plan.kubernetes_minor().or(k8s.map(Version::minor)),
            kubernetes_to: s.plan.kubernetes_change(),
        }
    }
}

pub(crate) fn check_kba(s: &mut Scope, out: &mut Out, k8s: Option<&Version>) {
    let c = Cluster::of(s, k8s);
    for at in s.all(FieldKind::KbaRef) {
        if let Some(tag) = out.tag(&at, KBA, KBA_EXAMPLE) {
            kba_tag(s, out, &c, &at, &tag, Source::Field);
        }
    }
}

pub(crate) fn kba_tag(
    s: &mut Scope,
    out: &mut Out,
    c: &Cluster,
    at: &Located,
    tag: &ReleaseTag,
    source: Source,
) {
    // The exact KBA version for another minor is not the policy's to know.
    let to = c.minor.and_then(|m| fix::kba_target(tag, m));
    if let Some(to) = &to
        && source == Source::Field
    {
        s.plan.record(at, to.clone(), true);
    }
    if let Some(k) = c.k8s
        && tag.kubernetes != k.minor()
    {
        let to = to.as_deref().filter(|_| source == Source::Field);
        let msg =
            messages::kba_kubernetes_mismatch(tag, k, to, c.minor, c.kubernetes_to.as_deref());
        out.push(Rule::KbaKubernetesMismatch, Severity::Deny, at, msg);
    }
    prerelease(out, at, "KBA", tag);
}

/// Kommander refs: lock-step with the product minor, and deployed on its tag's Kubernetes minor.
pub(crate) fn check_kommander(
    s: &mut Scope,
    out: &mut Out,
    release: Option<&Release>,
    k8s: Option<&Version>,
) {
    let c = Cluster::of(s, k8s);
    for at in s.all(FieldKind::KommanderRef) {
        if let Some(tag) = out.tag(&at, KOMMANDER, KOMMANDER_EXAMPLE) {
            kommander_tag(s, out, &c, release, &at, &tag, Source::Field);
        }
    }
}

pub(crate) fn kommander_tag(
    s: &mut Scope,
    out: &mut Out,
    c: &Cluster,
    release: Option<&Release>,
    at: &Located,
    tag: &ReleaseTag,
    source: Source,
) {
    // The pairing of the combination's release, which may be an upgrade of the object's.
    let paired_to = s.plan.release.and_then(|t| t.kommander);
    let moved_to = s
        .plan
        .release
        .filter(|_| s.plan.moves_release)
        .map(|t| t.minor);
    let to = fix::kommander_target(tag, c.minor.unwrap_or(tag.kubernetes), paired_to)
        .filter(|_| source == Source::Field);
    if let Some(to) = &to {
        s.plan.record(at, to.clone(), true);
    }
    let product = &s.policy.product_name;
    if let Some(r) = release
        && let Some(paired) = r.kommander
        && paired != tag.version.minor()
    {
        let msg =
            messages::kommander_unpaired(tag, product, r.minor, paired, to.as_deref(), moved_to);
        out.push(Rule::KommanderMismatch, Severity::Deny, at, msg);
    }
    if let Some(k) = c.k8s
        && tag.kubernetes != k.minor()
    {
        let msg = messages::kommander_kubernetes_mismatch(
            tag,
            k,
            to.as_deref(),
            c.minor,
            c.kubernetes_to.as_deref(),
        );
        out.push(Rule::KommanderMismatch, Severity::Deny, at, msg);
    }
    prerelease(out, at, "Kommander", tag);
}

fn prerelease(out: &mut Out, at: &Located, what: &str, tag: &ReleaseTag) {
    if tag.is_prerelease() {
        let msg = messages::prerelease_tag(what, tag);
        out.push(Rule::Prerelease, Severity::Warn, at, msg);
    }
}
