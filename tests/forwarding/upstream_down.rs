//! An upstream that cannot be reached (502) or answers too late (504): the gateway says so and
//! keeps serving.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_the_gateway_keeps_serving() {
    let mut h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    // Same session store, new gateway pointed at a port nothing listens on.
    h.config.upstream = "http://127.0.0.1:1".into();
    h.restart().await;

    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(
        response.status,
        StatusCode::BAD_GATEWAY,
        "{:?}",
        response.body
    );
    assert_eq!(response.code(), "UPSTREAM_UNAVAILABLE");

    let login = h
        .request("POST", "/api/auth/login")
        .json(json!({"email": ALICE.1, "password": ALICE.2}))
        .send()
        .await;
    assert_eq!(login.status, StatusCode::BAD_GATEWAY, "{:?}", login.body);
    assert_eq!(login.code(), "UPSTREAM_UNAVAILABLE");

    let public = h.request("GET", "/api/upload/abc").send().await;
    assert_eq!(public.status, StatusCode::BAD_GATEWAY, "{:?}", public.body);
    assert_eq!(public.code(), "UPSTREAM_UNAVAILABLE");

    // The same gateway serves the next request normally (the sessions endpoint, which it
    // answers itself), and the session survived the failed forwards.
    let sessions = h.sessions(&tokens.access_token).await;
    assert_eq!(sessions.len(), 1);
}

#[tokio::test]
async fn a_gateway_started_on_a_dead_upstream_answers_502() {
    let h = Harness::start_with(|c| c.upstream = "http://127.0.0.1:1".into()).await;
    let login = h
        .request("POST", "/api/auth/login")
        .json(json!({"email": ALICE.1, "password": ALICE.2}))
        .send()
        .await;
    assert_eq!(login.status, StatusCode::BAD_GATEWAY, "{:?}", login.body);
    assert_eq!(login.code(), "UPSTREAM_UNAVAILABLE");
    assert_eq!(h.uploader.requests().len(), 0);
}

#[tokio::test]
async fn a_slow_upstream_is_504_after_the_timeout_and_the_gateway_keeps_serving() {
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let started = Instant::now();
    let response = h.get("/api/slow?ms=3000", &tokens.access_token).await;
    let elapsed = started.elapsed();
    assert_eq!(
        response.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{:?}",
        response.body
    );
    assert_eq!(response.code(), "UPSTREAM_TIMEOUT");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2900),
        "answered after {elapsed:?}, the timeout is 1 s and the upstream takes 3 s"
    );
    assert_eq!(h.upstream_hits("/slow?ms=3000"), 1);

    let response = h.get("/api/slow?ms=100", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json(), json!({"ok": true}));
    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
}
