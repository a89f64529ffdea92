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

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::base::metrics::{CloseLabels, Metrics};
use crate::webhook::limits::ServerLimits;
use crate::webhook::sources::{Source, Sources, share};

/// Why a connection is closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    HandshakeTimeout = 1,
    HeaderTimeout,
    BodyTimeout,
    IdleTimeout,
    AbandonedStreams,
    EvictedIdle,
    EvictedSlow,
    Shutdown,
}

impl Reason {
    const ALL: [Reason; 8] = [
        Reason::HandshakeTimeout,
        Reason::HeaderTimeout,
        Reason::BodyTimeout,
        Reason::IdleTimeout,
        Reason::AbandonedStreams,
        Reason::EvictedIdle,
        Reason::EvictedSlow,
        Reason::Shutdown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::HandshakeTimeout => "handshake_timeout",
            Reason::HeaderTimeout => "header_timeout",
            Reason::BodyTimeout => "body_timeout",
            Reason::IdleTimeout => "idle_timeout",
            Reason::AbandonedStreams => "abandoned_streams",
            Reason::EvictedIdle => "evicted_idle",
            Reason::EvictedSlow => "evicted_slow",
            Reason::Shutdown => "shutdown",
        }
    }

    fn from_u8(v: u8) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| *r as u8 == v)
    }
}

/// How a close is carried out: after the request in flight (and an HTTP/2 GOAWAY), or at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseKind {
    Graceful = 1,
    Hard = 2,
}

const PHASE_HANDSHAKE: u8 = 0;
const PHASE_H1: u8 = 1;
const PHASE_H2: u8 = 2;

/// Closes in progress that may hold descriptors beyond the cap (plus 1/8 of the cap).
const PENDING_CLOSES: usize = 32;
/// Abandoned streams are counted in windows of this length.
const ABANDON_WINDOW_MS: u64 = 10_000;
/// A graceful close that has not ended the connection after this becomes a hard one.
const GRACEFUL_LIMIT_MS: u64 = 2_000;

/// One connection's state. Times are milliseconds since the registry's epoch; 0 means unset
/// (the epoch is taken one millisecond before the first connection can exist).
pub struct Conn {
    pub id: u64,
    phase: AtomicU8,
    /// Requests (HTTP/1.1) or streams (HTTP/2) in flight.
    active: AtomicU32,
    served: AtomicU64,
    idle_since: AtomicU64,
    /// When the unfinished work began: the first byte of an HTTP/1.1 head, the first stream of a
    /// busy HTTP/2 connection, or the TCP accept for a handshake.
    busy_since: AtomicU64,
    bytes: AtomicU64,
    bytes_at_busy: AtomicU64,
    abandoned: AtomicU32,
    abandon_window: AtomicU64,
    close_kind: AtomicU8,
    close_reason: AtomicU8,
    close_at: AtomicU64,
    /// Counted among the live connections (of the registry and of its source).
    counted_live: AtomicBool,
    signal: Notify,
    source: Arc<Source>,
    registry: Arc<Registry>,
}

impl Conn {
    fn now(&self) -> u64 {
        self.registry.now()
    }

