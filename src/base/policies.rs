//! The one SupportPolicy watch of the process. It compiles each policy once and publishes the
//! result in [`Shared`]: the webhook evaluates with `shared.policies`, the controller re-evaluates
//! on `shared.policy_changes` and writes each policy's status from `shared.policy_sources`.

use std::collections::{BTreeSet, HashMap};
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
use crate::base::resolve::{self, Discovered};
use crate::base::state::{InForce, PolicySource, Shared};
use crate::engine::policy::Policy;
use crate::engine::vendor::{VENDOR_POLICY_NAME, embedded_spec};

/// Keeps `shared` equal to the cluster's SupportPolicies (the embedded default when there are
/// no valid ones). With `create_default`, the first complete list that finds no SupportPolicy at
/// all creates `default` from the embedded policy. Runs until the watch stream ends, which it
/// does not by itself.
pub async fn watch_policies(client: Client, shared: Arc<Shared>, mut create_default: bool) {
    let api: Api<SupportPolicy> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api.clone(), watcher::Config::default()),
    )
    .default_backoff();
    futures::pin_mut!(stream);
    let mut enforced = Enforced::default();
    let mut published: Option<Vec<PublishKey>> = None;
    // Targets that did not resolve are checked again on this tick: a CRD installed later, or
    // discovery back after a failure, promotes the generation that waited for it.
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = tokio::select! {
            event = stream.next() => match event {
                Some(event) => Some(event),
                None => return,
            },
            _ = recheck.tick() => None,
        };
        let complete_list = matches!(event, Some(Ok(Event::InitDone)));
        match event {
            None if !enforced.waiting() => continue,
            None | Some(Ok(Event::InitDone | Event::Apply(_) | Event::Delete(_))) => {
                if event.is_none() && published.is_none() {
                    continue;
                }
                // The status writes of the controller come back here as events; they change
                // no spec, and recompiling (and re-evaluating every object) would be waste.
                let keys = spec_keys(&reader);
                let spec_changed = published
                    .as_ref()
                    .is_none_or(|p| p.iter().map(|k| &k.0).ne(keys.iter()));
                if spec_changed || event.is_none() {
                    let sources = enforced.settle(&client, compile_all(&reader)).await;
                    let now = publish_keys(&sources);
                    if published.as_ref() != Some(&now) {
                        shared.metrics.observed.set_policies_stale(&sources);
                        shared.publish_policies(sources);
                        published = Some(now);
                    }
                }
                if !shared.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::info!(policies = reader.len(), "SupportPolicies synced");
                }
                // Once per process, and only on a complete list (an Apply or Delete alone
                // says nothing about the others).
                if complete_list && std::mem::take(&mut create_default) && reader.is_empty() {
                    create_default_policy(&api).await;
                }
            }
            Some(Ok(_)) => {}
            Some(Err(watcher::Error::InitialListFailed(kube::Error::Api(s)))) if s.code == 404 => {
                // No SupportPolicy CRD: the embedded default is the policy, and that is known.
                if !shared.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        "the SupportPolicy CRD is not installed; enforcing the embedded default policy"
                    );
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "watching SupportPolicies"),
        }
    }
}

/// How often targets that did not resolve are checked again.
const RECHECK: Duration = Duration::from_secs(15);

/// The generation in force of each SupportPolicy, by uid: a policy that stops compiling, or
/// whose targets stop resolving, keeps the last one that did (last known good). A policy
/// deleted and created again is another object and starts over.
#[derive(Default)]
struct Enforced {
    by_uid: HashMap<String, InForce>,
    /// Whether some policy's current generation is held back (unresolved, or not checked).
    waiting: bool,
}

impl Enforced {
    fn waiting(&self) -> bool {
        self.waiting
    }

    /// Resolves the compiled policies' targets against discovery and decides, for each, what
    /// is in force.
    async fn settle(
        &mut self,
        client: &Client,
        mut sources: Vec<PolicySource>,
    ) -> Vec<PolicySource> {
        let groups: BTreeSet<String> = sources
            .iter()
            .filter_map(|s| s.compiled.as_ref().ok())
            .flat_map(|p| p.targets().iter().map(|t| t.spec.api_group.clone()))
            .collect();
        let discovered = if groups.is_empty() {
            Discovered::Served(Vec::new())
        } else {
            resolve::discover(client, &groups).await
        };
        if let Discovered::Unknown(e) = &discovered {
            tracing::warn!(error = %e, "API discovery failed; no new SupportPolicy generation is promoted until it answers");
        }
        for s in &mut sources {
            let previous = uid_of(s).and_then(|u| self.by_uid.get(&u)).cloned();
            decide(s, previous, &discovered);
        }
        self.waiting = sources
            .iter()
            .any(|s| !s.is_current() && s.compiled.is_ok());
        self.by_uid = sources
            .iter()
            .filter_map(|s| Some((uid_of(s)?, s.in_force.clone()?)))
            .collect();
        sources
    }
}

fn uid_of(s: &PolicySource) -> Option<String> {
    s.object
        .metadata
        .uid
        .clone()
        .or_else(|| s.object.metadata.name.clone())
}

