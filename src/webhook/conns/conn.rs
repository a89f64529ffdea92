//! One connection's state: its phase, its requests in flight, the bytes it read and the close
//! asked for, kept in atomics that its task, the reaper and the accept loop all touch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use tokio::sync::Notify;

use super::{CloseKind, Reason, Registry};
use crate::webhook::sources::Source;

pub(super) const PHASE_HANDSHAKE: u8 = 0;
pub(super) const PHASE_H1: u8 = 1;
pub(super) const PHASE_H2: u8 = 2;

/// Abandoned streams are counted in windows of this length.
const ABANDON_WINDOW_MS: u64 = 10_000;

/// One connection's state. Times are milliseconds since the registry's epoch; 0 means unset
/// (the epoch is taken one millisecond before the first connection can exist).
pub struct Conn {
    pub id: u64,
    pub(super) phase: AtomicU8,
    /// Requests (HTTP/1.1) or streams (HTTP/2) in flight.
    pub(super) active: AtomicU32,
    pub(super) served: AtomicU64,
    pub(super) idle_since: AtomicU64,
    /// When the unfinished work began: the first byte of an HTTP/1.1 head, the first stream of a
    /// busy HTTP/2 connection, or the TCP accept for a handshake.
    pub(super) busy_since: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) bytes_at_busy: AtomicU64,
    pub(super) abandoned: AtomicU32,
    pub(super) abandon_window: AtomicU64,
    pub(super) close_kind: AtomicU8,
    pub(super) close_reason: AtomicU8,
    pub(super) close_at: AtomicU64,
    /// Counted among the live connections (of the registry and of its source).
    pub(super) counted_live: AtomicBool,
    pub(super) signal: Notify,
    pub(super) source: Arc<Source>,
    pub(super) registry: Arc<Registry>,
}

impl Conn {
    /// A connection from `source` accepted `now`, in its TLS handshake.
    pub(super) fn new(id: u64, now: u64, source: Arc<Source>, registry: Arc<Registry>) -> Self {
        Conn {
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
            registry,
        }
    }

    pub(super) fn now(&self) -> u64 {
        self.registry.now()
    }

    /// The client address this connection came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Stops counting this connection as live (once): it is being closed at once, or gone.
    pub(super) fn leave_live(&self) {
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

    pub(super) fn on_read(&self, n: usize) {
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
