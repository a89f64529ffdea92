//! The webhook's scope follows the policies: the `rules` of the ValidatingWebhookConfiguration
//! are kept equal to the union of the targets of every valid SupportPolicy (the embedded
//! default when there is none), so that a policy that targets a new kind is enforced at
//! admission without a `helm upgrade`. The chart's `targets` value is only the initial rules.
//!
//! Only `rules` is written, by server-side apply under a field manager of its own: the
//! caBundle (self-managed or cert-manager's injector), failurePolicy, namespaceSelector and
//! everything else stay with their owners. Rules are written only when they differ from what
//! the configuration holds, and, with leader election, only by the leader, so that replicas
//! that disagree for a moment (a rollout of a version that computes rules differently) never
//! take turns rewriting them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhookConfiguration,
};
use kube::api::{Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::Instrument;

use crate::engine::targets::CompiledTarget;
use crate::runtime::state::Shared;

/// The field manager that owns the configuration's `rules`, the same on every replica.
pub const FIELD_MANAGER: &str = "supportgate-webhook-scope";

#[derive(Debug, Clone)]
pub struct ScopeConfig {
    /// The ValidatingWebhookConfiguration whose rules follow the policies.
    pub webhook_config_name: String,
    /// How often the rules are compared even when nothing was heard (a missed watch event).
    pub resync: Duration,
}

/// Which versions of one resource are intercepted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Versions {
    All,
    Some(BTreeSet<String>),
}

/// One rule per (group, versions), CREATE and UPDATE only (DELETE is never blocked), no
/// subresources. The union of the targets: a resource targeted twice is intercepted in every
/// version either target names (all of them when one names none), and listed once. Groups,
/// versions and resources are sorted, so the same targets in any order give the same rules.
pub fn rules_for<'a>(
    targets: impl IntoIterator<Item = &'a CompiledTarget>,
) -> Vec<RuleWithOperations> {
    let mut per_resource: BTreeMap<(String, String), Versions> = BTreeMap::new();
    for t in targets.into_iter().filter(|t| routable(t)) {
        let key = (t.spec.api_group.clone(), t.spec.resource.clone());
        let entry = per_resource
            .entry(key)
            .or_insert_with(|| Versions::Some(BTreeSet::new()));
        match (entry, t.spec.versions.is_empty()) {
            (e, true) => *e = Versions::All,
            (Versions::Some(set), false) => set.extend(t.spec.versions.iter().cloned()),
            (Versions::All, false) => {}
        }
    }
    let mut by_group: BTreeMap<(String, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    for ((group, resource), versions) in per_resource {
        let versions = match versions {
            Versions::All => vec!["*".to_string()],
            Versions::Some(set) => set.into_iter().collect(),
        };
        by_group
            .entry((group, versions))
            .or_default()
            .insert(resource);
    }
    by_group
        .into_iter()
        .map(|((group, versions), resources)| RuleWithOperations {
            api_groups: Some(vec![group]),
            api_versions: Some(versions),
            operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
            resources: Some(resources.into_iter().collect()),
            scope: Some("*".into()),
        })
        .collect()
}

/// Whether a target names one resource: a wildcard or a subresource in a policy would send
/// far more than the policy can judge to a fail-closed webhook (every kind of a group, or of
/// the cluster), so such a target never widens the rules.
fn routable(t: &CompiledTarget) -> bool {
    let plain = |s: &str| !s.contains('*') && !s.contains('/');
    plain(&t.spec.api_group)
        && !t.spec.resource.is_empty()
        && plain(&t.spec.resource)
        && t.spec.versions.iter().all(|v| plain(v) && !v.is_empty())
}

/// Whether any webhook of the configuration has other rules than `wanted`.
pub fn needs_update(live: &ValidatingWebhookConfiguration, wanted: &[RuleWithOperations]) -> bool {
    live.webhooks
        .iter()
        .flatten()
        .any(|w| w.rules.as_deref().unwrap_or_default() != wanted)
}

/// The apply body: every webhook of the configuration (by its name, the list's key) with the
/// wanted rules, and no other field, so that nothing else changes owner.
pub fn apply_body(
    name: &str,
    live: &ValidatingWebhookConfiguration,
    wanted: &[RuleWithOperations],
) -> Value {
    let webhooks: Vec<Value> = live
        .webhooks
        .iter()
        .flatten()
        .map(|w| json!({"name": w.name, "rules": wanted}))
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": webhooks,
    })
}

