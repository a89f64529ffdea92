//! Unit tests of the connection registry: eviction order, timeouts, abandoned streams.

use super::view::{State, View};
use super::*;

fn registry(max: usize) -> Arc<Registry> {
    let limits = ServerLimits {
        max_connections: max,
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        h2_max_abandoned_streams: 3,
        ..ServerLimits::default()
    };
    // An epoch an hour back, so that connections can be aged by moving their marks back.
    let epoch = Instant::now()
        .checked_sub(Duration::from_secs(3600))
        .expect("an hour of monotonic clock");
    Registry::with_epoch(limits, Arc::new(Metrics::new()), epoch)
}

const HONEST: &str = "127.0.0.1";
const FLOOD: &str = "127.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn admitted(r: &Arc<Registry>) -> Arc<Conn> {
    admitted_from(r, HONEST)
}

fn admitted_from(r: &Arc<Registry>, addr: &str) -> Arc<Conn> {
    match r.admit(ip(addr)) {
        Admission::Admitted(c) => c,
        Admission::Refused => panic!("refused a connection from {addr}"),
    }
}

/// Moves a connection's clock marks `ms` into the past, as if it had been open that long.
fn age(c: &Conn, ms: u64) {
    for t in [&c.idle_since, &c.busy_since] {
        let v = t.load(Ordering::Acquire);
        if v != 0 {
            t.store(v.saturating_sub(ms).max(1), Ordering::Release);
        }
    }
}

fn hard(c: &Conn) -> bool {
    c.close_kind.load(Ordering::Acquire) == CloseKind::Hard as u8
}

fn view_at(since: u64, now: u64, head: bool, progress: u64) -> View {
    View {
        state: State::Unfinished { since, head },
        now,
        progress,
        served: 0,
        close_kind: 0,
        close_reason: 0,
        close_at: 0,
    }
}

#[test]
fn at_the_cap_idle_strangers_go_first_then_the_longest_idle() {
    let r = registry(3);
    let worker = admitted(&r);
    worker.handshake_done(false);
    let g = worker.begin_request();
    g.complete();
    age(&worker, 20_000);
    let stranger_old = admitted(&r);
    stranger_old.handshake_done(true);
    age(&stranger_old, 1_000);
    let stranger_new = admitted(&r);
    stranger_new.handshake_done(true);

    let _d = admitted(&r);
    assert!(
        hard(&stranger_old),
        "the oldest connection that never completed a request goes first"
    );
    assert!(!hard(&worker) && !hard(&stranger_new));
    r.remove(&stranger_old);
    let _e = admitted(&r);
    assert!(hard(&stranger_new));
    assert!(
        !hard(&worker),
        "a connection that answered requests outlives idle strangers, even if idle longer"
    );
    assert_eq!(
        stranger_old.close_reason(),
        Some(Reason::EvictedIdle),
        "eviction reason"
    );
}

#[test]
fn unfinished_connections_go_longest_stuck_first() {
    let r = registry(3);
    let stuck = admitted(&r);
    stuck.handshake_done(false);
    stuck.on_read(10);
    age(&stuck, 5_000);
    // Streams in flight for as long, but answering streams all along.
    let busy = admitted(&r);
    busy.handshake_done(true);
    let first = busy.begin_request();
    let _second = busy.begin_request();
    age(&busy, 6_000);
    first.complete();
    // Just accepted: nothing read yet.
    let young = admitted(&r);
    let _c = admitted(&r);
    assert!(hard(&stuck), "the head stuck for 5 s goes first");
    assert_eq!(stuck.close_reason(), Some(Reason::EvictedSlow));
    assert!(!hard(&busy) && !hard(&young));
    r.remove(&stuck);
    age(&young, 100);

    let _d = admitted(&r);
    assert!(
        hard(&young),
        "a handshake 100 ms old goes before newer ones"
    );
    assert!(
        !hard(&busy),
        "the busy HTTP/2 connection answered a stream just now"
    );
}

