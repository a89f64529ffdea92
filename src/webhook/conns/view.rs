//! A connection as the reaper and the eviction see it at one instant: idle or unfinished since
//! when, and what that makes it: a timeout past, or its place in the eviction order.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::conn::{Conn, PHASE_HANDSHAKE};
use super::{CloseKind, Reason};
use crate::webhook::limits::ServerLimits;

/// A graceful close that has not ended the connection after this becomes a hard one.
const GRACEFUL_LIMIT_MS: u64 = 2_000;

impl Conn {
    /// What the reaper and the eviction see.
    pub(super) fn view(&self, now: u64) -> View {
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
pub(super) enum State {
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
pub(super) struct View {
    pub(super) state: State,
    pub(super) now: u64,
    pub(super) progress: u64,
    pub(super) served: u64,
    pub(super) close_kind: u8,
    pub(super) close_reason: u8,
    pub(super) close_at: u64,
}

impl View {
    /// Eviction order, lowest first; `None` for a connection already being closed at once.
    pub(super) fn eviction_rank(&self) -> Option<(u8, u64, u64)> {
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
    pub(super) fn overdue(&self, limits: &ServerLimits) -> Option<(CloseKind, Reason)> {
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