/// Writes the rules when they differ. Returns whether it wrote. A configuration that does not
/// exist is left alone: an apply would create one with nothing but rules, which the API
/// server refuses anyway.
async fn sync_once(
    api: &Api<ValidatingWebhookConfiguration>,
    name: &str,
    live: &ValidatingWebhookConfiguration,
    wanted: &[RuleWithOperations],
) -> Result<bool, kube::Error> {
    if !needs_update(live, wanted) {
        return Ok(false);
    }
    // Forced: the chart (helm) owns the rules it rendered; they become ours.
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &pp, &Patch::Apply(apply_body(name, live, wanted)))
        .await?;
    Ok(true)
}

/// What woke the loop.
enum Wake {
    Config(Option<Box<ValidatingWebhookConfiguration>>),
    Other,
    Ended,
}

/// Keeps the configuration's rules equal to the policies' targets while `may_write` is true.
/// Wakes on a policy change, on a change of the configuration (a `helm upgrade` that rendered
/// the initial rules again is healed at once), on gaining the lead and every `resync`. After a
/// failed write it waits, doubling up to a minute: no retry storm.
pub async fn keep_rules(
    client: Client,
    shared: Arc<Shared>,
    cfg: ScopeConfig,
    mut may_write: watch::Receiver<bool>,
) {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let wc =
        watcher::Config::default().fields(&format!("metadata.name={}", cfg.webhook_config_name));
    let events = watcher::watcher(api.clone(), wc).default_backoff();
    futures::pin_mut!(events);
    let mut policy_changes = shared.policy_changes.subscribe();
    let mut tick = tokio::time::interval(cfg.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leader_gone = false;
    let mut live: Option<Box<ValidatingWebhookConfiguration>> = None;
    let mut backoff = Duration::ZERO;
    loop {
        let wake = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Apply(v) | Event::InitApply(v))) => Wake::Config(Some(Box::new(v))),
                Some(Ok(Event::Delete(_))) => Wake::Config(None),
                Some(Ok(_)) => Wake::Other,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, webhook = %cfg.webhook_config_name, "watching the webhook configuration");
                    Wake::Other
                }
                None => Wake::Ended,
            },
            changed = policy_changes.changed() => match changed {
                Ok(()) => Wake::Other,
                Err(_) => Wake::Ended,
            },
            changed = may_write.changed(), if !leader_gone => {
                leader_gone = changed.is_err();
                Wake::Other
            }
            _ = tick.tick() => Wake::Other,
        };
        match wake {
            Wake::Config(v) => live = v,
            Wake::Other => {}
            Wake::Ended => return,
        }
        let Some(current) = live.as_ref() else {
            continue;
        };
        if !*may_write.borrow() || !shared.policies_synced.load(Ordering::Acquire) {
            continue;
        }
        let wanted = rules_for(shared.policies.load().targets());
        let span = tracing::info_span!("webhook_scope", webhook = %cfg.webhook_config_name);
        match sync_once(&api, &cfg.webhook_config_name, current, &wanted)
            .instrument(span)
            .await
        {
            Ok(wrote) => {
                backoff = Duration::ZERO;
                if wrote {
                    tracing::info!(webhook = %cfg.webhook_config_name, rules = wanted.len(), "webhook rules now follow the policies' targets");
                }
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                tracing::warn!(error = %e, webhook = %cfg.webhook_config_name, retry_in = ?backoff, "writing the webhook rules failed");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Target;
    use crate::engine::policyset::PolicySet;
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhook;

    fn target(group: &str, versions: &[&str], resource: &str) -> CompiledTarget {
        let spec = Target {
            api_group: group.into(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            kind: "K".into(),
            resource: resource.into(),
            namespaced: true,
            fields: Default::default(),
        };
        CompiledTarget::compile(&spec).expect("a target without fields compiles")
    }

    fn flat(rules: &[RuleWithOperations]) -> Vec<String> {
        rules
            .iter()
            .map(|r| {
                format!(
                    "{}/{}:{}",
                    r.api_groups.as_ref().unwrap().join(","),
                    r.api_versions.as_ref().unwrap().join(","),
                    r.resources.as_ref().unwrap().join(",")
                )
            })
            .collect()
    }

    #[test]
    fn rules_are_sorted_whatever_the_order_of_the_targets() {
        let ts = [
            target("b.io", &["v2", "v1"], "zs"),
            target("a.io", &["v1"], "ys"),
            target("b.io", &["v1", "v2"], "as"),
        ];
        let forward = rules_for(ts.iter());
        let backward = rules_for(ts.iter().rev());
        assert_eq!(forward, backward);
        assert_eq!(flat(&forward), ["a.io/v1:ys", "b.io/v1,v2:as,zs"]);
    }

    #[test]
    fn a_resource_targeted_twice_is_listed_once_with_the_union_of_versions() {
        let ts = [
            target("x.io", &["v1"], "things"),
            target("x.io", &["v2"], "things"),
            target("x.io", &["v1"], "things"),
            target("x.io", &["v1"], "others"),
        ];
        assert_eq!(
            flat(&rules_for(ts.iter())),
            ["x.io/v1:others", "x.io/v1,v2:things"]
        );
        // No versions named means every version, whichever target comes first.
        let all = [
            target("x.io", &[], "things"),
            target("x.io", &["v1"], "things"),
        ];
        assert_eq!(flat(&rules_for(all.iter())), ["x.io/*:things"]);
        assert_eq!(flat(&rules_for(all.iter().rev())), ["x.io/*:things"]);
        assert!(rules_for(std::iter::empty()).is_empty());
    }

    #[test]
    fn wildcards_and_subresources_never_widen_the_rules() {
        let ts = [
            target("*", &["v1"], "things"),
            target("x.io", &["v1"], "*"),
            target("x.io", &["*"], "things"),
            target("x.io", &["v1"], "things/status"),
            target("x.io", &["v1"], "things"),
        ];
        assert_eq!(flat(&rules_for(ts.iter())), ["x.io/v1:things"]);
    }

    #[test]
    fn the_union_of_two_policies_adds_the_new_kind_to_the_defaults() {
        let default = PolicySet::embedded_default();
        let extra = target("example.dev", &["v1"], "widgets");
        let base = rules_for(default.targets());
        let both = rules_for(default.targets().chain([&extra]));
        assert_eq!(both.len(), base.len() + 1);
        assert!(flat(&both).contains(&"example.dev/v1:widgets".to_string()));
        assert!(base.iter().all(|r| both.contains(r)));
        assert!(both.iter().all(|r| {
            r.operations.as_deref() == Some(&["CREATE".to_string(), "UPDATE".to_string()][..])
                && r.scope.as_deref() == Some("*")
        }));
    }

    #[test]
    fn only_rules_are_applied_and_only_when_they_differ() {
        let wanted = rules_for([target("x.io", &["v1"], "things")].iter());
        let mut live = ValidatingWebhookConfiguration {
            webhooks: Some(vec![ValidatingWebhook {
                name: "versions.supportgate.dev".into(),
                failure_policy: Some("Fail".into()),
                rules: Some(wanted.clone()),
                ..ValidatingWebhook::default()
            }]),
            ..ValidatingWebhookConfiguration::default()
        };
        assert!(!needs_update(&live, &wanted));
        live.webhooks.as_mut().unwrap()[0].rules = None;
        assert!(needs_update(&live, &wanted));
        let body = apply_body("sg", &live, &wanted);
        assert_eq!(body["metadata"], json!({"name": "sg"}));
        let hook = body["webhooks"][0].as_object().unwrap();
        let keys: Vec<&str> = hook.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "rules"], "no other field changes owner");
        assert_eq!(hook["rules"][0]["resources"], json!(["things"]));
    }
}
