//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several replicas only
//! one writes status. The webhook keeps serving on every replica.
//!
//! The semantics are client-go's, because replicas' clocks disagree:
//! - A follower never compares the holder's `renewTime` with its own clock. It remembers when,
//!   by its own monotonic clock, it last saw the Lease record change, and takes the Lease only
//!   once `leaseDurationSeconds` have passed since then without a change.
//! - The leader counts its term from the moment it *sent* its last successful renewal, and stops
//!   leading `renew_deadline` (shorter than the lease duration) after that unless it renews
//!   again. A follower saw that renewal no earlier than it was sent, so it cannot take over
//!   before the leader has stopped.
//! - Every write carries the resourceVersion it read, so two candidates can never both win.
//!
//! Only clock *rates* matter, never offsets. `renewTime` and `acquireTime` are written for
//! people to read. kube-lease-manager (the kube 5 crate for this) judges expiry from the
//! holder's `renewTime` against the local wall clock, which is what this module must not do.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a follower waits, after it last saw the Lease change, before taking it.
    pub lease_duration: Duration,
    /// How long the leader keeps leading after it last sent a successful renewal. Shorter than
    /// `lease_duration`: the difference is the margin for stopping work and for clock rates.
    pub renew_deadline: Duration,
    /// How often the leader renews and a follower looks.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        LeaseConfig {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The parts of a Lease whose change proves its holder alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    resource_version: Option<String>,
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    transitions: Option<i32>,
}

impl Record {
    fn of(lease: &Lease) -> Record {
        let spec = lease.spec.as_ref();
        Record {
            resource_version: lease.metadata.resource_version.clone(),
            holder: spec.and_then(|s| s.holder_identity.clone()),
            renew_time: spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
            transitions: spec.and_then(|s| s.lease_transitions),
        }
    }
}

/// What the elector last saw of the Lease, and when by its own monotonic clock.
#[derive(Debug)]
struct Observed {
    record: Record,
    at: Instant,
    duration: Duration,
}

/// The write to attempt after reading the Lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// There is no Lease: create it, held by us.
    Create(Lease),
    /// Renew our Lease, or take over one that was released or expired.
    Replace(Lease),
    /// Someone else holds it and was seen alive within the lease duration.
    Wait,
}

/// The decisions of one replica, free of I/O; the time is passed in so tests can drive it.
#[derive(Debug)]
pub struct Elector {
    cfg: LeaseConfig,
    observed: Option<Observed>,
    /// When our last successful write was sent; we lead until `renew_deadline` after it.
    renewed_at: Option<Instant>,
}

impl Elector {
    pub fn new(cfg: LeaseConfig) -> Self {
        Elector {
            cfg,
            observed: None,
            renewed_at: None,
        }
    }

