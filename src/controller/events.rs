//! Events, published without a cache, and published again when the API server refuses them.
//!
//! kube's `Recorder` keeps every event it published for six minutes, to turn repeats into a
//! series, and scans that whole cache under a lock on every publish. A policy change that flips
//! 10,000 objects then holds 10,000 events (each with its ~600-byte note and two copies of the
//! object reference) and scans up to 20,000 entries per event. The controller never repeats
//! itself: the plan emits at most one event per object per transition, and a policy change
//! that flips many objects gets one summary event on the policy instead of anything more. So
//! nothing that was published is worth remembering; each event is created and forgotten.
//!
//! An event that fails to publish is another matter: it is the only announcement of its
//! transition (the next reconcile sees the condition already written and says nothing). It is
//! queued and retried with the writes' backoff (`retry::Backoff::WRITES`), in a queue of at most
//! [`MAX_PENDING`] events so that an API server refusing them all cannot grow memory without
//! bound; what is given up is counted (`supportgate_events_dropped_total`).

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Client};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::base::metrics::{DropLabels, Metrics, WriteLabels};
use crate::controller::retry::Backoff;

/// Events waiting for a retry, at most. About 2 KB each: a couple of megabytes.
pub const MAX_PENDING: usize = 1000;
/// An event not published within this is given up: the API server's default event TTL, after
/// which it would have been deleted anyway.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// Publishes events as one reporting controller and instance.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    reporter: Reporter,
    queue: Arc<Mutex<RetryQueue>>,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Publisher {
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>) -> Self {
        Publisher {
            client,
            reporter,
            queue: Arc::new(Mutex::new(RetryQueue::new(Backoff::WRITES, MAX_PENDING))),
            wake: Arc::new(Notify::new()),
            metrics,
        }
    }

    /// Creates the event on `regarding` (in its namespace; `default` for cluster-scoped ones).
    /// When that fails it is queued for [`Publisher::retry_loop`], unless the API server
    /// refused it for good; the error is returned for the caller to log either way.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let body = event_body(&self.reporter, ev, regarding, Timestamp::now());
        match self.create(&body).await {
            Outcome::Done => Ok(()),
            Outcome::Rejected(e) => {
                self.dropped("rejected", 1);
                Err(e)
            }
            Outcome::Retry(e) => {
                self.enqueue(body);
                Err(e)
            }
        }
    }

    async fn create(&self, body: &K8sEvent) -> Outcome {
        let ns = body.metadata.namespace.as_deref().unwrap_or("default");
        let created = Api::<K8sEvent>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), body)
            .await;
        outcome(created.map(|_| ()))
    }

    fn enqueue(&self, body: K8sEvent) {
        let mut q = self.queue.lock();
        let evicted = q.push(body, Instant::now());
        self.metrics.events_pending.set(q.len() as i64);
        drop(q);
        self.dropped("queue_full", evicted);
        self.retried(1);
        self.wake.notify_one();
    }

    fn dropped(&self, reason: &'static str, n: usize) {
        if n > 0 {
            tracing::warn!(reason, events = n, "giving up events");
            let c = self
                .metrics
                .events_dropped
                .get_or_create(&DropLabels { reason });
            c.inc_by(n as u64);
        }
    }

    fn retried(&self, n: usize) {
        let kind = WriteLabels {
            kind: "Event".into(),
        };
        self.metrics
            .status_write_retries
            .get_or_create(&kind)
            .inc_by(n as u64);
    }

    /// Publishes the queued events as their backoffs end. Runs until aborted (with the session
    /// that owns the publisher).
    pub async fn retry_loop(self) {
        loop {
            let next = self.queue.lock().next_due();
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.wake.notified() => continue,
                    }
                }
                None => {
                    self.wake.notified().await;
                    continue;
                }
            }
            let (due, expired) = self.queue.lock().take_due(Instant::now());
            self.dropped("expired", expired);
            for mut item in due {
                match self.create(&item.body).await {
                    Outcome::Done => {}
                    Outcome::Rejected(e) => {
                        tracing::warn!(error = %e, "an event was refused for good");
                        self.dropped("rejected", 1);
                    }
                    Outcome::Retry(e) => {
                        tracing::debug!(error = %e, failures = item.failures, "publishing an event failed again");
                        let evicted = self.queue.lock().requeue(&mut item, Instant::now());
                        self.dropped("queue_full", evicted);
                        self.retried(1);
                    }
                }
            }
            let pending = self.queue.lock().len();
            self.metrics.events_pending.set(pending as i64);
        }
    }
}

