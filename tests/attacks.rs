//! The attack suite: hostile tokens, path spellings, headers, HTTP framing and slow clients
//! against the real gateway in front of the stand-in uploader.
//!
//! Every case checks three things: the answer is a clear refusal (a 4xx with
//! `{"code","error"}`, or hyper's own 400 / a closed connection where HTTP framing is at
//! stake), nothing reached the uploader that should not have (`h.uploader.requests()`), and
//! the gateway still serves a good request afterwards.
//!
//! - `tokens`: forged, altered, malformed and misplaced tokens;
//! - `paths`: spellings of the sessions endpoints and of session routes;
//! - `headers`: client-sent identity and forwarding headers, protocol upgrades;
//! - `framing`: conflicting lengths, bad chunks, folded headers, smuggling;
//! - `slow_clients`: dribbling connections against prompt service;
//! - `raw`: the raw-socket client the framing cases need.

mod support;

#[path = "attacks/framing.rs"]
mod framing;
#[path = "attacks/headers.rs"]
mod headers;
#[path = "attacks/paths.rs"]
mod paths;
#[path = "attacks/raw.rs"]
mod raw;
#[path = "attacks/slow_clients.rs"]
mod slow_clients;
#[path = "attacks/tokens.rs"]
mod tokens;

use http::StatusCode;
use serde_json::json;
use support::{ALICE, Harness, TestResponse};

/// Asserts a gateway refusal: this status, a JSON body of exactly `{"code","error"}` with
/// this code and a message.
pub fn assert_refusal(response: &TestResponse, status: StatusCode, code: &str, what: &str) {
    let text = String::from_utf8_lossy(&response.body);
    assert_eq!(response.status, status, "{what}: {text}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content-type {content_type:?}"
    );
    let body = response.json();
    assert_eq!(body["code"], json!(code), "{what}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: a message: {body}"
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "{what}: only code and error: {body}"
    );
}

/// Asserts that the uploader's own sessions handlers did not produce this response.
pub fn assert_not_from_uploader_sessions(response: &TestResponse, what: &str) {
    assert_eq!(response.header("x-served-by"), None, "{what}");
    let text = String::from_utf8_lossy(&response.body);
    assert!(!text.contains("servedBy"), "{what}: {text}");
}

/// Asserts that the gateway still serves alice's good request, end to end.
pub async fn assert_still_serving(h: &Harness, access_token: &str) {
    let response = h.get("/api/account", access_token).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "a good request after the attack: {:?}",
        response.body
    );
    assert_eq!(response.json(), json!({"user": {"_id": ALICE.0}}));
}

/// The paths (with query) of the requests the uploader received after the first `since`.
pub fn upstream_paths_since(h: &Harness, since: usize) -> Vec<String> {
    h.uploader
        .requests()
        .into_iter()
        .skip(since)
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect()
}
