//! The HTTPS admission endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::runtime::metrics::ErrorLabels;
use crate::runtime::state::Shared;
use crate::webhook::admission::{ReviewError, review};

pub(crate) type Body = Full<Bytes>;

pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

async fn admission(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    if req.uri().path() != "/validate" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: POST AdmissionReviews to /validate\n",
        );
    }
    if req.method() != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only POST is served\n",
        );
    }
    let error = |kind: &'static str| {
        shared
            .metrics
            .admission_errors
            .get_or_create(&ErrorLabels { kind })
            .inc()
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            format!("request body larger than {} bytes\n", shared.max_body_bytes),
        )
    };
    if declared.is_some_and(|n| n > shared.max_body_bytes) {
        error("too_large");
        return too_large();
    }
    // The limit is enforced while reading, whatever Content-Length claimed.
    let body = match Limited::new(req.into_body(), shared.max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            error("too_large");
            return too_large();
        }
        Err(e) => {
            error("read");
            return reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("reading the request body: {e}\n"),
            );
        }
    };
    let policies = shared.policies.load();
    match review(&body, &policies, &shared.context(), Some(&shared.metrics)) {
        Ok((answer, _)) => reply(StatusCode::OK, "application/json", answer),
        Err(e) => {
            error(match e {
                ReviewError::Malformed(_) => "malformed",
                ReviewError::WrongVersion { .. } => "wrong_version",
                ReviewError::NoRequest => "no_request",
            });
            tracing::warn!(error = %e, "refused a request that is not an AdmissionReview");
            reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n"))
        }
    }
}

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves AdmissionReviews over TLS until `shutdown` flips, then lets in-flight requests finish
/// (up to `grace`).
pub async fn serve_webhook(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move {
                            let mut resp = admission(req, shared.clone()).await;
                            // While draining, clients reconnect (to another replica) after this answer.
                            if shared.draining.load(Ordering::Acquire) {
                                resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let conn = builder.serve_connection(TokioIo::new(tls), svc).into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tracing::info!("webhook: no longer accepting; finishing in-flight reviews");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("webhook: in-flight reviews did not finish within {grace:?}");
    }
}

/// Binds a listener, with the address in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))
}
