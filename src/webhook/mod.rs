//! The admission edge: AdmissionReview decisions, the HTTPS server, TLS with live reload,
//! self-managed certificates and the ValidatingWebhookConfiguration.

pub mod admission;
pub mod config;
pub mod conns;
pub mod limits;
pub mod selfcerts;
pub mod server;
pub mod tls;
