//! Why and how the server closes a connection.

use strum::{EnumIter, IntoEnumIterator as _, IntoStaticStr};

/// Why a connection is closed by the server; its `label` is the `reason` of
/// `supportgate_webhook_connections_closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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
    pub fn label(self) -> &'static str {
        self.into()
    }

    /// The reason stored as `reason as u8` (0: none).
    pub(super) fn from_u8(v: u8) -> Option<Reason> {
        Reason::iter().find(|r| *r as u8 == v)
    }
}

/// How a close is carried out: after the request in flight (and an HTTP/2 GOAWAY), or at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseKind {
    Graceful = 1,
    Hard = 2,
}
