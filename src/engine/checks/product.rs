//! The product (Konvoy) version: its place in the support window, and pre-releases.

use crate::engine::checks::Scope;
use crate::engine::collect::{Lazy, Out};
use crate::engine::evaluate::Context;
use crate::engine::messages;
use crate::engine::policy::{Policy, Release, ReleaseSupport};
use crate::engine::rules::{Rule, Severity};
use crate::engine::targets::{FieldKind, Located};
use crate::engine::version::Version;

/// Checks the product version; returns its release when the policy knows it.
pub(crate) fn check<'a>(s: &mut Scope<'a>, out: &mut Out) -> Option<&'a Release> {
    let at = s.first(FieldKind::ProductVersion)?;
    let product = &s.policy.product_name;
    let what = Lazy(|| format!("the {}", messages::product_version(product)));
    let v = out.version(&at, &what, "v1.8.5")?;
    let release = window(s.policy, s.ctx, out, &at, &v);
    if v.is_prerelease() {
        let msg = messages::prerelease_product(product, &v);
        out.push(Rule::Prerelease, Severity::Warn, &at, msg);
    }
    release
}

fn window<'p>(
    policy: &'p Policy,
    ctx: &Context,
    out: &mut Out,
    at: &Located,
    v: &Version,
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
    out.push(rule, severity, at, msg);
    Some(release)
}
