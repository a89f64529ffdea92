//! Retrying failed writes (issue 28): per object, exponential backoff with jitter, forgotten on
//! success.
//!
//! A write the API server refuses (RBAC, an admission policy, overload) is tried again after
//! 5 s, then 10 s, 20 s, ... up to 5 minutes, each delay stretched by up to a quarter at random.
//! A fixed 5 s retry sent an API server that was already refusing 10,000 objects about 2,000
//! writes a second; the backoff brings that to a few a second within minutes, and the jitter
//! keeps objects that failed together from retrying together.
//!
//! Everything is keyed by the object's uid: a deleted and re-created object (same name, new
//! uid) starts with nothing remembered, neither a backoff nor a status already written.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::time::Instant;

/// How long to wait before retrying a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// No delay grows beyond this (before its jitter).
    pub cap: Duration,
}

impl Backoff {
    /// Status, report and event writes: 5 s doubling to 5 min.
    pub const WRITES: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(300),
    };

    /// The delay after `failures` consecutive failures (1 after the first), stretched by
    /// `jitter`: 0 adds nothing, `u64::MAX` almost a quarter. The result lies in
    /// `[d, 1.25 d)` for `d = min(base * 2^(failures-1), cap)`, so `d` is a lower bound that a
    /// reader (or a test) can count on.
    pub fn delay(&self, failures: u32, jitter: u64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let d = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        let quarter = d.as_nanos() / 4;
        let extra = quarter * u128::from(jitter) / (u128::from(u64::MAX) + 1);
        d + Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX))
    }
}

/// The key of an object in the writers' memory: its uid, or (for an object the API server did
/// not give one, which it always does) its namespace and name.
pub fn uid_key(meta: &ObjectMeta) -> String {
    match &meta.uid {
        Some(uid) => uid.clone(),
        None => format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        ),
    }
}

#[derive(Debug, Clone, Copy)]
struct Failing {
    failures: u32,
    due: Instant,
}

/// Per object, how many writes failed in a row and when the next attempt is due.
#[derive(Debug)]
pub struct Retries {
    backoff: Backoff,
    /// Per process: replicas (and restarts) do not share their jitter.
    seed: RandomState,
    failing: HashMap<String, Failing>,
}

impl Retries {
    pub fn new(backoff: Backoff) -> Self {
        Retries {
            backoff,
            seed: RandomState::new(),
            failing: HashMap::new(),
        }
    }

    /// Records a failed write of `key` at `now`; returns how long to wait before the next.
    pub fn failed(&mut self, key: &str, now: Instant) -> Duration {
        let f = self.failing.entry(key.to_string()).or_insert(Failing {
            failures: 0,
            due: now,
        });
        f.failures = f.failures.saturating_add(1);
        let delay = self
            .backoff
            .delay(f.failures, self.seed.hash_one((key, f.failures)));
        f.due = now + delay;
        delay
    }

    /// Forgets the failures of `key` (its write succeeded): the next failure waits `base` again.
    pub fn succeeded(&mut self, key: &str) {
        self.failing.remove(key);
    }

    /// Consecutive failures of `key` so far.
    pub fn failures(&self, key: &str) -> u32 {
        self.failing.get(key).map_or(0, |f| f.failures)
    }

    /// Whether `key` may be written at `now`: it is not failing, or its backoff is over.
    pub fn is_due(&self, key: &str, now: Instant) -> bool {
        self.failing.get(key).is_none_or(|f| f.due <= now)
    }

    /// When the earliest pending retry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.failing.values().map(|f| f.due).min()
    }

    /// Forgets the objects for which `live` is false (deleted ones).
    pub fn retain(&mut self, mut live: impl FnMut(&str) -> bool) {
        self.failing.retain(|k, _| live(k));
    }

    pub fn len(&self) -> usize {
        self.failing.len()
    }

    pub fn is_empty(&self) -> bool {
        self.failing.is_empty()
    }
}

/// A status writer's memory: per object uid, the status it last wrote (so that an unchanged
/// one is not written again) and the backoff of the writes that failed.
#[derive(Debug)]
pub struct Writes<S> {
    written: HashMap<String, S>,
    retries: Retries,
}

impl<S: PartialEq> Writes<S> {
    pub fn new(backoff: Backoff) -> Self {
        Writes {
            written: HashMap::new(),
            retries: Retries::new(backoff),
        }
    }

    /// What was last written for this object (not for a predecessor of the same name).
    pub fn previous(&self, uid: &str) -> Option<&S> {
        self.written.get(uid)
    }

    /// Whether `status` is to be written now: it is not what this object already shows, and no
    /// backoff of it is running.
    pub fn wants(&self, uid: &str, status: &S, now: Instant) -> bool {
        self.written.get(uid) != Some(status) && self.retries.is_due(uid, now)
    }

    pub fn wrote(&mut self, uid: &str, status: S) {
        self.retries.succeeded(uid);
        self.written.insert(uid.to_string(), status);
    }

