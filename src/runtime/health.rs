//! The plain-HTTP health and metrics endpoint: `/healthz`, `/livez`, `/readyz`, `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::base::reply::{Body, reply};
use crate::base::state::Shared;

async fn health(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" | "/livez" => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" if shared.is_ready() => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let why = match (
                shared.failed.get(),
                shared.tls_loaded.load(Ordering::Acquire),
                shared.policies_synced.load(Ordering::Acquire),
            ) {
                (Some(failed), _, _) => format!("{failed}\n"),
                (None, false, _) => "serving certificate not loaded\n".into(),
                (None, _, false) => "SupportPolicies not synced yet\n".into(),
                _ if shared.draining.load(Ordering::Acquire) => "shutting down\n".into(),
                _ => "not ready\n".into(),
            };
            reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", why)
        }
        "/metrics" => {
            let ready = shared.is_ready();
            shared.metrics.observed.ready.set(i64::from(ready));
            reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                shared.metrics.encode(),
            )
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// Serves `/healthz`, `/readyz` and `/metrics` over plain HTTP/1.1 until `shutdown` flips.
pub async fn serve_health(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(health(req, shared).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}
