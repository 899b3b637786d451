//! The admin listener's session routes, for operators, behind the admin token:
//!
//! - `GET /admin/users/:user/sessions`: the user's live sessions, oldest first;
//! - `DELETE /admin/users/:user/sessions`: revokes every session of the user;
//! - `DELETE /admin/sessions/:session_id`: revokes one session, whoever holds it;
//! - `GET /admin/sessions/count`: how many sessions the store holds.
//!
//! Read top to bottom: the routes are off without a token (404 `ADMIN_API_DISABLED`); a
//! missing or wrong token is 401 (`UNAUTHORIZED`, `WWW-Authenticate: Bearer`); then the path,
//! the method (405 with `Allow`) and the ids (400) are checked; only then is the store asked.
//! A refused call changes nothing. Every answer carries the request's `X-Request-Id` (the
//! operator's, cleaned, or a fresh one), the id the log lines of its revocations carry.

use http::header::HeaderName;
use http::{HeaderValue, Method, Request, Response, StatusCode};

use super::sessions::{RequestId, SessionAdmin, parse_user};
use super::token::AdminToken;
use crate::auth::bearer_token;
use crate::body::Body;
use crate::error::{GatewayError, json_response, store_failed};
use crate::sessions::SessionId;

/// The header an operator's request id comes in, and is echoed in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether `path` is one of the session routes' (`/admin/...`).
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// Answers a request for an `/admin/...` path.
pub async fn answer<B>(
    sessions: &SessionAdmin,
    token: Option<&AdminToken>,
    request: &Request<B>,
) -> Response<Body> {
    let request_id =
        RequestId::from_header(request.headers().get(REQUEST_ID).map(|v| v.as_bytes()));
    let mut response = match route(sessions, token, request, &request_id).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

async fn route<B>(
    sessions: &SessionAdmin,
    token: Option<&AdminToken>,
    request: &Request<B>,
    request_id: &RequestId,
) -> Result<Response<Body>, GatewayError> {
    let token = token.ok_or(GatewayError::AdminDisabled)?;
    let presented = bearer_token(request.headers()).unwrap_or_default();
    if !token.matches(presented) {
        tracing::warn!(
            request_id = %request_id,
            method = %request.method(),
            token = if presented.is_empty() { "missing" } else { "wrong" },
            "admin request refused"
        );
        return Err(GatewayError::AdminUnauthorized);
    }
    let segments: Vec<&str> = request.uri().path()["/admin".len()..]
        .split('/')
        .skip(1)
        .collect();
    let method = request.method();
    let ok = |body: serde_json::Value| json_response(StatusCode::OK, &body);
    match segments.as_slice() {
        ["sessions", "count"] => {
            allow(method, &[Method::GET], "GET")?;
            Ok(ok(sessions.count().await.map_err(store_failed)?))
        }
        ["sessions", id] => {
            allow(method, &[Method::DELETE], "DELETE")?;
            let id = SessionId::parse(id).ok_or(GatewayError::InvalidSessionId)?;
            match sessions
                .revoke_session(id, request_id)
                .await
                .map_err(store_failed)?
            {
                Some(body) => Ok(ok(body)),
                None => Err(GatewayError::SessionNotFound),
            }
        }
        ["users", user, "sessions"] => {
            allow(method, &[Method::GET, Method::DELETE], "GET, DELETE")?;
            let user = percent_decoded(user).ok_or(GatewayError::InvalidUser)?;
            let user = parse_user(&user).ok_or(GatewayError::InvalidUser)?;
            let body = if method == Method::GET {
                sessions.list(user).await
            } else {
                sessions.revoke_user(user, request_id).await
            };
            Ok(ok(body.map_err(store_failed)?))
        }
        _ => Err(GatewayError::NotFound),
    }
}

/// 405 with `Allow` unless `method` is one of `allowed`.
fn allow(method: &Method, allowed: &[Method], header: &'static str) -> Result<(), GatewayError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(GatewayError::MethodNotAllowed(header))
    }
}

/// A path segment with its `%XX` escapes decoded, if they are well-formed and the result is
/// UTF-8.
fn percent_decoded(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let mut byte = [0u8; 1];
            hex::decode_to_slice(hex, &mut byte).ok()?;
            out.push(byte[0]);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `segment` percent-encoded for a path: every byte but the unreserved ones (RFC 3986) as `%XX`.
pub fn percent_encoded(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_through_percent_encoding() {
        for user in [
            "5f4bff121037e424a17a3ebc",
            "alice@example.com",
            "a b+c%d",
            "ünï",
        ] {
            let encoded = percent_encoded(user);
            assert!(!encoded.contains([' ', '/', '+', '@']), "{encoded}");
            assert_eq!(
                percent_decoded(&encoded).as_deref(),
                Some(user),
                "{encoded}"
            );
        }
        assert_eq!(percent_decoded("a%2Fb").as_deref(), Some("a/b"));
        for bad in ["%", "%4", "%zz", "%ff"] {
            assert_eq!(percent_decoded(bad), None, "{bad}");
        }
    }
}
