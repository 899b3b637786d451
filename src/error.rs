//! What a client can cause, and the one place where it becomes a status and a JSON body.
//!
//! Every error answer is `{"code": "...", "error": "..."}`, like the uploader's own. Internal
//! causes (store failures, upstream errors) are logged where they happen, once, and reach
//! the client only as their code.

use http::header::{ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::auth::TokenRejection;
use crate::body::{Body, full};
use crate::routes::PathRejection;
use crate::sessions::StoreError;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// 400: a path spelling the gateway refuses to guess about.
    BadPath(PathRejection),
    /// 401: the token was refused.
    Unauthorized(TokenRejection),
    /// 404: outside the API prefix.
    NotFound,
    /// 404: no such session of the caller's (unknown, another user's, or malformed id).
    SessionNotFound,
    /// 405 with this `Allow` value.
    MethodNotAllowed(&'static str),
    /// 413: a body the gateway must read is larger than its limit.
    BodyTooLarge,
    /// 431: the request head is larger than `limits.max_header_bytes`.
    HeadTooLarge,
    /// 400: a body the gateway must read could not be read or parsed.
    BadBody,
    /// 502: the upstream could not be reached or broke the exchange.
    UpstreamUnavailable,
    /// 504: the upstream did not answer in time.
    UpstreamTimeout,
    /// 503: the session store cannot be reached or did not answer in time (already logged).
    /// Session routes and the session endpoints fail closed with it; `Retry-After: 1`.
    StoreUnavailable,
    /// 500: something failed inside the gateway (already logged).
    Internal,
    /// 404 on the admin listener's `/admin/...` routes: no admin token is configured.
    AdminDisabled,
    /// 401 on the admin listener's `/admin/...` routes: no admin token, or a wrong one.
    AdminUnauthorized,
    /// 400: a session id on the admin routes that is not 24 hex digits.
    InvalidSessionId,
    /// 400: a user id on the admin routes that is empty, too long, or holds a control
    /// character or a `/`.
    InvalidUser,
}

impl GatewayError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadPath(PathRejection::TooLong) => StatusCode::URI_TOO_LONG,
            GatewayError::BadPath(_)
            | GatewayError::BadBody
            | GatewayError::InvalidSessionId
            | GatewayError::InvalidUser => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized(_) | GatewayError::AdminUnauthorized => {
                StatusCode::UNAUTHORIZED
            }
            GatewayError::NotFound
            | GatewayError::SessionNotFound
            | GatewayError::AdminDisabled => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code and the human message.
    pub fn code_and_message(&self) -> (&'static str, &'static str) {
        match self {
            GatewayError::BadPath(PathRejection::TooLong) => {
                ("URI_TOO_LONG", "The request path is too long.")
            }
            GatewayError::BadPath(_) => ("BAD_PATH", "The request path is malformed or ambiguous."),
            GatewayError::Unauthorized(TokenRejection::Missing) => {
                ("TOKEN_MISSING", "An access token is required.")
            }
            GatewayError::Unauthorized(TokenRejection::Invalid) => {
                ("TOKEN_INVALID", "The access token is invalid.")
            }
            GatewayError::Unauthorized(TokenRejection::Expired) => {
                ("TOKEN_EXPIRED", "The access token has expired.")
            }
            GatewayError::Unauthorized(TokenRejection::UnknownSession) => (
                "SESSION_INVALID",
                "The session is unknown, has been revoked or has expired.",
            ),
            GatewayError::NotFound => ("NOT_FOUND", "Not found."),
            GatewayError::SessionNotFound => ("SESSION_NOT_FOUND", "Session not found."),
            GatewayError::MethodNotAllowed(_) => {
                ("METHOD_NOT_ALLOWED", "Method not allowed on this path.")
            }
            GatewayError::BodyTooLarge => ("BODY_TOO_LARGE", "The request body is too large."),
            GatewayError::HeadTooLarge => (
                "HEADERS_TOO_LARGE",
                "The request line and headers are too large.",
            ),
            GatewayError::BadBody => ("BAD_BODY", "The request body could not be read."),
            GatewayError::UpstreamUnavailable => (
                "UPSTREAM_UNAVAILABLE",
                "The upstream server is unavailable.",
            ),
            GatewayError::UpstreamTimeout => (
                "UPSTREAM_TIMEOUT",
                "The upstream server did not answer in time.",
            ),
            GatewayError::StoreUnavailable => (
                "STORE_UNAVAILABLE",
                "The session store is unavailable; try again shortly.",
            ),
            GatewayError::Internal => ("SERVER_ERROR", "Internal Server Error."),
            GatewayError::AdminDisabled => (
                "ADMIN_API_DISABLED",
                "The admin session routes are off: set admin.token_file or \
                 SESSIONGATE_ADMIN_TOKEN.",
            ),
            GatewayError::AdminUnauthorized => (
                "UNAUTHORIZED",
                "The admin token is missing or wrong (Authorization: Bearer <admin token>).",
            ),
            GatewayError::InvalidSessionId => (
                "INVALID_SESSION_ID",
                "The session id must be 24 hexadecimal digits.",
            ),
            GatewayError::InvalidUser => (
                "INVALID_USER",
                "The user id must be 1 to 128 bytes of UTF-8, without control characters \
                 or '/'.",
            ),
        }
    }

    /// The response: status, JSON body, and `WWW-Authenticate` or `Allow` where HTTP asks.
    pub fn into_response(self) -> Response<Body> {
        let (code, message) = self.code_and_message();
        let mut response = json_message(self.status(), code, message);
        let headers = response.headers_mut();
        match self {
            GatewayError::Unauthorized(TokenRejection::Missing)
            | GatewayError::AdminUnauthorized => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            GatewayError::Unauthorized(rejection) => {
                let value = match rejection {
                    TokenRejection::Expired => {
                        r#"Bearer error="invalid_token", error_description="expired""#
                    }
                    _ => r#"Bearer error="invalid_token""#,
                };
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(value));
            }
            GatewayError::MethodNotAllowed(allow) => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            GatewayError::StoreUnavailable => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            GatewayError::HeadTooLarge => {
                // As hyper does past its read buffer: a client sending such heads is broken
                // or hostile, and its connection is not worth keeping (HTTP/1.1 only).
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl From<TokenRejection> for GatewayError {
    fn from(rejection: TokenRejection) -> Self {
        GatewayError::Unauthorized(rejection)
    }
}

impl From<PathRejection> for GatewayError {
    fn from(rejection: PathRejection) -> Self {
        GatewayError::BadPath(rejection)
    }
}

/// Logs a store failure once and turns it into its answer: 503 when the store cannot be
/// reached in time (the request may be retried), else 500.
pub fn store_failed(error: StoreError) -> GatewayError {
    tracing::error!(%error, "session store failed");
    if error.is_unavailable() {
        GatewayError::StoreUnavailable
    } else {
        GatewayError::Internal
    }
}

/// A `{"code","error"}` JSON response, the uploader's shape for messages.
pub fn json_message(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &serde_json::json!({ "code": code, "error": message }),
    )
}

/// A JSON response with this status.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
