//! Upstream responses come back as the uploader sent them: status, headers and body, its own
//! refusals included.

use http::StatusCode;

use crate::support::*;

#[tokio::test]
async fn upstream_responses_come_back_with_their_status_and_body() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let response = h.get("/api/big?bytes=1000000", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body.len(), 1_000_000);
    let pattern: Vec<u8> = (0..1_000_000).map(|i| (i % 256) as u8).collect();
    assert!(
        response.body[..] == pattern[..],
        "the body is the uploader's byte pattern"
    );

    // The uploader's own refusals come back as it sent them: a 400 for a JSON body it cannot
    // parse on a public route...
    let response = h
        .request("POST", "/api/auth/register")
        .body("{not json", "application/json")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(&response.body[..], b"Bad Request");

    // ...and a 401 on a session route, when the gateway accepts the session but the uploader
    // finds the access token expired by its own clock (access tokens live 5 minutes).
    h.uploader.advance_clock(600);
    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        &response.body[..],
        b"Unauthorized",
        "the uploader's answer, not the gateway's"
    );
}
