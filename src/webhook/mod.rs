//! The admission edge: AdmissionReview decisions, the HTTPS server, TLS with live reload,
//! self-managed certificates, and the ValidatingWebhookConfiguration's rules kept equal to the
//! policies' targets (the configuration itself is rendered in
//! [`crate::api::webhook_configuration`], which `supportgate webhook-config` prints too).

pub mod admission;
pub mod conns;
pub mod limits;
pub mod scope;
pub mod selfcerts;
pub mod server;
pub mod sources;
pub mod tls;
pub mod wire;
