//! The HTTPS admission endpoint and the plain health/metrics endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
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

use crate::admission::{ReviewError, review};
use crate::engine::Context;
use crate::metrics::{ErrorLabels, Metrics};
use crate::policyset::PolicySet;
use crate::version::Version;

/// What the request path reads: one snapshot of the policies, no API calls.
pub struct Shared {
    pub policies: ArcSwap<PolicySet>,
    pub hosting_kubernetes: Option<Version>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub policies_synced: AtomicBool,
    pub tls_loaded: AtomicBool,
    /// Bumped whenever `policies` is replaced, so the controller re-evaluates everything.
    pub policy_changes: watch::Sender<u64>,
    /// Set on SIGTERM: /readyz fails so the endpoint is removed while reviews are still served.
    pub draining: AtomicBool,
}

impl Shared {
    pub fn new(
        hosting_kubernetes: Option<Version>,
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
    ) -> Arc<Self> {
        Arc::new(Shared {
            policies: ArcSwap::from_pointee(PolicySet::embedded_default()),
            hosting_kubernetes,
            metrics,
            max_body_bytes,
            policies_synced: AtomicBool::new(false),
            tls_loaded: AtomicBool::new(false),
            policy_changes: watch::Sender::new(0),
            draining: AtomicBool::new(false),
        })
    }

    pub fn set_policies(&self, set: PolicySet) {
        self.policies.store(Arc::new(set));
        self.policy_changes.send_modify(|n| *n += 1);
    }

    pub fn is_ready(&self) -> bool {
        self.policies_synced.load(Ordering::Acquire)
            && self.tls_loaded.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
    }

    fn context(&self) -> Context {
        let today = crate::clock::today_utc();
        Context::new(today).with_hosting_kubernetes(self.hosting_kubernetes.clone())
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
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

async fn health(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" | "/livez" => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" if shared.is_ready() => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let why = match (
                shared.tls_loaded.load(Ordering::Acquire),
                shared.policies_synced.load(Ordering::Acquire),
            ) {
                (false, _) => "serving certificate not loaded\n",
                (_, false) => "SupportPolicies not synced yet\n",
                _ => "not ready\n",
            };
            reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", why)
        }
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.encode(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
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

/// Binds a listener, with the address in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))
}
