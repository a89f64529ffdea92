//! What each client address holds of the webhook server, so that one client's flood is paid for
//! by that client and not by kube-apiserver:
//!
//! - at the connection cap, the connection closed to make room is taken from the address that
//!   holds the most live connections (in the usual order of [`crate::webhook::conns`] within it);
//! - each address gets a few TLS handshakes at a time, and its other new connections wait their
//!   turn, so a flood's handshakes cannot take the CPU that a working client's handshake needs;
//! - when closes pile up past the cap, only an address holding more than its share is refused;
//!   a light one is still let in.
//!
//! kube-apiserver is one address (one per replica) holding a few connections; a flood from one
//! address fills its share and then pushes out only its own connections. Where a proxy or SNAT
//! puts every client on one address, this falls back to the plain order of the registry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// One client address.
pub struct Source {
    pub addr: IpAddr,
    /// Its connections not being closed at once.
    live: AtomicUsize,
    handshakes: Semaphore,
}

impl Source {
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub(crate) fn left_live(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits until this address may run one more TLS handshake; the permit ends the turn.
    /// `None` only if the semaphore was closed, which nothing does.
    pub async fn handshake_turn(&self) -> Option<SemaphorePermit<'_>> {
        self.handshakes.acquire().await.ok()
    }
}

struct Entry {
    source: std::sync::Arc<Source>,
    /// Its connections in the registry, being closed or not.
    registered: usize,
}

/// Every address holding a connection; kept under the registry's lock.
#[derive(Default)]
pub struct Sources {
    by_addr: HashMap<IpAddr, Entry>,
}

impl Sources {
    /// A new connection from `addr`, live; `handshakes` is the turns an address gets.
    pub fn join(&mut self, addr: IpAddr, handshakes: usize) -> std::sync::Arc<Source> {
        let entry = self.by_addr.entry(addr).or_insert_with(|| Entry {
            source: std::sync::Arc::new(Source {
                addr,
                live: AtomicUsize::new(0),
                handshakes: Semaphore::new(handshakes.max(1)),
            }),
            registered: 0,
        });
        entry.registered += 1;
        entry.source.live.fetch_add(1, Ordering::AcqRel);
        entry.source.clone()
    }

    /// A connection from `addr` has left the registry.
    pub fn leave(&mut self, addr: IpAddr) {
        if let Some(e) = self.by_addr.get_mut(&addr) {
            e.registered = e.registered.saturating_sub(1);
            if e.registered == 0 {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Connections `addr` has in the registry.
    pub fn registered(&self, addr: IpAddr) -> usize {
        self.by_addr.get(&addr).map_or(0, |e| e.registered)
    }

    /// The address with the most live connections, if any has one.
    pub fn heaviest(&self) -> Option<IpAddr> {
        self.by_addr
            .values()
            .map(|e| (e.source.live(), e.source.addr))
            .filter(|(live, _)| *live > 0)
            .max()
            .map(|(_, addr)| addr)
    }

    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

/// The connections an address may hold and still count as light at the cap: 1/8 of the cap.
pub fn share(max_connections: usize) -> usize {
    (max_connections / 8).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn an_address_is_forgotten_with_its_last_connection() {
        let mut s = Sources::default();
        let a = s.join(ip("127.0.0.2"), 4);
        s.join(ip("127.0.0.2"), 4);
        assert_eq!((s.registered(a.addr), a.live(), s.len()), (2, 2, 1));
        s.leave(a.addr);
        s.leave(a.addr);
        assert!(s.is_empty());
        assert_eq!(s.registered(a.addr), 0);
    }

    #[test]
    fn the_heaviest_is_the_address_with_most_live_connections() {
        let mut s = Sources::default();
        let flood: Vec<_> = (0..3).map(|_| s.join(ip("127.0.0.2"), 4)).collect();
        s.join(ip("127.0.0.1"), 4);
        s.join(ip("127.0.0.1"), 4);
        assert_eq!(s.heaviest(), Some(ip("127.0.0.2")));
        // Two of the flood's are being closed at once: the other address is now heavier.
        flood[0].left_live();
        flood[1].left_live();
        assert_eq!(s.heaviest(), Some(ip("127.0.0.1")));
    }

    #[tokio::test]
    async fn an_address_gets_its_handshake_turns_and_no_more() {
        let mut s = Sources::default();
        let a = s.join(ip("127.0.0.2"), 2);
        let b = s.join(ip("127.0.0.1"), 2);
        let (_t1, _t2) = (a.handshake_turn().await, a.handshake_turn().await);
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), a.handshake_turn());
        assert!(third.await.is_err(), "a third turn while two run");
        let other = tokio::time::timeout(std::time::Duration::from_millis(50), b.handshake_turn());
        assert!(
            other.await.is_ok_and(|t| t.is_some()),
            "another address waits for nothing"
        );
    }

    #[test]
    fn a_share_is_an_eighth_of_the_cap() {
        assert_eq!(share(2048), 256);
        assert_eq!(share(4), 1);
    }
}