/// What a create's answer means for the event.
enum Outcome {
    Done,
    /// Not going to succeed: the event is malformed, or its namespace is gone.
    Rejected(kube::Error),
    Retry(kube::Error),
}

fn outcome(r: Result<(), kube::Error>) -> Outcome {
    match r {
        Ok(()) => Outcome::Done,
        // A retry of an event whose earlier attempt was created after all (same name).
        Err(kube::Error::Api(s)) if s.code == 409 => Outcome::Done,
        Err(e @ kube::Error::Api(_)) if is_final(&e) => Outcome::Rejected(e),
        Err(e) => Outcome::Retry(e),
    }
}

fn is_final(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 400 | 404 | 422))
}

/// One event waiting for a retry.
#[derive(Debug, Clone)]
pub struct Pending {
    pub body: K8sEvent,
    pub failures: u32,
    pub due: Instant,
    pub since: Instant,
}

/// The events waiting for a retry, oldest first, at most `cap` of them. Pure: the clock is
/// passed in.
#[derive(Debug)]
pub struct RetryQueue {
    backoff: Backoff,
    cap: usize,
    seed: RandomState,
    items: VecDeque<Pending>,
}

impl RetryQueue {
    pub fn new(backoff: Backoff, cap: usize) -> Self {
        RetryQueue {
            backoff,
            cap,
            seed: RandomState::new(),
            items: VecDeque::new(),
        }
    }

    /// Queues an event that failed once; returns how many older ones were evicted to make room.
    pub fn push(&mut self, body: K8sEvent, now: Instant) -> usize {
        let mut item = Pending {
            body,
            failures: 0,
            due: now,
            since: now,
        };
        self.requeue(&mut item, now)
    }

    /// Queues an event again after one more failure.
    pub fn requeue(&mut self, item: &mut Pending, now: Instant) -> usize {
        item.failures = item.failures.saturating_add(1);
        let name = item.body.metadata.name.as_deref().unwrap_or_default();
        let jitter = self.seed.hash_one((name, item.failures));
        item.due = now + self.backoff.delay(item.failures, jitter);
        let mut evicted = 0;
        // The oldest go first: the newest say what holds now.
        while self.items.len() >= self.cap && self.cap > 0 {
            self.items.pop_front();
            evicted += 1;
        }
        if self.cap == 0 {
            return evicted + 1;
        }
        self.items.push_back(item.clone());
        evicted
    }