    /// Records a failed write; returns the delay before the next attempt.
    pub fn failed(&mut self, uid: &str, now: Instant) -> Duration {
        self.retries.failed(uid, now)
    }

    pub fn failures(&self, uid: &str) -> u32 {
        self.retries.failures(uid)
    }

    /// Forgets everything about the objects not in `live` (deleted ones).
    pub fn keep_only(&mut self, live: &std::collections::HashSet<String>) {
        self.written.retain(|k, _| live.contains(k));
        self.retries.retain(|k| live.contains(k));
    }

    /// When the earliest pending retry is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retries.next_due()
    }
}

/// The earlier of two optional instants.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let b = Backoff::WRITES;
        let got: Vec<Duration> = (1..=10).map(|n| b.delay(n, 0)).collect();
        let want: Vec<Duration> = [5, 10, 20, 40, 80, 160, 300, 300, 300, 300]
            .into_iter()
            .map(S)
            .collect();
        assert_eq!(got, want);
        // No overflow however long an object keeps failing.
        assert_eq!(b.delay(u32::MAX, 0), S(300));
        assert_eq!(b.delay(0, 0), S(5), "0 failures reads as the first");
    }

    #[test]
    fn jitter_stretches_by_less_than_a_quarter() {
        let b = Backoff::WRITES;
        for n in [1, 2, 3, 7, 40] {
            let d = b.delay(n, 0);
            let most = b.delay(n, u64::MAX);
            assert!(most > d && most < d + d / 4, "{n}: {most:?} vs {d:?}");
            assert_eq!(b.delay(n, 1 << 63), d + d / 8, "{n}: the middle");
        }
    }

    #[test]
    fn objects_that_fail_together_spread_out() {
        let mut r = Retries::new(Backoff::WRITES);
        let now = Instant::now();
        let delays: Vec<Duration> = (0..1000)
            .map(|i| r.failed(&format!("uid-{i}"), now))
            .collect();
        assert!(delays.iter().all(|d| *d >= S(5) && *d < S(5) + S(5) / 4));
        // Spread over the whole quarter: in 1,000 draws, no 50 ms bucket holds a tenth.
        let mut buckets = [0usize; 25];
        for d in &delays {
            let at = (d.as_millis() - 5000) / 50;
            buckets[at as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| n > 0 && n < 100),
            "lockstep retries: {buckets:?}"
        );
    }

    #[test]
    fn backoff_is_per_object_and_reset_on_success() {
        let mut r = Retries::new(Backoff::WRITES);
        let t0 = Instant::now();
        let first = r.failed("a", t0);
        let second = r.failed("a", t0 + first);
        let third = r.failed("a", t0 + first + second);
        assert!(first >= S(5) && second >= S(10) && third >= S(20));
        assert_eq!(r.failures("a"), 3);
        // Another object starts at the base, and is due first.
        let b = r.failed("b", t0);
        assert!(b >= S(5) && b < S(7));
        assert_eq!(r.next_due(), Some(t0 + b));
        let at = t0 + first + second;
        assert!(!r.is_due("a", at + third - S(1)));
        assert!(r.is_due("a", at + third));
        assert!(r.is_due("never-failed", t0));

        r.succeeded("a");
        assert_eq!(r.failures("a"), 0);
        assert!(r.is_due("a", t0));
        assert!(r.failed("a", t0) < S(7), "a success resets the backoff");

        r.retain(|k| k == "b");
        assert_eq!((r.len(), r.failures("a")), (1, 0));
    }

    #[test]
    fn a_writer_skips_what_it_wrote_for_this_uid_and_waits_out_its_backoff() {
        let mut w: Writes<&str> = Writes::new(Backoff::WRITES);
        let now = Instant::now();
        assert!(w.wants("uid-1", &"Ready=False", now));
        w.wrote("uid-1", "Ready=False");
        assert!(!w.wants("uid-1", &"Ready=False", now), "written already");
        // The same name created again has a new uid: its status is written.
        assert!(w.wants("uid-2", &"Ready=False", now));
        assert_eq!(w.previous("uid-2"), None);

        let delay = w.failed("uid-2", now);
        assert_eq!(w.next_retry(), Some(now + delay));
        let due = now + delay;
        assert!(!w.wants("uid-2", &"Ready=False", due - Duration::from_millis(1)));
        assert!(w.wants("uid-2", &"Ready=False", due));
        let longer = w.failed("uid-2", due);
        assert!(longer >= S(10), "{longer:?}");
        w.wrote("uid-2", "Ready=False");
        assert_eq!((w.failures("uid-2"), w.next_retry()), (0, None));

        // A deleted object is forgotten.
        w.keep_only(&["uid-2".to_string()].into());
        assert_eq!(w.previous("uid-1"), None);
        assert_eq!(w.previous("uid-2"), Some(&"Ready=False"));
        assert_eq!(earliest(None, Some(now)), Some(now));
        assert_eq!(earliest(Some(now + S(1)), Some(now)), Some(now));
    }
}
