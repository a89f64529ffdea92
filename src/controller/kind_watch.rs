//! One watched kind: its watch (in pages, projected into the cache), its kube-runtime
//! `Controller` running `reconcile`, and the record of whether the API server lets this account
//! list and watch it (403).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Config as ControllerRuntimeConfig, Controller};
use kube::runtime::{reflector, watcher};

use crate::controller::cache::cache_event;
use crate::controller::ledger::{KindKey, Sink};
use crate::controller::reconcile::{KindCtx, error_policy, reconcile};
use crate::controller::session::Session;
use crate::engine::projection::Keep;

/// A kind to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Kind {
    pub ar: ApiResource,
    pub namespaced: bool,
    pub sink: Sink,
    /// What the cache keeps of each object: a policy change that reads more restarts the kind.
    pub keep: Keep,
}

/// Objects per page of the initial list. A page is decoded whole, as full objects, before the
/// cache keeps their projections, so the page sets the peak at small fleets: at 1,000 objects
/// kube's default of 500 peaked at 31.6 MiB, 100 at 26.9 MiB (same run, docs/performance.md).
/// 100 costs 100 list requests at 10,000 objects, a fraction of a second of the API server's
/// time against the minutes of status writes that follow.
const LIST_PAGE: u32 = 100;

/// Runs the kube-runtime controller of one kind until aborted.
pub(crate) async fn run_kind(session: Arc<Session>, key: KindKey, kind: Kind) {
    let api = Api::<DynamicObject>::all_with(session.client.clone(), &kind.ar);
    // Only what a reconcile reads reaches the cache, as text (see `cache`).
    let keep = kind.keep.clone();
    let writer = reflector::store::Writer::new(kind.ar.clone());
    let reader = writer.as_reader();
    // A deleted object is never reconciled: wake the status pass so that the policies' counts
    // and the fleet gauges forget it now, not at the next unrelated change.
    let on_delete = session.clone();
    let access = (session.clone(), key.clone());
    // A 403 backs off like any watch error (up to 30 s between tries, no storm); it is also
    // recorded, for the policies' status, until a list or watch succeeds.
    // Consistent lists in pages of LIST_PAGE, decoded a page at a time: the watch cache
    // serves a list at resourceVersion 0 ("any") whole, so 10,000 objects arrived, and were
    // decoded, at once (see docs/performance.md for what that cost at peak).
    let objects = watcher::watcher(api, watcher::Config::default().page_size(LIST_PAGE))
        .default_backoff()
        .inspect(move |ev| note_access(&access.0, &access.1, ev))
        .map_ok(move |ev| cache_event(&keep, ev))
        .reflect(writer)
        .inspect(move |ev| {
            if let Ok(watcher::Event::Delete(_)) = ev {
                on_delete.dirty.notify_one();
            }
        })
        .applied_objects();
    let controller = Controller::for_stream_with(objects, reader, kind.ar.clone())
        .with_config(ControllerRuntimeConfig::default().concurrency(session.cfg.concurrency));
    session
        .stores
        .lock()
        .insert(key, (kind.ar.clone(), controller.store()));
    let changes = futures::stream::unfold(
        session.shared.policy_changes.subscribe(),
        |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        },
    );
    let ctx = Arc::new(KindCtx {
        session,
        ar: kind.ar,
        namespaced: kind.namespaced,
        sink: kind.sink,
    });
    controller
        .reconcile_all_on(changes)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// The API server's message when it refused this account the list or watch (403).
pub(crate) fn forbidden(e: &watcher::Error) -> Option<String> {
    let status = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.as_ref(),
        watcher::Error::WatchError(s) => s.as_ref(),
        _ => return None,
    };
    (status.code == 403).then(|| status.message.clone())
}

/// Records whether the kind's watch is refused; wakes the policy status writer on a change.
fn note_access(
    session: &Session,
    key: &KindKey,
    ev: &Result<watcher::Event<DynamicObject>, watcher::Error>,
) {
    let now = match ev {
        Ok(_) => None,
        Err(e) => match forbidden(e) {
            Some(message) => Some(message),
            // Other errors say nothing about access.
            None => return,
        },
    };
    let mut map = session.forbidden.lock();
    let changed = match now {
        Some(message) => {
            let changed = map.get(key) != Some(&message);
            if changed {
                tracing::warn!(kind = %key.kind, group = %key.group, error = %message, "not allowed to watch a targeted kind; grant it with a ClusterRole labelled supportgate.dev/aggregate-to-supportgate");
                map.insert(key.clone(), message);
            }
            changed
        }
        None => map.remove(key).is_some(),
    };
    drop(map);
    if changed {
        session.dirty.notify_one();
    }
}