    /// The client address this connection came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Stops counting this connection as live (once): it is being closed at once, or gone.
    fn leave_live(&self) {
        if self.counted_live.swap(false, Ordering::AcqRel) {
            self.source.left_live();
            self.registry.live.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The TLS handshake is done; `h2` when ALPN chose HTTP/2.
    ///
    /// An HTTP/1.1 client connects to send a request, so from here its first request head is
    /// awaited under the header-read timeout (its first bytes may already sit in the TLS
    /// buffer). An HTTP/2 connection is idle until its first stream.
    pub fn handshake_done(&self, h2: bool) {
        let now = self.now();
        self.idle_since.store(now, Ordering::Release);
        self.bytes_at_busy
            .store(self.bytes.load(Ordering::Acquire), Ordering::Release);
        self.busy_since
            .store(if h2 { 0 } else { now }, Ordering::Release);
        let phase = if h2 { PHASE_H2 } else { PHASE_H1 };
        self.phase.store(phase, Ordering::Release);
    }

    fn on_read(&self, n: usize) {
        let before = self.bytes.fetch_add(n as u64, Ordering::AcqRel);
        // Bytes on an idle HTTP/1.1 connection start a request head (HTTP/2 idles with pings).
        if self.phase.load(Ordering::Acquire) == PHASE_H1
            && self.active.load(Ordering::Acquire) == 0
            && self.busy_since.load(Ordering::Acquire) == 0
        {
            self.bytes_at_busy.store(before, Ordering::Release);
            self.busy_since.store(self.now(), Ordering::Release);
        }
    }

    /// A request (or stream) has begun; the guard ends it when dropped.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        if self.active.fetch_add(1, Ordering::AcqRel) == 0
            && self.busy_since.load(Ordering::Acquire) == 0
        {
            self.bytes_at_busy
                .store(self.bytes.load(Ordering::Acquire), Ordering::Release);
            self.busy_since.store(self.now(), Ordering::Release);
        }
        RequestGuard {
            conn: self.clone(),
            completed: false,
        }
    }

    /// Counts a stream the client abandoned; true when it has abandoned too many.
    fn abandon(&self) -> bool {
        let now = self.now();
        let window = self.abandon_window.load(Ordering::Acquire);
        if now.saturating_sub(window) > ABANDON_WINDOW_MS {
            self.abandon_window.store(now, Ordering::Release);
            self.abandoned.store(0, Ordering::Release);
        }
        let n = self.abandoned.fetch_add(1, Ordering::AcqRel) + 1;
        n > self.registry.limits.h2_max_abandoned_streams
    }

    /// Asks the connection's task to close it (a stronger kind overrides a weaker one).
    pub fn close(&self, kind: CloseKind, reason: Reason) {
        let prev = self.close_kind.fetch_max(kind as u8, Ordering::AcqRel);
        if prev >= kind as u8 {
            return;
        }
        if prev == 0 {
            self.close_reason.store(reason as u8, Ordering::Release);
            self.close_at.store(self.now(), Ordering::Release);
        }
        if kind == CloseKind::Hard {
            self.leave_live();
        }
        self.signal.notify_one();
    }

    /// Waits until a close is asked for, and says which kind.
    pub async fn closed(&self) -> CloseKind {
        loop {
            match self.close_kind.load(Ordering::Acquire) {
                1 => return CloseKind::Graceful,
                2 => return CloseKind::Hard,
                _ => self.signal.notified().await,
            }
        }
    }

    /// Waits until a hard close is asked for.
    pub async fn closed_hard(&self) {
        while self.close_kind.load(Ordering::Acquire) != CloseKind::Hard as u8 {
            self.signal.notified().await;
        }
    }

    pub fn close_reason(&self) -> Option<Reason> {
        Reason::from_u8(self.close_reason.load(Ordering::Acquire))
    }

    /// What the reaper and the eviction see.
    fn view(&self, now: u64) -> View {
        let phase = self.phase.load(Ordering::Acquire);
        let busy_since = self.busy_since.load(Ordering::Acquire);
        let active = self.active.load(Ordering::Acquire);
        let state = if phase == PHASE_HANDSHAKE {
            // Set at accept.
            State::Unfinished {
                since: busy_since,
                head: false,
            }
        } else if active == 0 && busy_since == 0 {
            State::Idle {
                since: self.idle_since.load(Ordering::Acquire),
            }
        } else {
            State::Unfinished {
                since: busy_since,
                head: active == 0,
            }
        };
        let progress = self
            .bytes
            .load(Ordering::Acquire)
            .saturating_sub(self.bytes_at_busy.load(Ordering::Acquire));
        View {
            state,
            now,
            progress,
            served: self.served.load(Ordering::Acquire),
            close_kind: self.close_kind.load(Ordering::Acquire),
            close_reason: self.close_reason.load(Ordering::Acquire),
            close_at: self.close_at.load(Ordering::Acquire),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle {
        since: u64,
    },
    /// `head`: an HTTP/1.1 request head is being read (no request handed to the service yet).
    Unfinished {
        since: u64,
        head: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct View {
    state: State,
    now: u64,
    progress: u64,
    served: u64,
    close_kind: u8,
    close_reason: u8,
    close_at: u64,
}

impl View {
    /// Eviction order, lowest first; `None` for a connection already being closed at once.
    fn eviction_rank(&self) -> Option<(u8, u64, u64)> {
        if self.close_kind == CloseKind::Hard as u8 {
            return None;
        }
        match self.state {
            State::Idle { since } => Some((u8::from(self.served > 0), since, 0)),
            // Stuck longest first; among equals, the one that read least.
            State::Unfinished { since, .. } => Some((2, since, self.progress)),
        }
    }

    /// A close the reaper asks for, if any timeout has passed.
    fn overdue(&self, limits: &ServerLimits) -> Option<(CloseKind, Reason)> {
        let ms = |d: Duration| d.as_millis() as u64;
        if self.close_kind == CloseKind::Graceful as u8 {
            // A shutdown lets requests in flight finish (within its own grace period).
            let late = self.close_reason != Reason::Shutdown as u8
                && self.now.saturating_sub(self.close_at) > GRACEFUL_LIMIT_MS;
            return late.then_some((CloseKind::Hard, Reason::Shutdown));
        }
        if self.close_kind != 0 {
            return None;
        }
        match self.state {
            State::Idle { since } if self.now.saturating_sub(since) > ms(limits.idle_timeout) => {
                Some((CloseKind::Graceful, Reason::IdleTimeout))
            }
            State::Unfinished { since, head: true }
                if self.now.saturating_sub(since) > ms(limits.header_read_timeout) =>
            {
                Some((CloseKind::Hard, Reason::HeaderTimeout))
            }
            _ => None,
        }
    }
}

/// Ends a request on drop; a request dropped before [`RequestGuard::complete`] was abandoned by
/// the client (an HTTP/2 reset, or a cut-off body).
pub struct RequestGuard {
    conn: Arc<Conn>,
    completed: bool,
}

impl RequestGuard {
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }

    /// The request was answered normally.
    pub fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let c = &self.conn;
        if self.completed {
            c.served.fetch_add(1, Ordering::AcqRel);
            // A busy HTTP/2 connection progresses with every answer, though never idle.
            if c.active.load(Ordering::Acquire) > 1 {
                c.bytes_at_busy
                    .store(c.bytes.load(Ordering::Acquire), Ordering::Release);
                c.busy_since.store(c.now(), Ordering::Release);
            }
        } else if c.abandon() {
            c.close(CloseKind::Hard, Reason::AbandonedStreams);
        }
        if c.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            c.idle_since.store(c.now(), Ordering::Release);
            c.busy_since.store(0, Ordering::Release);
        }
    }
}

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
        // A panic while holding the lock leaves the maps themselves consistent.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
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
        let conn = Arc::new(Conn {
            id,
            phase: AtomicU8::new(PHASE_HANDSHAKE),
            active: AtomicU32::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(now),
            busy_since: AtomicU64::new(now),
            bytes: AtomicU64::new(0),
            bytes_at_busy: AtomicU64::new(0),
            abandoned: AtomicU32::new(0),
            abandon_window: AtomicU64::new(now),
            close_kind: AtomicU8::new(0),
            close_reason: AtomicU8::new(0),
            close_at: AtomicU64::new(0),
            counted_live: AtomicBool::new(true),
            signal: Notify::new(),
            source,
            registry: self.clone(),
        });
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

/// A socket that reports the bytes it reads to its connection's state.
pub struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, conn: Arc<Conn>) -> Self {
        Tracked { inner, conn }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.conn.on_read(n);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[path = "conns_tests.rs"]
mod tests;