#[test]
fn newcomers_are_refused_while_closes_pile_up() {
    let r = registry(8);
    let conns: Vec<_> = (0..8).map(|_| admitted(&r)).collect();
    // Each newcomer evicts one; none of the evicted tasks has ended yet, and the descriptors
    // they hold may go 1/8 of the cap + PENDING_CLOSES over the cap, no further.
    let room = 1 + PENDING_CLOSES;
    let extra: Vec<_> = (0..room).map(|_| admitted(&r)).collect();
    assert_eq!(conns.iter().chain(&extra).filter(|c| hard(c)).count(), room);
    assert!(
        matches!(r.admit(ip(HONEST)), Admission::Refused),
        "too far over the cap"
    );
    assert_eq!(r.metrics.webhook_connections_refused.get(), 1);
    for c in conns.iter().chain(&extra).filter(|c| hard(c)) {
        r.remove(c);
    }
    assert!(matches!(r.admit(ip(HONEST)), Admission::Admitted(_)));
}

#[test]
fn a_handshake_or_a_head_counts_as_unfinished_and_a_served_request_as_idle() {
    let r = registry(10);
    let c = admitted(&r);
    assert!(matches!(
        c.view(r.now()).state,
        State::Unfinished { head: false, .. }
    ));
    c.handshake_done(false);
    assert!(
        matches!(c.view(r.now()).state, State::Unfinished { head: true, .. }),
        "after the handshake, an HTTP/1.1 client owes its request head"
    );
    let g = c.begin_request();
    assert!(matches!(
        c.view(r.now()).state,
        State::Unfinished { head: false, .. }
    ));
    g.complete();
    assert!(matches!(c.view(r.now()).state, State::Idle { .. }));
    assert_eq!(c.served.load(Ordering::Acquire), 1);
    c.on_read(5);
    assert!(matches!(
        c.view(r.now()).state,
        State::Unfinished { head: true, .. }
    ));

    // HTTP/2 pings on an idle connection are not a request head.
    let h2 = admitted(&r);
    h2.handshake_done(true);
    h2.on_read(17);
    assert!(matches!(h2.view(r.now()).state, State::Idle { .. }));
}

#[test]
fn timeouts_close_heads_hard_and_idle_connections_gracefully() {
    let l = ServerLimits {
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        ..ServerLimits::default()
    };
    let head = view_at(1_000, 6_001, true, 10);
    assert_eq!(
        head.overdue(&l),
        Some((CloseKind::Hard, Reason::HeaderTimeout))
    );
    assert_eq!(view_at(1_000, 5_999, true, 10).overdue(&l), None);
    // A request being served is the body timeout's business, not the reaper's.
    assert_eq!(view_at(1_000, 60_000, false, 10).overdue(&l), None);
    let idle = View {
        state: State::Idle { since: 1 },
        ..view_at(1, 30_002, false, 0)
    };
    assert_eq!(
        idle.overdue(&l),
        Some((CloseKind::Graceful, Reason::IdleTimeout))
    );
    let lingering = View {
        close_kind: CloseKind::Graceful as u8,
        close_reason: Reason::IdleTimeout as u8,
        close_at: 1,
        ..idle
    };
    assert_eq!(
        lingering.overdue(&l),
        Some((CloseKind::Hard, Reason::Shutdown)),
        "a graceful close that does not end becomes a hard one"
    );
    let shutting = View {
        close_reason: Reason::Shutdown as u8,
        ..lingering
    };
    assert_eq!(shutting.overdue(&l), None, "shutdown has its own grace");
}

#[test]
fn too_many_abandoned_streams_close_the_connection() {
    let r = registry(10);
    let c = admitted(&r);
    c.handshake_done(true);
    for _ in 0..3 {
        drop(c.begin_request());
    }
    assert!(!hard(&c), "three abandoned streams are allowed");
    c.begin_request().complete();
    assert!(!hard(&c), "completed streams do not count");
    drop(c.begin_request());
    assert!(hard(&c));
    assert_eq!(c.close_reason(), Some(Reason::AbandonedStreams));
    assert_eq!(c.active.load(Ordering::Acquire), 0);
}

#[test]
fn removal_updates_the_gauge_and_counts_the_reason() {
    let r = registry(10);
    let a = admitted(&r);
    let b = admitted(&r);
    assert_eq!(r.metrics.webhook_connections_open.get(), 2);
    a.close(CloseKind::Hard, Reason::HeaderTimeout);
    r.remove(&a);
    r.remove(&b);
    assert_eq!(r.metrics.webhook_connections_open.get(), 0);
    let text = r.metrics.encode();
    assert!(
        text.contains("supportgate_webhook_connections_closed_total{reason=\"header_timeout\"} 1"),
        "{text}"
    );
    assert!(!text.contains("reason=\"idle_timeout\""), "{text}");
}

