//! The product (Konvoy) version: its place in the support window, and pre-releases.

use crate::checks::Scope;
use crate::collect::{Lazy, Out};
use crate::fix;
use crate::messages;
use crate::policy::{Policy, Release, ReleaseSupport};
use crate::rules::{Rule, Severity};
use crate::targets::Located;
use crate::verdict::Context;
use crate::version::Version;

/// Checks the product version (the first set value of the target's query, `at`); returns its
/// release when the policy knows it.
pub(crate) fn check<'a>(
    s: &mut Scope<'a>,
    out: &mut Out,
    at: Option<&Located<'a>>,
) -> Option<&'a Release> {
    let at = at?;
    let product = &s.policy.product_name;
    let what = Lazy(|| format!("the {}", messages::product_version(product)));
    let v = out.version(at, &what, "v1.8.5")?;
    plan_release(s, at, &v);
    let moved_to = s.plan.release.filter(|_| s.plan.moves_release);
    let release = window(s.policy, s.ctx, out, (at, &v), moved_to);
    if v.is_prerelease() {
        let msg = messages::prerelease_product(product, &v);
        out.push(Rule::Prerelease, Severity::Warn, at, msg);
    }
    release
}

/// The release of the combination: the object's own, or the nearest supported one, which the
/// upgrade hint of the window messages names too.
fn plan_release<'a>(s: &mut Scope<'a>, at: &Located, v: &Version) {
    let target = fix::nearest_release(s.policy, s.ctx.today, v.minor());
    s.plan.release = target;
    if let Some(t) = target
        && t.minor != v.minor()
    {
        s.plan.moves_release = true;
        let raw = at.value.as_str().unwrap_or_default();
        // The policy's latest patch of that release when it names one; otherwise the patch is
        // for whoever upgrades to choose.
        match &t.latest_patch {
            Some(p) => s.plan.record(at, fix::styled(raw, &p.to_string()), false),
            None => s
                .plan
                .record(at, fix::styled(raw, &format!("{}.<patch>", t.minor)), true),
        }
    }
}

/// The release's place in the window; a denial names what the release the fix moves to
/// (`moved_to`) needs, so the Kubernetes and Kommander changes it brings are no surprise.
fn window<'p>(
    policy: &'p Policy,
    ctx: &Context,
    out: &mut Out,
    (at, v): (&Located, &Version),
    moved_to: Option<&Release>,
) -> Option<&'p Release> {
    let product = policy.product_name.as_str();
    let today = ctx.today;
    let support = policy
        .release(v.minor())
        .map(|r| (r, policy.support_of(r, today)));
    // The usual case says nothing, so builds no text.
    if let Some((release, ReleaseSupport::Supported)) = support {
        return Some(release);
    }
    let supported = policy.supported(today);
    let supported_text = messages::minors_list(&supported);
    let window = policy.window_text(today);
    let Some((release, support)) = support else {
        let known = policy
            .releases()
            .iter()
            .map(|r| r.minor.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let msg = messages::unknown_release(product, v, &known, &supported_text, &window);
        let msg = msg + &release_facts(product, moved_to);
        out.push(Rule::KonvoyUnsupported, Severity::Deny, at, msg);
        return None;
    };
    let upgrade_to = supported.iter().rev().find(|m| **m > v.minor()).copied();
    let upgrade = messages::upgrade_hint(upgrade_to, supported.first().copied());
    let (rule, severity, msg) = match support {
        ReleaseSupport::Supported => return Some(release),
        ReleaseSupport::OldestInWindow => {
            let next = supported.iter().rev().nth(1).copied();
            let msg = messages::oldest_in_window(product, v, &window, next);
            (Rule::KonvoyNearingEnd, Severity::Warn, msg)
        }
        ReleaseSupport::EndingOn(d) => {
            let msg = messages::ending_on(product, release.minor, d, &upgrade);
            (Rule::KonvoyNearingEnd, Severity::Warn, msg)
        }
        ReleaseSupport::OutOfWindow => {
            let msg = messages::out_of_window(product, v, &supported_text, &window, &upgrade);
            (Rule::KonvoyUnsupported, Severity::Deny, msg)
        }
        ReleaseSupport::EndedOn(d) => {
            let msg = messages::ended_on(product, v, d, &supported_text, &upgrade);
            (Rule::KonvoyUnsupported, Severity::Deny, msg)
        }
        ReleaseSupport::NotYetReleased(d) => {
            let msg = messages::not_yet_released(product, release.minor, d);
            (Rule::Prerelease, Severity::Warn, msg)
        }
    };
    let msg = match severity {
        Severity::Deny => msg + &release_facts(product, moved_to),
        _ => msg,
    };
    out.push(rule, severity, at, msg);
    Some(release)
}

fn release_facts(product: &str, moved_to: Option<&Release>) -> String {
    moved_to
        .map(|t| messages::release_facts(product, t.minor, &t.kubernetes_range(), t.kommander))
        .unwrap_or_default()
}
