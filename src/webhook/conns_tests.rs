//! Unit tests of the connection registry: eviction order, timeouts, abandoned streams.

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
    Arc::new(Registry {
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        epoch,
        limits,
        metrics: Arc::new(Metrics::new()),
        emptied: Notify::new(),
    })
}

fn admitted(r: &Arc<Registry>) -> Arc<Conn> {
    match r.admit() {
        Admission::Admitted(c) => c,
        Admission::Refused => panic!("refused below the cap"),
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
    stranger_old.handshake_done(false);
    age(&stranger_old, 1_000);
    let stranger_new = admitted(&r);
    stranger_new.handshake_done(false);

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
fn slow_unfinished_connections_go_slowest_first() {
    let r = registry(3);
    let slow = admitted(&r);
    slow.handshake_done(false);
    slow.on_read(10);
    age(&slow, 5_000);
    let fast = admitted(&r);
    fast.handshake_done(false);
    fast.on_read(1_000_000);
    age(&fast, 5_000);
    // Just begun, and already sent its ClientHello: ahead of a stalled head, behind a
    // connection that sent nothing at all.
    let young = admitted(&r);
    young.on_read(517);
    let _c = admitted(&r);
    assert!(hard(&slow), "10 bytes in 5 s is slower than 1 MB in 5 s");
    assert_eq!(slow.close_reason(), Some(Reason::EvictedSlow));
    assert!(!hard(&fast) && !hard(&young));
    r.remove(&slow);

    let _d = admitted(&r);
    assert!(hard(&_c), "a connection that has sent nothing goes before one that has");
    assert!(!hard(&fast) && !hard(&young));
}

#[test]
fn newcomers_are_refused_while_closes_pile_up() {
    let r = registry(8);
    let conns: Vec<_> = (0..8).map(|_| admitted(&r)).collect();
    // Each newcomer evicts one; none of the evicted tasks has ended yet, and the descriptors
    // they hold may go 8/8 + 1/8 + 1 over the cap, no further.
    let extra: Vec<_> = (0..2).map(|_| admitted(&r)).collect();
    assert_eq!(conns.iter().chain(&extra).filter(|c| hard(c)).count(), 2);
    assert!(
        matches!(r.admit(), Admission::Refused),
        "more than 1/8 over the cap"
    );
    assert_eq!(r.metrics.webhook_connections_refused.get(), 1);
    for c in conns.iter().chain(&extra).filter(|c| hard(c)) {
        r.remove(c);
    }
    assert!(matches!(r.admit(), Admission::Admitted(_)));
}

#[test]
fn a_handshake_or_a_head_counts_as_unfinished_and_a_served_request_as_idle() {
    let r = registry(10);
    let c = admitted(&r);
    assert!(matches!(c.view(r.now()).state, State::Unfinished { head: false, .. }));
    c.handshake_done(false);
    assert!(matches!(c.view(r.now()).state, State::Idle { .. }));
    c.on_read(5);
    assert!(matches!(c.view(r.now()).state, State::Unfinished { head: true, .. }));
    let g = c.begin_request();
    assert!(matches!(c.view(r.now()).state, State::Unfinished { head: false, .. }));
    g.complete();
    assert!(matches!(c.view(r.now()).state, State::Idle { .. }));
    assert_eq!(c.served.load(Ordering::Acquire), 1);

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