#[tokio::test]
async fn shutdown_waits_for_connections_to_go() {
    let r = registry(10);
    let c = admitted(&r);
    let task = {
        let (r, c) = (r.clone(), c.clone());
        tokio::spawn(async move {
            assert_eq!(c.closed().await, CloseKind::Graceful);
            tokio::time::sleep(Duration::from_millis(50)).await;
            r.remove(&c);
        })
    };
    assert!(r.shutdown(Duration::from_secs(5)).await);
    task.await.unwrap();
    let stuck = admitted(&r);
    assert!(!r.shutdown(Duration::from_millis(100)).await);
    assert_eq!(stuck.close_reason(), Some(Reason::Shutdown));
}

#[test]
fn at_the_cap_the_address_holding_most_gives_up_a_connection() {
    let r = registry(8);
    // The honest address's connection is the oldest and idle: on its own, it would go first.
    let honest = admitted_from(&r, HONEST);
    honest.handshake_done(true);
    age(&honest, 60_000);
    let flood: Vec<_> = (0..7).map(|_| admitted_from(&r, FLOOD)).collect();
    for (i, c) in flood.iter().enumerate() {
        age(c, 1_000 * (7 - i as u64));
    }
    let newcomer = admitted_from(&r, HONEST);
    assert!(
        !hard(&honest),
        "the honest address holds one connection; it keeps it"
    );
    assert!(hard(&flood[0]), "the flood's oldest goes");
    assert_eq!(flood.iter().filter(|c| hard(c)).count(), 1);
    assert!(!hard(&newcomer));
    assert_eq!(r.metrics.webhook_connection_sources.get(), 2);
}

#[test]
fn while_closes_pile_up_a_light_address_is_still_let_in() {
    let r = registry(16);
    let flood: Vec<_> = (0..16).map(|_| admitted_from(&r, FLOOD)).collect();
    // The flood's newcomers evict the flood's own, whose tasks have not ended yet.
    let mut piled = Vec::new();
    while let Admission::Admitted(c) = r.admit(ip(FLOOD)) {
        piled.push(c);
        assert!(piled.len() < 100, "never refused");
    }
    assert_eq!(
        piled.len(),
        16 / 8 + PENDING_CLOSES,
        "the flood's room above the cap"
    );
    let honest = admitted_from(&r, HONEST);
    assert!(!hard(&honest));
    assert!(
        flood.iter().chain(&piled).filter(|c| hard(c)).count() == piled.len() + 1,
        "the honest newcomer evicted one of the flood's"
    );
    assert!(
        matches!(r.admit(ip(FLOOD)), Admission::Refused),
        "the flood is still refused"
    );
    assert_eq!(r.open(), 16 + piled.len() + 1);
}

#[test]
fn a_connection_removed_after_a_hard_close_is_uncounted_once() {
    let r = registry(4);
    let c = admitted_from(&r, FLOOD);
    c.close(CloseKind::Hard, Reason::EvictedSlow);
    c.close(CloseKind::Hard, Reason::EvictedSlow);
    assert_eq!((r.live.load(Ordering::Acquire), c.source().live()), (0, 0));
    r.remove(&c);
    r.remove(&c);
    assert_eq!(r.live.load(Ordering::Acquire), 0);
    assert_eq!(r.open(), 0);
    assert_eq!(r.metrics.webhook_connection_sources.get(), 0);
}

#[test]
fn at_a_large_cap_one_scan_makes_room_for_many() {
    let r = registry(256);
    let flood: Vec<_> = (0..256).map(|_| admitted_from(&r, FLOOD)).collect();
    let first = admitted_from(&r, FLOOD);
    assert_eq!(flood.iter().filter(|c| hard(c)).count(), 256 / 64);
    // The next three newcomers fit in the room the batch made; none evicts.
    let next: Vec<_> = (0..3).map(|_| admitted_from(&r, FLOOD)).collect();
    assert_eq!(
        flood
            .iter()
            .chain(&next)
            .chain([&first])
            .filter(|c| hard(c))
            .count(),
        256 / 64
    );
}
