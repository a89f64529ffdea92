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

use crate::api::webhook_configuration::rules_for;
use crate::base::state::Shared;

/// The field manager that owns the configuration's `rules`, the same on every replica.
pub const FIELD_MANAGER: &str = "supportgate-webhook-scope";

#[derive(Debug, Clone)]
pub struct ScopeConfig {
    /// The ValidatingWebhookConfiguration whose rules follow the policies.
    pub webhook_config_name: String,
    /// How often the rules are compared even when nothing was heard (a missed watch event).
    pub resync: Duration,
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
    use crate::api::webhook_configuration::tests::target;
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhook;

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
