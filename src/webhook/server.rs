//! The HTTPS admission endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use crate::base::metrics::ErrorLabels;
use crate::base::reply::{Body, reply};
use crate::base::state::Shared;
use crate::webhook::admission::{ReviewError, review, review_unsynced};
use crate::webhook::conns::{Admission, CloseKind, Conn, Reason, Registry, Tracked};
use crate::webhook::limits::{Builders, ServerLimits, fd_limit};

/// One request: routed, its body read within the limits, the review answered.
async fn admission(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    body_timeout: Duration,
) -> Response<Body> {
    if let Some(refused) = misrouted(&req) {
        return refused;
    }
    let body = match read_body(req, &shared, body_timeout).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let answered = if shared.judging_synced() {
        let policies = shared.policies.load();
        review(&body, &policies, &shared.context(), Some(&shared.metrics))
    } else {
        count_error(&shared, "unsynced");
        review_unsynced(&body)
    };
    match answered {
        Ok((answer, _)) => reply(StatusCode::OK, "application/json", answer),
        Err(e) => {
            count_error(
                &shared,
                match e {
                    ReviewError::Malformed(_) => "malformed",
                    ReviewError::WrongVersion { .. } => "wrong_version",
                    ReviewError::NoRequest => "no_request",
                },
            );
            tracing::warn!(error = %e, "refused a request that is not an AdmissionReview");
            reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n"))
        }
    }
}

/// The answer to anything but a POST to `/validate`.
fn misrouted(req: &Request<Incoming>) -> Option<Response<Body>> {
    if req.uri().path() != "/validate" {
        return Some(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: POST AdmissionReviews to /validate\n",
        ));
    }
    (req.method() != Method::POST).then(|| {
        reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only POST is served\n",
        )
    })
}

/// Counts a request refused before evaluation.
fn count_error(shared: &Shared, kind: &'static str) {
    shared
        .metrics
        .admission_errors
        .get_or_create(&ErrorLabels { kind })
        .inc();
}

/// The request body, at most `max_body_bytes` of it within `body_timeout`; or the answer that
/// refuses it.
async fn read_body(
    req: Request<Incoming>,
    shared: &Shared,
    body_timeout: Duration,
) -> Result<Bytes, Response<Body>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        count_error(shared, "too_large");
        reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/plain",
            format!("request body larger than {} bytes\n", shared.max_body_bytes),
        )
    };
    if declared.is_some_and(|n| n > shared.max_body_bytes) {
        return Err(too_large());
    }
    // The limit is enforced while reading, whatever Content-Length claimed.
    let read = Limited::new(req.into_body(), shared.max_body_bytes).collect();
    match tokio::time::timeout(body_timeout, read).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => {
            count_error(shared, "read");
            let mut r = reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("reading the request body: {e}\n"),
            );
            r.extensions_mut().insert(BodyCutOff);
            Err(r)
        }
        Err(_) => {
            count_error(shared, "body_timeout");
            Err(reply(
                StatusCode::REQUEST_TIMEOUT,
                "text/plain",
                format!("the request body did not arrive within {body_timeout:?}\n"),
            ))
        }
    }
}

/// Serves AdmissionReviews over TLS until `shutdown` flips, then lets in-flight requests finish
/// (up to `grace`), with the default [`ServerLimits`].
pub async fn serve_webhook(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let limits = ServerLimits::default();
    serve_webhook_with(listener, acceptor, shared, shutdown, grace, limits).await
}

/// What every connection task of one server shares.
struct Server {
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    builders: Builders,
}