/// What is in force for one source, given the generation in force before it.
fn decide(s: &mut PolicySource, previous: Option<InForce>, discovered: &Discovered) {
    let generation = s.object.metadata.generation;
    let Ok(policy) = &s.compiled else {
        s.in_force = previous;
        return;
    };
    let held_back = previous.as_ref().filter(|p| p.generation != generation);
    s.unresolved = match discovered {
        Discovered::Served(served) => resolve::blocking(
            policy.targets(),
            previous.as_ref().map(|p| p.policy.targets()),
            served,
        ),
        Discovered::Unknown(e) if held_back.is_some() => {
            vec![format!(
                "the targets could not be checked against API discovery: {e}"
            )]
        }
        Discovered::Unknown(_) => Vec::new(),
    };
    s.in_force = match previous {
        Some(p) if !s.unresolved.is_empty() && p.generation != generation => Some(p),
        _ => Some(InForce {
            policy: policy.clone(),
            generation,
        }),
    };
    if !s.unresolved.is_empty() {
        tracing::warn!(policy = s.object.metadata.name.as_deref().unwrap_or(""), unresolved = ?s.unresolved, "SupportPolicy targets do not resolve");
    }
}

/// What a publication changes: the spec key, the generation in force and what is unresolved.
type PublishKey = (SpecKey, Option<Option<i64>>, Vec<String>);

fn publish_keys(sources: &[PolicySource]) -> Vec<PublishKey> {
    let mut keys: Vec<PublishKey> = sources
        .iter()
        .map(|s| {
            (
                spec_key(&s.object),
                s.in_force.as_ref().map(|f| f.generation),
                s.unresolved.clone(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Creates the SupportPolicy `default` from the embedded policy. The chart asks for this rather
/// than creating it itself: its CRD is a template of the same release, and a Helm hook that
/// creates the policy races the API server's discovery of that CRD (an install failing with "no
/// matches for kind SupportPolicy"). The embedded policy is the one in force while there is
/// none, so creating it changes no verdict; it makes the policy visible and editable. Replicas
/// that start together race here too: the loser's 409 is the expected answer.
async fn create_default_policy(api: &Api<SupportPolicy>) {
    let mut policy = SupportPolicy::new(VENDOR_POLICY_NAME, embedded_spec().clone().into());
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
    let mut keys: Vec<SpecKey> = store.state().iter().map(|sp| spec_key(sp)).collect();
    keys.sort();
    keys
}

fn spec_key(sp: &SupportPolicy) -> SpecKey {
    let m = &sp.metadata;
    let version = m.generation.is_none().then(|| m.resource_version.clone());
    (
        m.name.clone(),
        m.uid.clone(),
        m.generation,
        version.flatten(),
    )
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
        PolicySource::new(object, compiled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::metrics::Metrics;
    use crate::engine::policy::DEFAULT_POLICY_YAML;

    fn policy(name: &str, yaml: &str) -> Arc<SupportPolicy> {
        let mut sp: SupportPolicy = serde_norway::from_str(yaml).unwrap();
        sp.metadata.name = Some(name.into());
        Arc::new(sp)
    }

    fn generation(sp: &SupportPolicy, g: i64) -> Arc<SupportPolicy> {
        let mut sp = sp.clone();
        sp.metadata.uid = Some("u1".into());
        sp.metadata.generation = Some(g);
        Arc::new(sp)
    }

    fn served() -> Discovered {
        Discovered::Served(vec![resolve::Served {
            group: "kommander.mesosphere.io".into(),
            version: "v1beta1".into(),
            kind: "KonvoyCluster".into(),
            plural: "konvoyclusters".into(),
            namespaced: true,
        }])
    }

    #[test]
    fn the_last_generation_that_compiled_and_resolved_stays_in_force() {
        let good = policy("p", DEFAULT_POLICY_YAML);
        let mut first = PolicySource::compile(generation(&good, 1));
        decide(&mut first, None, &served());
        assert!(first.is_current());
        let in_force = first.in_force.clone();

        // Does not compile: generation 1 stays.
        let mut bad = (*good).clone();
        bad.spec.product[0].version = "not-a-version".into();
        let mut second = PolicySource::compile(generation(&bad, 2));
        decide(&mut second, in_force.clone(), &served());
        assert!(!second.is_current());
        assert_eq!(second.in_force.as_ref().and_then(|f| f.generation), Some(1));
        assert!(
            second.in_force_note().contains("generation 1"),
            "{}",
            second.in_force_note()
        );

        // Compiles, but a target is not what is served: generation 1 stays.
        let mut typo = (*good).clone();
        let mut t = crate::engine::targets::presets();
        t[0].kind = "Konvoycluster".into();
        typo.spec.targets = t;
        let mut third = PolicySource::compile(generation(&typo, 3));
        decide(&mut third, in_force.clone(), &served());
        assert_eq!(third.in_force.as_ref().and_then(|f| f.generation), Some(1));
        assert_eq!(third.unresolved.len(), 1, "{:?}", third.unresolved);

        // Discovery down: a new generation waits; the one in force is kept as it is.
        let mut fourth = PolicySource::compile(generation(&good, 4));
        decide(
            &mut fourth,
            in_force.clone(),
            &Discovered::Unknown("refused".into()),
        );
        assert_eq!(fourth.in_force.as_ref().and_then(|f| f.generation), Some(1));
        let mut same = PolicySource::compile(generation(&good, 1));
        decide(
            &mut same,
            in_force.clone(),
            &Discovered::Unknown("refused".into()),
        );
        assert!(same.is_current());

        // Fixed: promoted.
        let mut fifth = PolicySource::compile(generation(&good, 5));
        decide(&mut fifth, in_force, &served());
        assert!(fifth.is_current());

        // No generation ever compiled: nothing of it is in force.
        let mut never = PolicySource::compile(generation(&bad, 1));
        decide(&mut never, None, &served());
        assert!(never.in_force.is_none());
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