    /// Takes the events whose backoff is over; gives up (and counts) those older than
    /// [`MAX_AGE`].
    pub fn take_due(&mut self, now: Instant) -> (Vec<Pending>, usize) {
        let before = self.items.len();
        self.items.retain(|p| now.duration_since(p.since) < MAX_AGE);
        let expired = before - self.items.len();
        let (due, waiting): (VecDeque<_>, VecDeque<_>) =
            self.items.drain(..).partition(|p| p.due <= now);
        self.items = waiting;
        (due.into(), expired)
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.items.iter().map(|p| p.due).min()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The events.k8s.io/v1 Event, named as kube's recorder names them (`<object>.<nanoseconds>`),
/// so `kubectl describe` and `kubectl events` show it as before.
fn event_body(
    reporter: &Reporter,
    ev: &Event,
    regarding: &ObjectReference,
    now: Timestamp,
) -> K8sEvent {
    let object = regarding.name.as_deref().unwrap_or(&reporter.controller);
    K8sEvent {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: ev.secondary.clone(),
        note: ev.note.clone(),
        metadata: ObjectMeta {
            namespace: Some(
                regarding
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(
            match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..K8sEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> K8sEvent {
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..K8sEvent::default()
        }
    }

    fn names(items: &[Pending]) -> Vec<&str> {
        items
            .iter()
            .map(|p| p.body.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn queued_events_wait_out_a_growing_backoff() {
        let mut q = RetryQueue::new(Backoff::WRITES, 10);
        let t0 = Instant::now();
        assert_eq!(q.push(named("a"), t0), 0);
        let first = q.next_due().unwrap() - t0;
        assert!(first >= Duration::from_secs(5) && first < Duration::from_millis(6250));
        let (due, expired) = q.take_due(t0 + first - Duration::from_millis(1));
        assert!(due.is_empty() && expired == 0 && q.len() == 1);
        let (mut due, _) = q.take_due(t0 + first);
        assert_eq!(names(&due), ["a"]);
        assert!(q.is_empty() && q.next_due().is_none());
        // It fails again: twice the wait.
        let again = t0 + first;
        q.requeue(&mut due[0], again);
        let second = q.next_due().unwrap() - again;
        assert!(second >= Duration::from_secs(10), "{second:?}");
        assert_eq!(due[0].failures, 2);
    }

    #[test]
    fn the_queue_is_bounded_and_gives_up_after_an_hour() {
        let mut q = RetryQueue::new(Backoff::WRITES, 3);
        let t0 = Instant::now();
        for n in ["a", "b", "c"] {
            assert_eq!(q.push(named(n), t0), 0);
        }
        assert_eq!(q.push(named("d"), t0), 1, "the oldest is evicted");
        assert_eq!(q.len(), 3);
        let (due, _) = q.take_due(t0 + Duration::from_secs(60));
        assert_eq!(names(&due), ["b", "c", "d"]);

        q.push(named("late"), t0);
        let (due, expired) = q.take_due(t0 + MAX_AGE);
        assert!(due.is_empty());
        assert_eq!((expired, q.len()), (1, 0));

        let mut none = RetryQueue::new(Backoff::WRITES, 0);
        assert_eq!(none.push(named("x"), t0), 1, "no room at all: dropped");
        assert!(none.is_empty());
    }

    #[test]
    fn only_lasting_refusals_are_given_up() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..kube::core::Status::default()
            }))
        };
        assert!(matches!(outcome(Ok(())), Outcome::Done));
        assert!(matches!(outcome(Err(api(409))), Outcome::Done));
        for code in [400, 404, 422] {
            assert!(
                matches!(outcome(Err(api(code))), Outcome::Rejected(_)),
                "{code}"
            );
        }
        for code in [403, 429, 500, 503] {
            assert!(
                matches!(outcome(Err(api(code))), Outcome::Retry(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn events_are_named_placed_and_attributed_like_kubes() {
        let reporter = Reporter {
            controller: "supportgate".into(),
            instance: Some("pod-a".into()),
        };
        let ev = Event {
            type_: EventType::Warning,
            reason: "SupportLost".into(),
            note: Some("no longer supported".into()),
            action: "Evaluate".into(),
            secondary: None,
        };
        let regarding = ObjectReference {
            name: Some("west".into()),
            namespace: Some("kommander".into()),
            ..ObjectReference::default()
        };
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let body = event_body(&reporter, &ev, &regarding, at);
        assert_eq!(body.metadata.namespace.as_deref(), Some("kommander"));
        assert_eq!(
            body.metadata.name,
            Some(format!("west.{:x}", at.as_nanosecond()))
        );
        assert_eq!(body.type_.as_deref(), Some("Warning"));
        assert_eq!(body.reason.as_deref(), Some("SupportLost"));
        assert_eq!(body.reporting_instance.as_deref(), Some("pod-a"));
        assert_eq!(body.regarding, Some(regarding));
        assert!(body.series.is_none());

        let cluster_scoped = ObjectReference {
            name: Some("default".into()),
            ..ObjectReference::default()
        };
        let no_instance = Reporter {
            controller: "supportgate".into(),
            instance: None,
        };
        let body = event_body(&no_instance, &ev, &cluster_scoped, at);
        assert_eq!(body.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(body.reporting_instance.as_deref(), Some("supportgate"));
        assert_eq!(body.type_.as_deref(), Some("Warning"));
    }
}
