//! The one SupportPolicy watch of the process. It compiles each policy once and publishes the
//! result in [`Shared`]: the webhook evaluates with `shared.policies`, the controller re-evaluates
//! on `shared.policy_changes` and writes each policy's status from `shared.policy_sources`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use kube::api::PostParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use crate::api::SupportPolicy;
use crate::engine::policy::Policy;
use crate::engine::vendor::{VENDOR_POLICY_NAME, embedded_spec};
use crate::runtime::state::{PolicySource, Shared};

/// Keeps `shared` equal to the cluster's SupportPolicies (the embedded default when there are
/// no valid ones). With `create_default`, the first complete list that finds no SupportPolicy at
/// all creates `default` from the embedded policy. Runs until the watch stream ends, which it
/// does not by itself.
pub async fn watch_policies(client: Client, shared: Arc<Shared>, mut create_default: bool) {
    let api: Api<SupportPolicy> = Api::all(client);
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api.clone(), watcher::Config::default()),
    )
    .default_backoff();
    futures::pin_mut!(stream);
    let mut published: Option<Vec<SpecKey>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::InitDone | Event::Apply(_) | Event::Delete(_)) => {
                // The status writes of the controller come back here as events; they change
                // no spec, and recompiling (and re-evaluating every object) would be waste.
                let keys = spec_keys(&reader);
                if published.as_ref() != Some(&keys) {
                    shared.publish_policies(compile_all(&reader));
                    published = Some(keys);
                }
                if !shared.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::info!(policies = reader.len(), "SupportPolicies synced");
                }
                // Once per process, and only on a complete list (an Apply or Delete alone
                // says nothing about the others).
                if matches!(event, Ok(Event::InitDone))
                    && std::mem::take(&mut create_default)
                    && reader.is_empty()
                {
                    create_default_policy(&api).await;
                }
            }
            Ok(_) => {}
            Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                // No SupportPolicy CRD: the embedded default is the policy, and that is known.
                if !shared.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "the SupportPolicy CRD is not installed; enforcing the embedded default policy"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "watching SupportPolicies"),
        }
    }
}

/// Creates the SupportPolicy `default` from the embedded policy. The chart asks for this rather
/// than creating it itself: its CRD is a template of the same release, and a Helm hook that
/// creates the policy races the API server's discovery of that CRD (an install failing with "no
/// matches for kind SupportPolicy"). The embedded policy is the one in force while there is
/// none, so creating it changes no verdict; it makes the policy visible and editable. Replicas
/// that start together race here too: the loser's 409 is the expected answer.
async fn create_default_policy(api: &Api<SupportPolicy>) {
    let mut policy = SupportPolicy::new(VENDOR_POLICY_NAME, embedded_spec().clone());
    policy.metadata.annotations = Some(
        [(
            "supportgate.dev/created-by".to_string(),
            format!(
                "supportgate {} (the cluster had no SupportPolicy)",
                env!("CARGO_PKG_VERSION")
            ),
        )]
        .into(),
    );
    let params = PostParams {
        field_manager: Some("supportgate".into()),
        ..PostParams::default()
    };
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=6 {
        match api.create(&params, &policy).await {
            Ok(_) => {
                tracing::info!(
                    policy = VENDOR_POLICY_NAME,
                    "the cluster had no SupportPolicy; created the embedded default"
                );
                return;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => return,
            // Not going to change with a retry (RBAC without `create`, a rejecting policy).
            Err(kube::Error::Api(s)) if (400..500).contains(&s.code) && s.code != 429 => {
                tracing::warn!(error = %s, "cannot create the default SupportPolicy; the embedded one is enforced meanwhile");
                return;
            }
            Err(e) => {
                tracing::warn!(attempt, error = %e, "creating the default SupportPolicy");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

/// What identifies a policy's spec: name, uid (a policy deleted and created again starts over at
/// generation 1) and generation (the resourceVersion where the server keeps no generation).
type SpecKey = (Option<String>, Option<String>, Option<i64>, Option<String>);

fn spec_keys(store: &Store<SupportPolicy>) -> Vec<SpecKey> {
    let mut keys: Vec<SpecKey> = store
        .state()
        .iter()
        .map(|sp| {
            let m = &sp.metadata;
            let version = m.generation.is_none().then(|| m.resource_version.clone());
            (
                m.name.clone(),
                m.uid.clone(),
                m.generation,
                version.flatten(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Compiles every policy in the store; invalid ones are logged and kept with their error.
pub fn compile_all(store: &Store<SupportPolicy>) -> Vec<PolicySource> {
    store
        .state()
        .into_iter()
        .map(PolicySource::compile)
        .collect()
}

impl PolicySource {
    /// Compiles one policy; an invalid one is logged and kept with its error.
    pub fn compile(object: Arc<SupportPolicy>) -> PolicySource {
        let compiled = match Policy::compile(&object) {
            Ok(p) => Ok(Arc::new(p)),
            Err(e) => {
                tracing::warn!(policy = object.metadata.name.as_deref().unwrap_or(""), error = %e, "ignoring an invalid SupportPolicy");
                Err(e.to_string())
            }
        };
        PolicySource { object, compiled }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::DEFAULT_POLICY_YAML;
    use crate::runtime::metrics::Metrics;

    fn policy(name: &str, yaml: &str) -> Arc<SupportPolicy> {
        let mut sp: SupportPolicy = serde_norway::from_str(yaml).unwrap();
        sp.metadata.name = Some(name.into());
        Arc::new(sp)
    }

    #[test]
    fn invalid_policies_are_kept_with_their_error_but_not_evaluated() {
        let shared = Shared::new(None, Arc::new(Metrics::new()), 1024);
        let mut bad: SupportPolicy = (*policy("bad", DEFAULT_POLICY_YAML)).clone();
        bad.spec.product[0].version = "not-a-version".into();
        let before = *shared.policy_changes.borrow();
        shared.publish_policies(vec![
            PolicySource::compile(policy("zz", DEFAULT_POLICY_YAML)),
            PolicySource::compile(Arc::new(bad)),
        ]);
        let sources = shared.policy_sources.load();
        let names: Vec<_> = sources
            .iter()
            .map(|s| s.object.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["bad", "zz"]);
        assert!(sources[0].compiled.is_err());
        assert!(sources[1].compiled.is_ok());
        let set = shared.policies.load();
        assert_eq!(
            set.policies()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["zz"]
        );
        assert_eq!(*shared.policy_changes.borrow(), before + 1);
    }
}
