//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several replicas only
//! one writes status. The webhook keeps serving on every replica.
//!
//! The usual client-go recipe: the holder renews every `renew_every`; a candidate takes the lease
//! once `renewTime + leaseDurationSeconds` has passed. Every write carries the resourceVersion
//! it read, so two candidates can never both win.

use std::time::Duration;

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
    pub lease_duration: Duration,
    pub renew_every: Duration,
}

/// What to do with the lease as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds it and renewed recently.
    Wait,
}

pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    match spec.holder_identity.as_deref() {
        None | Some("") => Decision::Acquire,
        Some(h) if h == me => Decision::Renew,
        Some(_) => {
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            match &spec.renew_time {
                Some(MicroTime(renewed)) if renewed.as_second() + duration > now.as_second() => {
                    Decision::Wait
                }
                _ => Decision::Acquire,
            }
        }
    }
}

fn spec_for(
    cfg: &LeaseConfig,
    previous: Option<&LeaseSpec>,
    now: Timestamp,
    acquiring: bool,
) -> LeaseSpec {
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_duration.as_secs() as i32),
        acquire_time: if acquiring {
            Some(MicroTime(now))
        } else {
            previous.and_then(|p| p.acquire_time.clone())
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if acquiring && previous.is_some() {
            transitions + 1
        } else {
            transitions
        }),
        ..LeaseSpec::default()
    }
}

/// One round: read, decide, write. Returns whether we hold the lease afterwards.
async fn round(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&cfg.name).await?;
    match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec_for(cfg, None, now, true)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let decision = decide(lease.spec.as_ref(), &cfg.identity, now);
            if decision == Decision::Wait {
                return Ok(false);
            }
            let spec = spec_for(cfg, lease.spec.as_ref(), now, decision == Decision::Acquire);
            lease.spec = Some(spec);
            // replace() sends the resourceVersion we read: a concurrent writer makes this a 409.
            match api.replace(&cfg.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Runs the election forever, publishing whether we lead. Leadership is given up (false) as
/// soon as a renewal cannot be confirmed before the lease would expire.
pub async fn run(client: Client, cfg: LeaseConfig, leading: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut last_confirmed: Option<std::time::Instant> = None;
    loop {
        match round(&api, &cfg).await {
            Ok(true) => {
                last_confirmed = Some(std::time::Instant::now());
                if !*leading.borrow() {
                    tracing::info!(lease = %cfg.name, identity = %cfg.identity, "became the leader");
                }
                leading.send_replace(true);
            }
            Ok(false) => {
                if *leading.borrow() {
                    tracing::warn!(lease = %cfg.name, "lost the lease to another replica");
                }
                last_confirmed = None;
                leading.send_replace(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, lease = %cfg.name, "lease round failed");
                // Stop writing before the lease could have expired and another replica taken it.
                let safe = cfg.lease_duration.saturating_sub(cfg.renew_every);
                if last_confirmed.is_none_or(|t| t.elapsed() >= safe) && *leading.borrow() {
                    tracing::warn!("cannot renew the lease in time; stepping down");
                    leading.send_replace(false);
                }
            }
        }
        let pause = if *leading.borrow() {
            cfg.renew_every
        } else {
            cfg.renew_every.min(Duration::from_secs(2))
        };
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: &str, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            lease_duration_seconds: Some(secs),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions() {
        let now: Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
        assert_eq!(decide(None, "a", now), Decision::Acquire);
        assert_eq!(
            decide(Some(&LeaseSpec::default()), "a", now),
            Decision::Acquire
        );
        assert_eq!(
            decide(Some(&spec("a", "2026-01-01T00:00:00Z", 15)), "a", now),
            Decision::Renew
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:10Z", 15)), "a", now),
            Decision::Wait
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:05Z", 15)), "a", now),
            Decision::Acquire,
            "expired exactly"
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-01-01T00:00:00Z", 15)), "a", now),
            Decision::Acquire
        );
    }

    #[test]
    fn transitions_count_takeovers_only() {
        let cfg = LeaseConfig {
            namespace: "ns".into(),
            name: "l".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        };
        let now: Timestamp = "2026-01-01T00:00:20Z".parse().unwrap();
        let mut prev = spec("b", "2026-01-01T00:00:00Z", 15);
        prev.lease_transitions = Some(2);
        assert_eq!(
            spec_for(&cfg, Some(&prev), now, true).lease_transitions,
            Some(3)
        );
        assert_eq!(
            spec_for(&cfg, Some(&prev), now, false).lease_transitions,
            Some(2)
        );
        assert_eq!(spec_for(&cfg, None, now, true).lease_transitions, Some(0));
    }
}
