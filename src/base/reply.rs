//! The plain HTTP answers the admission server and the health endpoint write.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

pub type Body = Full<Bytes>;

/// A response with `status`, a fixed content type and `body`.
pub fn reply(
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
