//! The registry of open webhook connections: what each is doing (handshake, idle, reading a
//! request, serving streams), since when and how fast, so that the server can close the ones
//! past a timeout and, at the connection cap, pick whom to close to make room.
//!
//! Order at the cap: idle connections that never completed a request (oldest first), then idle
//! ones that did (longest idle first), then unfinished ones, the one stuck longest in its current
//! phase (handshake, request head, request) first. A real client gets through each phase in
//! milliseconds and a busy HTTP/2 connection marks progress with every answered stream, while
//! a slow attacker sits in one phase until a timeout: so neither a keep-alive connection that
//! answers requests nor a fresh connection that has only just begun is what an attacker's
//! slow connections push out. Which client address pays for a flood is
//! [`crate::webhook::sources`]' business: the victim is taken from the address holding most.
//!
//! Here the registry (admission at the cap, the reaper, shutdown); `conn` one connection's
//! state, `view` what the reaper and the eviction read of it, `reason` why and how the server
//! closes it, `tracked` the socket that counts its bytes.

mod conn;
mod reason;
mod tracked;
mod view;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use crate::base::metrics::{CloseLabels, Metrics};
use crate::webhook::limits::ServerLimits;
use crate::webhook::sources::{Sources, share};

pub use conn::{Conn, RequestGuard};
pub use reason::{CloseKind, Reason};
pub use tracked::Tracked;

/// Closes in progress that may hold descriptors beyond the cap (plus 1/8 of the cap).
const PENDING_CLOSES: usize = 32;

/// Whether a new connection got a slot.
pub enum Admission {
    Admitted(Arc<Conn>),
    Refused,
}

/// What the registry's lock guards.
#[derive(Default)]
struct Table {
    conns: HashMap<u64, Arc<Conn>>,
    sources: Sources,
}

/// All open connections of one server.
pub struct Registry {
    table: Mutex<Table>,
    /// Connections not being closed at once.
    live: AtomicUsize,
    next_id: AtomicU64,
    epoch: Instant,
    pub limits: ServerLimits,
    metrics: Arc<Metrics>,
    emptied: Notify,
}

impl Registry {
    pub fn new(limits: ServerLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        Self::with_epoch(limits, metrics, Instant::now() - Duration::from_millis(1))
    }

    /// A registry whose clock starts at `epoch` (tests age connections by moving it back).
    fn with_epoch(limits: ServerLimits, metrics: Arc<Metrics>, epoch: Instant) -> Arc<Self> {
        Arc::new(Registry {
            table: Mutex::new(Table::default()),
            live: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            epoch,
            limits,
            metrics,
            emptied: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock()
    }

    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// Registers a new connection from `peer`, closing another one at the cap if one may be
    /// closed.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        let mut t = self.lock();
        let max = self.limits.max_connections;
        // Connections being closed at once still hold descriptors until their task ends (a few
        // scheduler turns, many more under a flood); they do not count against the cap, within
        // a bound. A light address gets past the bound by another eighth of the cap: the flood
        // that piles the closes up is not its doing.
        let ceiling = if t.sources.registered(peer) < share(max) {
            max + max / 4 + PENDING_CLOSES
        } else {
            max + max / 8 + PENDING_CLOSES
        };
        if t.conns.len() >= max && self.live.load(Ordering::Acquire) >= max {
            let victims = if t.conns.len() < ceiling {
                self.pick_victims(&t, eviction_batch(max))
            } else {
                Vec::new()
            };
            if victims.is_empty() {
                self.metrics.webhook_connections_refused.inc();
                return Admission::Refused;
            }
            for (conn, reason) in victims {
                conn.close(CloseKind::Hard, reason);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::AcqRel);
        let now = self.now();
        let source = t.sources.join(peer, self.limits.handshakes_per_client);
        self.live.fetch_add(1, Ordering::AcqRel);
        let conn = Arc::new(Conn::new(id, now, source, self.clone()));
        t.conns.insert(id, conn.clone());
        self.gauge(&t);
        self.metrics.webhook_connections_accepted.inc();
        Admission::Admitted(conn)
    }

    fn gauge(&self, t: &Table) {
        let m = &self.metrics;
        m.webhook_connections_open.set(t.conns.len() as i64);
        m.webhook_connection_sources.set(t.sources.len() as i64);
    }

    /// Up to `n` connections to close at the cap: from the address holding the most live
    /// connections, in eviction order (see the module's documentation).
    fn pick_victims(&self, t: &Table, n: usize) -> Vec<(Arc<Conn>, Reason)> {
        let now = self.now();
        let from = |only: Option<IpAddr>| {
            let mut ranked: Vec<_> = t
                .conns
                .values()
                .filter(|c| only.is_none_or(|a| c.source.addr == a))
                .filter_map(|c| c.view(now).eviction_rank().map(|r| (r, c)))
                .collect();
            if ranked.len() > n {
                ranked.select_nth_unstable_by_key(n - 1, |(r, _)| *r);
                ranked.truncate(n);
            }
            ranked
        };
        let mut ranked = t
            .sources
            .heaviest()
            .map(|a| from(Some(a)))
            .unwrap_or_default();
        if ranked.is_empty() {
            ranked = from(None);
        }
        ranked
            .into_iter()
            .map(|(rank, c)| {
                let reason = if rank.0 == 2 {
                    Reason::EvictedSlow
                } else {
                    Reason::EvictedIdle
                };
                (c.clone(), reason)
            })
            .collect()
    }

    /// Removes a connection whose task has ended, and counts why it was closed.
    pub fn remove(&self, conn: &Conn) {
        let mut t = self.lock();
        if t.conns.remove(&conn.id).is_some() {
            t.sources.leave(conn.source.addr);
        }
        conn.leave_live();
        self.gauge(&t);
        if let Some(reason) = conn.close_reason() {
            self.metrics
                .webhook_connections_closed
                .get_or_create(&CloseLabels {
                    reason: reason.label(),
                })
                .inc();
        }
        if t.conns.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// Closes connections past a timeout, every `limits.reap_every()`, forever.
    pub async fn reap(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.limits.reap_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = self.now();
            let overdue: Vec<_> = self
                .lock()
                .conns
                .values()
                .filter_map(|c| c.view(now).overdue(&self.limits).map(|o| (c.clone(), o)))
                .collect();
            for (conn, (kind, reason)) in overdue {
                let read = conn.bytes.load(Ordering::Acquire);
                tracing::debug!(
                    conn = conn.id,
                    reason = reason.label(),
                    read,
                    "closing a connection"
                );
                conn.close(kind, reason);
            }
        }
    }

    /// Asks every connection to finish its request in flight and close, and waits (up to
    /// `grace`) until all are gone.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let emptied = self.emptied.notified();
                tokio::pin!(emptied);
                emptied.as_mut().enable();
                let conns: Vec<_> = self.lock().conns.values().cloned().collect();
                if conns.is_empty() {
                    return;
                }
                for c in conns {
                    c.close(CloseKind::Graceful, Reason::Shutdown);
                }
                emptied.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

/// Connections closed together at the cap: 1/64 of it. Choosing them scans every connection, so
/// one scan makes room for the next many newcomers, and the accept loop keeps ahead of a flood.
fn eviction_batch(max_connections: usize) -> usize {
    (max_connections / 64).max(1)
}

#[cfg(test)]
#[path = "conns_tests.rs"]
mod tests;
