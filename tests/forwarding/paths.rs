//! The path the uploader sees: the API prefix stripped (or kept when so configured), the query
//! kept byte for byte, the normalised spelling, and nothing outside the prefix forwarded.

use http::StatusCode;
use serde_json::json;

use crate::recorded::{only_request_since, received_since};
use crate::support::*;

#[tokio::test]
async fn the_prefix_is_stripped_and_the_query_kept_byte_for_byte() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let before = h.uploader.requests().len();
    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json(), json!({"user": {"_id": ALICE.0}}));
    let forwarded = only_request_since(&h, before);
    assert_eq!(forwarded.method, http::Method::GET);
    assert_eq!(forwarded.path_and_query, "/account");

    let before = h.uploader.requests().len();
    let response = h.get("/api/account?x=1&y=%20z", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(
        only_request_since(&h, before).path_and_query,
        "/account?x=1&y=%20z"
    );
}

#[tokio::test]
async fn a_path_outside_the_prefix_is_404_and_not_forwarded() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for path in ["/other", "/apix", "/apix/account", "/"] {
        for token in [None, Some(tokens.access_token.as_str())] {
            let mut request = h.request("GET", path);
            if let Some(token) = token {
                request = request.token(token);
            }
            let response = request.send().await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(response.code(), "NOT_FOUND", "{path}");
        }
    }
    assert_eq!(
        received_since(&h, before).len(),
        0,
        "nothing outside the prefix reaches the uploader"
    );
}

#[tokio::test]
async fn without_strip_prefix_the_path_arrives_with_the_prefix() {
    let h = Harness::start_with(|c| c.strip_prefix = false).await;
    // A public route: a login would reach the uploader as /api/auth/login, which it has not.
    let response = h.request("GET", "/api/upload/abc?dl=1").send().await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json()["path"], "/api/upload/abc?dl=1");
    assert_eq!(
        only_request_since(&h, 0).path_and_query,
        "/api/upload/abc?dl=1"
    );
}

#[tokio::test]
async fn the_forwarded_path_is_the_normalised_one() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let before = h.uploader.requests().len();
    let response = h
        .get("/api//account/./x/../settings", &tokens.access_token)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(
        only_request_since(&h, before).path_and_query,
        "/account/settings"
    );

    let before = h.uploader.requests().len();
    let response = h.get("/api/account%2Fsessions", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.code(), "BAD_PATH");
    assert_eq!(received_since(&h, before).len(), 0, "nothing forwarded");
}
