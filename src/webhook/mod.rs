//! The admission edge: AdmissionReview decisions, the HTTPS server, TLS with live reload,
//! self-managed certificates, the ValidatingWebhookConfiguration and its
//! rules kept equal to the policies' targets.

pub mod admission;
pub mod conns;
pub mod limits;
pub mod scope;
pub mod selfcerts;
pub mod server;
pub mod sources;
pub mod tls;
pub mod wire;
