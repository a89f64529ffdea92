//! Events, published without a cache.
//!
//! kube's `Recorder` keeps every event it published for six minutes, to turn repeats into a
//! series, and scans that whole cache under a lock on every publish. A policy change that flips
//! 10,000 objects then holds 10,000 events (each with its ~600-byte note and two copies of the
//! object reference) and scans up to 20,000 entries per event. The controller never repeats
//! itself: the plan emits at most one event per object per transition, and a policy change
//! that flips many objects gets one summary event on the policy instead of anything more. So
//! nothing here is worth remembering; each event is created and forgotten.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Client};

/// Publishes events as one reporting controller and instance.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    reporter: Reporter,
}

impl Publisher {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Publisher { client, reporter }
    }

    /// Creates the event on `regarding` (in its namespace; `default` for cluster-scoped ones).
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let body = event_body(&self.reporter, ev, regarding, Timestamp::now());
        let ns = body.metadata.namespace.as_deref().unwrap_or("default");
        Api::<K8sEvent>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &body)
            .await?;
        Ok(())
    }
}

/// The events.k8s.io/v1 Event, named as kube's recorder names them (`<object>.<nanoseconds>`),
/// so `kubectl describe` and `kubectl events` show it as before.
fn event_body(
    reporter: &Reporter,
    ev: &Event,
    regarding: &ObjectReference,
    now: Timestamp,
) -> K8sEvent {
    let object = regarding.name.as_deref().unwrap_or(&reporter.controller);
    K8sEvent {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: ev.secondary.clone(),
        note: ev.note.clone(),
        metadata: ObjectMeta {
            namespace: Some(
                regarding
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(
            match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..K8sEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_placed_and_attributed_like_kubes() {
        let reporter = Reporter {
            controller: "supportgate".into(),
            instance: Some("pod-a".into()),
        };
        let ev = Event {
            type_: EventType::Warning,
            reason: "SupportLost".into(),
            note: Some("no longer supported".into()),
            action: "Evaluate".into(),
            secondary: None,
        };
        let regarding = ObjectReference {
            name: Some("west".into()),
            namespace: Some("kommander".into()),
            ..ObjectReference::default()
        };
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let body = event_body(&reporter, &ev, &regarding, at);
        assert_eq!(body.metadata.namespace.as_deref(), Some("kommander"));
        assert_eq!(
            body.metadata.name,
            Some(format!("west.{:x}", at.as_nanosecond()))
        );
        assert_eq!(body.type_.as_deref(), Some("Warning"));
        assert_eq!(body.reason.as_deref(), Some("SupportLost"));
        assert_eq!(body.reporting_instance.as_deref(), Some("pod-a"));
        assert_eq!(body.regarding, Some(regarding));
        assert!(body.series.is_none());

        let cluster_scoped = ObjectReference {
            name: Some("default".into()),
            ..ObjectReference::default()
        };
        let no_instance = Reporter {
            controller: "supportgate".into(),
            instance: None,
        };
        let body = event_body(&no_instance, &ev, &cluster_scoped, at);
        assert_eq!(body.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(body.reporting_instance.as_deref(), Some("supportgate"));
        assert_eq!(body.type_.as_deref(), Some("Warning"));
    }
}