/// Like [`serve_webhook`], with `limits` on connections (see [`crate::webhook::limits`]).
pub async fn serve_webhook_with(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
    limits: ServerLimits,
) {
    let limits = limits.fit_to_fd_limit(fd_limit());
    tracing::info!(max_connections = limits.max_connections, header_read_timeout = ?limits.header_read_timeout,
        body_read_timeout = ?limits.body_read_timeout, idle_timeout = ?limits.idle_timeout, "webhook connection limits");
    let server = Arc::new(Server {
        acceptor,
        registry: Registry::new(limits.clone(), shared.metrics.clone()),
        shared,
        builders: limits.builders(),
    });
    let reaper = tokio::spawn(server.registry.clone().reap());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, most likely: back off rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                match server.registry.admit(peer.ip().to_canonical()) {
                    Admission::Admitted(conn) => {
                        let span = tracing::debug_span!("conn", id = conn.id, %peer);
                        tokio::spawn(serve_conn(server.clone(), tcp, conn).instrument(span));
                    }
                    Admission::Refused => {
                        tracing::debug!(%peer, "connection cap reached; refused a connection");
                        drop(tcp);
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tracing::info!("webhook: no longer accepting; finishing in-flight reviews");
    if !server.registry.shutdown(grace).await {
        tracing::warn!("webhook: in-flight reviews did not finish within {grace:?}");
    }
    reaper.abort();
}

/// One connection, from TLS handshake to close; removed from the registry however it ends.
async fn serve_conn(server: Arc<Server>, tcp: TcpStream, conn: Arc<Conn>) {
    struct Unregister<'a>(&'a Registry, &'a Conn);
    impl Drop for Unregister<'_> {
        fn drop(&mut self) {
            self.0.remove(self.1);
        }
    }
    let _unregister = Unregister(&server.registry, &conn);
    let _ = tcp.set_nodelay(true);
    // The handshake timeout counts from the accept, the wait for the address's turn included.
    let handshake = tokio::time::timeout(server.registry.limits.handshake_timeout, async {
        let _turn = conn.source().handshake_turn().await;
        server
            .acceptor
            .accept(Tracked::new(tcp, conn.clone()))
            .await
    });
    let tls = tokio::select! {
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                conn.close(CloseKind::Hard, Reason::HandshakeTimeout);
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        _ = conn.closed() => return,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    conn.handshake_done(h2);
    let builder = match tls.get_ref().1.alpn_protocol() {
        Some(b"h2") => &server.builders.h2,
        Some(b"http/1.1") => &server.builders.h1,
        _ => &server.builders.auto,
    };
    let svc = {
        let (shared, conn) = (server.shared.clone(), conn.clone());
        let body_timeout = server.registry.limits.body_read_timeout;
        service_fn(move |req| answer(req, shared.clone(), conn.clone(), body_timeout))
    };
    let http = builder.serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(http);
    let mut graceful = false;
    loop {
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            kind = conn.closed(), if !graceful => match kind {
                CloseKind::Hard => return,
                CloseKind::Graceful => {
                    graceful = true;
                    http.as_mut().graceful_shutdown();
                }
            },
            // After a graceful close, a hard one may still follow (the reaper escalates).
            _ = conn.closed_hard(), if graceful => return,
        }
    }
}

/// One request on a connection: the review, and the connection's bookkeeping around it.
async fn answer(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    body_timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let guard = conn.begin_request();
    let mut resp = admission(req, shared.clone(), body_timeout).await;
    match resp.status() {
        StatusCode::REQUEST_TIMEOUT => {
            // A body that stalls is an attack or a broken client: no more requests from it.
            conn.close(CloseKind::Graceful, Reason::BodyTimeout);
            guard.complete();
        }
        StatusCode::BAD_REQUEST if resp.extensions().get::<BodyCutOff>().is_some() => {
            // The client reset the stream or cut the body off: dropping the guard counts it.
            drop(guard);
        }
        _ => guard.complete(),
    }
    // While draining, clients reconnect (to another replica) after this answer; after a body
    // timeout the connection is closed anyway (HTTP/2 drops the header and sends GOAWAY).
    if shared.draining.load(Ordering::Acquire) || resp.status() == StatusCode::REQUEST_TIMEOUT {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    Ok(resp)
}

/// Marks an answer to a request whose body the client did not finish sending.
#[derive(Clone, Copy)]
struct BodyCutOff;

/// Connections the kernel queues before they are accepted (it caps this at `somaxconn`). Well
/// above tokio's 1,024: while the accept loop is busy, a flood must not fill the queue, or the
/// kernel drops the SYNs of other clients too and they wait a second for their retry.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener, with the address in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))
}