    /// Decides from the Lease as read at `now` (`wall` is only written into it).
    pub fn plan(&mut self, current: Option<&Lease>, now: Instant, wall: Timestamp) -> Plan {
        let Some(lease) = current else {
            return Plan::Create(self.lease_for(None, wall));
        };
        self.observe(lease, now);
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty());
        match holder {
            Some(h) if h == self.cfg.identity => Plan::Replace(self.lease_for(Some(lease), wall)),
            Some(_) if !self.expired(now) => {
                // Another replica holds it: whatever we believed, we do not lead.
                self.renewed_at = None;
                Plan::Wait
            }
            _ => Plan::Replace(self.lease_for(Some(lease), wall)),
        }
    }

    /// The write planned in the round that began at `started` succeeded and stored `lease`.
    pub fn won(&mut self, lease: &Lease, started: Instant) {
        self.renewed_at = Some(started);
        self.observe(lease, started);
    }

    pub fn is_leader(&self, now: Instant) -> bool {
        self.renewed_at
            .is_some_and(|t| now < t + self.cfg.renew_deadline)
    }

    /// How long the round beginning at `now` may take: a leader must know whether it renewed
    /// before its deadline passes.
    pub fn round_limit(&self, now: Instant) -> Duration {
        match self.renewed_at {
            Some(t) if self.is_leader(now) => (t + self.cfg.renew_deadline) - now,
            _ => self.cfg.renew_deadline,
        }
    }

    /// The pause before the next round: the retry period, but a follower looks again right when
    /// the holder's lease would expire, so that a takeover takes at most the lease duration plus
    /// one retry period after the holder's last renewal.
    pub fn pause(&self, now: Instant) -> Duration {
        let until_expiry = self
            .observed
            .as_ref()
            .map(|o| (o.at + o.duration).saturating_duration_since(now))
            .unwrap_or_default();
        if self.is_leader(now) || until_expiry.is_zero() {
            self.cfg.retry_period
        } else {
            self.cfg.retry_period.min(until_expiry)
        }
    }

    fn observe(&mut self, lease: &Lease, now: Instant) {
        let record = Record::of(lease);
        if self.observed.as_ref().is_some_and(|o| o.record == record) {
            return;
        }
        let seconds = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0);
        let duration = seconds.map_or(self.cfg.lease_duration, Duration::from_secs);
        self.observed = Some(Observed {
            record,
            at: now,
            duration,
        });
    }

    fn expired(&self, now: Instant) -> bool {
        self.observed
            .as_ref()
            .is_none_or(|o| now >= o.at + o.duration)
    }

    /// The Lease to write: `previous` renewed by us, or taken over (a new transition).
    fn lease_for(&self, previous: Option<&Lease>, wall: Timestamp) -> Lease {
        let old = previous.and_then(|l| l.spec.as_ref());
        let ours = old.and_then(|s| s.holder_identity.as_deref()) == Some(&self.cfg.identity);
        let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
        let spec = LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.cfg.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: match old {
                Some(s) if ours => s.acquire_time.clone(),
                _ => Some(MicroTime(wall)),
            },
            renew_time: Some(MicroTime(wall)),
            lease_transitions: Some(match old {
                Some(_) if !ours => transitions + 1,
                _ => transitions,
            }),
            ..LeaseSpec::default()
        };
        let metadata = match previous {
            Some(l) => l.metadata.clone(),
            None => ObjectMeta {
                name: Some(self.cfg.name.clone()),
                ..ObjectMeta::default()
            },
        };
        Lease {
            metadata,
            spec: Some(spec),
        }
    }
}

/// One round: read, decide, write.
async fn round(
    api: &Api<Lease>,
    elector: &mut Elector,
    started: Instant,
) -> Result<(), kube::Error> {
    let name = elector.cfg.name.clone();
    let current = api.get_opt(&name).await?;
    let plan = elector.plan(current.as_ref(), Instant::now(), Timestamp::now());
    let written = match plan {
        Plan::Wait => return Ok(()),
        Plan::Create(lease) => api.create(&PostParams::default(), &lease).await,
        // replace() sends the resourceVersion we read: a concurrent writer makes this a 409.
        Plan::Replace(lease) => api.replace(&name, &PostParams::default(), &lease).await,
    };
    match written {
        Ok(lease) => {
            elector.won(&lease, started);
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::debug!(lease = %name, "another replica wrote the lease first");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Runs the election forever, publishing whether we lead. Leadership is given up (false) as
/// soon as a renewal cannot be confirmed before the renew deadline.
pub async fn run(client: Client, cfg: LeaseConfig, leading: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let (name, identity) = (cfg.name.clone(), cfg.identity.clone());
    let mut elector = Elector::new(cfg);
    loop {
        let started = Instant::now();
        let limit = elector.round_limit(started);
        match tokio::time::timeout(limit, round(&api, &mut elector, started)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, lease = %name, "lease round failed"),
            Err(_) => tracing::warn!(lease = %name, timeout = ?limit, "lease round timed out"),
        }
        let now_leading = elector.is_leader(Instant::now());
        match (*leading.borrow(), now_leading) {
            (false, true) => tracing::info!(lease = %name, %identity, "became the leader"),
            (true, false) => tracing::warn!(lease = %name, %identity, "stopped leading"),
            _ => {}
        }
        leading.send_if_modified(|l| std::mem::replace(l, now_leading) != now_leading);
        tokio::time::sleep(elector.pause(Instant::now())).await;
    }
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
