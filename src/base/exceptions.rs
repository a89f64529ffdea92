//! The SupportException watch: only the namespaces the operator trusts (its release namespace
//! and `--exception-namespace`), so that the owners of the clusters' namespaces cannot grant
//! themselves exceptions. Each exception is compiled once and published in [`Shared`] next to
//! the policies; the webhook and the controller evaluate with it through the engine's context.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::select_all;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use crate::api::SupportException;
use crate::base::state::{ExceptionSource, Shared};

/// Keeps `shared.exceptions` equal to the SupportExceptions of `namespaces`. Runs until the
/// watch streams end, which they do not by themselves.
pub async fn watch_exceptions(client: Client, shared: Arc<Shared>, namespaces: Vec<String>) {
    let namespaces: BTreeSet<String> = namespaces.into_iter().collect();
    let mut stores = Vec::new();
    let mut streams = Vec::new();
    for ns in &namespaces {
        let api: Api<SupportException> = Api::namespaced(client.clone(), ns);
        let (reader, writer) = reflector::store();
        stores.push(reader);
        let ns = ns.clone();
        streams.push(
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .default_backoff()
                .map(move |e| (ns.clone(), e))
                .boxed(),
        );
    }
    let mut synced: BTreeSet<String> = BTreeSet::new();
    let mut published: Option<Vec<Key>> = None;
    let mut events = select_all(streams);
    while let Some((ns, event)) = events.next().await {
        match event {
            Ok(Event::InitDone) => {
                synced.insert(ns);
            }
            Ok(Event::Apply(_) | Event::Delete(_)) => {}
            Ok(_) => continue,
            Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                // No SupportException CRD: no exceptions, and that is known.
                if synced.insert(ns) {
                    tracing::warn!(
                        "the SupportException CRD is not installed; no exceptions apply"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(namespace = %ns, error = %e, "watching SupportExceptions");
                continue;
            }
        }
        if synced.len() < namespaces.len() {
            continue;
        }
        // Status writes come back as events; only spec changes are published.
        let keys = keys(&stores);
        let count = keys.len();
        if published.as_ref() != Some(&keys) {
            shared.publish_exceptions(compile_all(&stores));
            published = Some(keys);
        }
        if !shared.exceptions_synced.send_replace(true) {
            tracing::info!(namespaces = ?namespaces, exceptions = count, "SupportExceptions synced");
        }
    }
}

/// Identifies an exception's spec: namespace, name, uid and generation.
type Key = (Option<String>, Option<String>, Option<String>, Option<i64>);

fn keys(stores: &[Store<SupportException>]) -> Vec<Key> {
    let mut keys: Vec<Key> = stores
        .iter()
        .flat_map(|s| s.state())
        .map(|x| {
            let m = &x.metadata;
            (
                m.namespace.clone(),
                m.name.clone(),
                m.uid.clone(),
                m.generation,
            )
        })
        .collect();
    keys.sort();
    keys
}

fn compile_all(stores: &[Store<SupportException>]) -> Vec<ExceptionSource> {
    stores
        .iter()
        .flat_map(|s| s.state())
        .map(ExceptionSource::compile)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exception stored before the CRD required `match.namespaces` still reads from the
    /// watch, and is kept as invalid with the reason its Ready condition shows.
    #[test]
    fn a_stored_exception_without_namespaces_is_kept_as_invalid() {
        let x: SupportException = serde_json::from_value(serde_json::json!({
            "apiVersion": "supportgate.dev/v1alpha1", "kind": "SupportException",
            "metadata": {"name": "legacy-dr", "namespace": "supportgate"},
            "spec": {"reason": "DR", "expires": "2027-01-31", "rules": ["konvoy-unsupported"],
                     "match": {"names": ["legacy-dr"]}}
        }))
        .expect("a name-only exception still deserialises");
        let source = ExceptionSource::compile(Arc::new(x));
        let err = source.compiled.expect_err("it must not compile");
        assert!(
            err.starts_with("spec.match.namespaces is required"),
            "{err}"
        );
    }
}
