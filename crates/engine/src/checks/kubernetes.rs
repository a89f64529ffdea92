//! The cluster's Kubernetes version: inside its product release's range, and GA.

use crate::checks::Scope;
use crate::collect::{Lazy, Out};
use crate::fix::{self, Suggested};
use crate::messages::{self, KubernetesFix};
use crate::policy::Release;
use crate::rules::{Rule, Severity};
use crate::tag::ReleaseTag;
use crate::targets::{FieldKind, Located, select};
use crate::version::{Minor, Version};

/// The Kubernetes version the cluster runs: the object's own, or, for in-cluster objects whose
/// target names none, the hosting cluster's. Only the object's own is checked here.
pub(crate) fn check(s: &mut Scope, out: &mut Out, release: Option<&Release>) -> Option<Version> {
    if s.target.path(FieldKind::KubernetesVersion).is_none() {
        s.plan.kubernetes = s.ctx.hosting_kubernetes.clone().map(Suggested::Keep);
        return s.ctx.hosting_kubernetes.clone();
    }
    let at = s.first(FieldKind::KubernetesVersion)?;
    let what = Lazy(|| format!("the {}", messages::KUBERNETES_VERSION));
    let k = out.version(&at, &what, "1.20.13")?;
    let suggested = plan(s, &at, &k);
    if let Some(r) = release
        && !in_range(r, &k)
    {
        let instruction = instruction(s, &at, &k, &suggested);
        let msg = messages::kubernetes_out_of_range(
            &k,
            &s.policy.product_name,
            r.minor,
            &r.kubernetes_range(),
            &instruction,
        );
        out.push(Rule::KubernetesOutOfRange, Severity::Deny, &at, msg);
    }
    if k.is_prerelease() {
        let msg = messages::prerelease_kubernetes(&k);
        out.push(Rule::Prerelease, Severity::Warn, &at, msg);
    }
    Some(k)
}

fn in_range(r: &Release, k: &Version) -> bool {
    r.kubernetes_min.admits_as_min(k) && r.kubernetes_max.admits_as_max(k)
}

/// The Kubernetes version of the combination, recorded as a change when it is not the object's.
fn plan(s: &mut Scope, at: &Located, k: &Version) -> Suggested {
    let suggested = match s.plan.release {
        Some(target) => fix::kubernetes_in(target, k),
        None => Suggested::Keep(k.clone()),
    };
    if !suggested.is_kept() {
        let raw = at.value.as_str().unwrap_or_default();
        let manual = matches!(suggested, Suggested::AnyPatch(_));
        s.plan
            .record(at, fix::styled(raw, &suggested.text()), manual);
    }
    s.plan.kubernetes = Some(suggested.clone());
    suggested
}

/// What the out-of-range message tells to do: the combination's Kubernetes version.
fn instruction(s: &Scope, at: &Located, k: &Version, suggested: &Suggested) -> String {
    let target = s.plan.release;
    let fix = KubernetesFix {
        field: &at.field(),
        product: &s.policy.product_name,
        moved_to: target
            .filter(|_| s.plan.moves_release)
            .map(|t| (t.minor, t.kubernetes_range())),
        to: suggested.text(),
        kept: suggested.is_kept(),
        is_default: matches!(suggested, Suggested::Set(v)
            if target.and_then(|t| t.kubernetes_default.as_ref()) == Some(v)),
        retag: (suggested.minor() != k.minor() && refs_elsewhere(s, suggested.minor()))
            .then(|| suggested.minor()),
    };
    messages::kubernetes_fix(&fix)
}

/// Whether a KBA or Kommander ref of the object is tagged for another minor than `minor`: then
/// the refs have to follow the Kubernetes version. Read only on this denial's path.
fn refs_elsewhere(s: &Scope, minor: Minor) -> bool {
    [FieldKind::KbaRef, FieldKind::KommanderRef]
        .into_iter()
        .filter_map(|k| s.target.path(k))
        .flat_map(|path| select(path, s.object))
        .filter_map(|at| at.value.as_str()?.parse::<ReleaseTag>().ok())
        .any(|tag| tag.kubernetes != minor)
}
