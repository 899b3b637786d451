//! The uploader's handlers: record the request, then answer it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use crate::body::{self, Fields, PatternBody, ResponseBody, bad_request, json, unauthorized};
use crate::config::User;
use crate::record::RecordedRequest;
use crate::routes::{self, Route};
use crate::state::State;

/// Records `request` and answers it. Upload bodies are streamed, never kept; every other
/// body is read whole and recorded before the answer is computed.
pub(crate) async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let (parts, incoming) = request.into_parts();
    let route = routes::route(&parts.method, parts.uri.path());
    let mut recorded = RecordedRequest {
        peer,
        method: parts.method.clone(),
        path_and_query: target(&parts.uri),
        headers: parts.headers.clone(),
        body: Bytes::new(),
    };
    if route == Route::Upload {
        state.record(recorded);
        return Ok(upload(incoming).await);
    }
    let Ok(collected) = incoming.collect().await else {
        state.record(recorded);
        return Ok(bad_request());
    };
    recorded.body = collected.to_bytes();
    let body = recorded.body.clone();
    state.record(recorded);
    Ok(answer(&state, route, &parts, &body).await)
}

/// The answer of `route` to a request with a fully read `body`.
async fn answer(state: &State, route: Route, parts: &Parts, body: &[u8]) -> Response<ResponseBody> {
    let Ok(fields) = Fields::parse(&parts.headers, body) else {
        return bad_request();
    };
    match route {
        Route::Login => login(state, &fields),
        Route::TwoFactor => two_factor(state, &fields),
        Route::Refresh => refresh(state, &fields),
        Route::Logout => logout(state, parts),
        Route::ChangePassword => change_password(state, parts, &fields),
        Route::Account => account(state, parts),
        Route::ListSessions => uploader_sessions(json!({"sessions": [], "total": 0})),
        Route::RevokeSessions => uploader_sessions(json!({"code": "SESSION_REVOKED"})),
        Route::Slow => slow(&parts.uri).await,
        Route::Big => big(&parts.uri),
        Route::Echo => echo(parts),
        // Never reached: `handle` streams uploads before any body is read.
        Route::Upload => bad_request(),
    }
}

/// `POST /auth/login`: tokens, or a two-factor challenge.
fn login(state: &State, fields: &Fields) -> Response<ResponseBody> {
    let user = fields
        .get("email")
        .zip(fields.get("password"))
        .and_then(|(email, password)| state.login(email, password));
    let Some(user) = user else {
        return unauthorized();
    };
    let now = state.now();
    if user.two_factor {
        let token = state.tokens.challenge(&user.id, now);
        let challenge = json!({"code": "TWO_FACTOR_REQUIRED", "token": token, "twoFactor": true});
        return json(StatusCode::OK, challenge);
    }
    let pair = state.tokens.pair(&user.id, now);
    json(
        StatusCode::OK,
        json!({
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "twoFactor": false,
        }),
    )
}

/// `POST /auth/two-factor`: tokens for a valid challenge `token` and the right `code`.
fn two_factor(state: &State, fields: &Fields) -> Response<ResponseBody> {
    let user_id = fields
        .get("token")
        .and_then(|token| state.tokens.verify_challenge(token, state.now()));
    match user_id {
        Some(user_id) if fields.get("code") == Some(User::TWO_FACTOR_CODE) => {
            tokens(state, &user_id)
        }
        _ => unauthorized(),
    }
}

/// `POST /auth/refresh`: fresh tokens for the subject of a `refresh_token` that verifies.
fn refresh(state: &State, fields: &Fields) -> Response<ResponseBody> {
    let user_id = fields
        .get("refresh_token")
        .and_then(|token| state.tokens.verify_session(token, state.now()));
    match user_id {
        Some(user_id) => tokens(state, &user_id),
        None => unauthorized(),
    }
}

/// `POST /auth/logout`.
fn logout(state: &State, parts: &Parts) -> Response<ResponseBody> {
    match bearer_user(state, parts) {
        Some(_) => json(
            StatusCode::OK,
            json!({"code": "LOGGED_OUT", "error": "You are now logged out."}),
        ),
        None => unauthorized(),
    }
}

/// `PUT /account/change-password`: keeps `newPassword` if `oldPassword` is right.
fn change_password(state: &State, parts: &Parts, fields: &Fields) -> Response<ResponseBody> {
    let changed = bearer_user(state, parts)
        .zip(fields.get("oldPassword").zip(fields.get("newPassword")))
        .is_some_and(|(id, (old, new))| state.change_password(&id, old, new));
    if !changed {
        return unauthorized();
    }
    json(
        StatusCode::OK,
        json!({"code": "PASSWORD_CHANGED", "error": "Password changed."}),
    )
}

/// `GET /account`.
fn account(state: &State, parts: &Parts) -> Response<ResponseBody> {
    match bearer_user(state, parts) {
        Some(user_id) => json(StatusCode::OK, json!({"user": {"_id": user_id}})),
        None => unauthorized(),
    }
}

/// The uploader's own sessions handlers, marked so that a test can see them reached.
fn uploader_sessions(mut value: serde_json::Value) -> Response<ResponseBody> {
    value["servedBy"] = json!("uploader");
    let mut response = json(StatusCode::OK, value);
    let marker = HeaderValue::from_static("uploader");
    response.headers_mut().insert("x-served-by", marker);
    response
}

/// `POST /upload`, `POST /3rd-party/upload`: the byte count and SHA-256 of the streamed body.
async fn upload(incoming: Incoming) -> Response<ResponseBody> {
    match body::digest(incoming).await {
        Some((bytes, sha256)) => json(StatusCode::OK, json!({"bytes": bytes, "sha256": sha256})),
        None => bad_request(),
    }
}

/// `GET /slow?ms=N`: waits N milliseconds before answering.
async fn slow(uri: &Uri) -> Response<ResponseBody> {
    let ms = query_number(uri, "ms").unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    json(StatusCode::OK, json!({"ok": true}))
}

/// `GET /big?bytes=N`: N streamed bytes of a repeating pattern.
fn big(uri: &Uri) -> Response<ResponseBody> {
    let len = query_number(uri, "bytes").unwrap_or(0);
    let body = PatternBody::new(len).boxed();
    body::respond(StatusCode::OK, "application/octet-stream", body)
}

/// Any other request: what was asked.
fn echo(parts: &Parts) -> Response<ResponseBody> {
    json(
        StatusCode::OK,
        json!({"ok": true, "method": parts.method.as_str(), "path": target(&parts.uri)}),
    )
}

/// A response carrying fresh tokens for `user_id`.
fn tokens(state: &State, user_id: &str) -> Response<ResponseBody> {
    let pair = state.tokens.pair(user_id, state.now());
    json(
        StatusCode::OK,
        json!({"access_token": pair.access_token, "refresh_token": pair.refresh_token}),
    )
}

/// The user id of the request's `Authorization: Bearer <token>`, if the token verifies.
fn bearer_user(state: &State, parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    state.tokens.verify_session(token.trim(), state.now())
}

/// The path and query as the request line gave them.
fn target(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.to_string(), |pq| pq.as_str().to_owned())
}

/// The query parameter `name` as a number.
fn query_number(uri: &Uri, name: &str) -> Option<u64> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.parse().ok())
}
