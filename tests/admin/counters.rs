//! The counters move by exact amounts: logins and allowed requests, refusals by decision,
//! ended sessions by reason, upstream errors by kind.

use http::StatusCode;
use serde_json::json;

use crate::scrape::{
    ACTIVE, CREATED, DECISIONS, REQUESTS, REVOKED, Scrape, UPSTREAM_ERRORS, scrape,
};
use crate::support::*;

#[tokio::test]
async fn a_login_and_three_authenticated_requests_move_the_counters_exactly() {
    let h = Harness::start().await;
    let before = scrape(&h).await;
    assert_eq!(before.value(ACTIVE, &[]), 0.0);

    let tokens = h.login(ALICE, CHROME_LINUX).await;
    for _ in 0..3 {
        let r = h.get("/api/account", &tokens.access_token).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    let after = scrape(&h).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(
        delta(CREATED, &[("origin", "login")]),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(after.value(ACTIVE, &[]), 1.0, "{}", after.text);
    assert_eq!(
        delta(DECISIONS, &[("decision", "allowed")]),
        3.0,
        "{}",
        after.text
    );
    let session_get = [
        ("route_class", "session"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(delta(REQUESTS, &session_get), 3.0, "{}", after.text);
    let login_post = [
        ("route_class", "login"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(delta(REQUESTS, &login_post), 1.0, "{}", after.text);
    // Nothing was refused.
    for decision in ["missing", "invalid", "expired", "revoked"] {
        assert_eq!(
            delta(DECISIONS, &[("decision", decision)]),
            0.0,
            "{decision}"
        );
    }
    // The request histogram counted the same four requests.
    let durations = "sessiongate_http_request_duration_seconds_count";
    assert_eq!(after.value(durations, &[("route_class", "session")]), 3.0);
    assert_eq!(after.value(durations, &[("route_class", "login")]), 1.0);
}

#[tokio::test]
async fn refusals_are_counted_by_decision() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = scrape(&h).await;

    let missing = h.request("GET", "/api/account").send().await;
    assert_eq!(missing.code(), "TOKEN_MISSING");
    let after_missing = scrape(&h).await;
    let delta = |s: &Scrape, decision: &str| {
        s.value(DECISIONS, &[("decision", decision)])
            - before.value(DECISIONS, &[("decision", decision)])
    };
    assert_eq!(
        delta(&after_missing, "missing"),
        1.0,
        "{}",
        after_missing.text
    );
    assert_eq!(delta(&after_missing, "expired"), 0.0);
    let unauthorized = [
        ("route_class", "session"),
        ("method", "GET"),
        ("status", "401"),
    ];
    assert_eq!(
        after_missing.value(REQUESTS, &unauthorized) - before.value(REQUESTS, &unauthorized),
        1.0
    );

    // The access token lives 5 minutes; the gateway's clock moves past it.
    h.clock.advance_seconds(300 + 10);
    let expired = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(expired.code(), "TOKEN_EXPIRED");
    let after_expired = scrape(&h).await;
    assert_eq!(
        delta(&after_expired, "expired"),
        1.0,
        "{}",
        after_expired.text
    );
    assert_eq!(delta(&after_expired, "missing"), 1.0);
    assert_eq!(delta(&after_expired, "allowed"), 0.0);
    // An expired access token does not end the session (the refresh token still can).
    assert_eq!(after_expired.value(ACTIVE, &[]), 1.0);
}

#[tokio::test]
async fn each_way_a_session_ends_is_counted_by_reason() {
    let h = Harness::start().await;
    let revoked = |s: &Scrape, reason: &str| s.value(REVOKED, &[("reason", reason)]);

    // The user revokes one session by its id.
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let id = h.sessions(&tokens.access_token).await[0]["_id"]
        .as_str()
        .expect("an _id")
        .to_string();
    assert_eq!(scrape(&h).await.value(ACTIVE, &[]), 1.0);
    let r = h
        .request("DELETE", &format!("/api/account/sessions/{id}"))
        .token(&tokens.access_token)
        .send()
        .await;
    assert_eq!(r.code(), "SESSION_REVOKED");
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "user"), 1.0, "{}", s.text);
    assert_eq!(s.value(ACTIVE, &[]), 0.0, "{}", s.text);

    // Revoke-all ends both of the user's sessions.
    let first = h.login(ALICE, CHROME_LINUX).await;
    h.login(ALICE, POSTMAN).await;
    assert_eq!(scrape(&h).await.value(ACTIVE, &[]), 2.0);
    let r = h
        .request("DELETE", "/api/account/sessions")
        .token(&first.access_token)
        .send()
        .await;
    assert_eq!(r.code(), "ALL_SESSIONS_REVOKE");
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "all"), 2.0, "{}", s.text);
    assert_eq!(revoked(&s, "user"), 1.0);
    assert_eq!(s.value(ACTIVE, &[]), 0.0, "{}", s.text);

    // Logout ends the caller's session.
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let r = h
        .request("POST", "/api/auth/logout")
        .token(&tokens.access_token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "logout"), 1.0, "{}", s.text);
    assert_eq!(s.value(ACTIVE, &[]), 0.0, "{}", s.text);

    // A password change ends every session of the user, and only theirs.
    let first = h.login(ALICE, CHROME_LINUX).await;
    h.login(ALICE, POSTMAN).await;
    h.login(BOB, CHROME_LINUX).await;
    assert_eq!(scrape(&h).await.value(ACTIVE, &[]), 3.0);
    let r = h
        .request("PUT", "/api/account/change-password")
        .token(&first.access_token)
        .json(json!({"oldPassword": ALICE.2, "newPassword": "another-password"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "password_change"), 2.0, "{}", s.text);
    assert_eq!(s.value(ACTIVE, &[]), 1.0, "bob's session stays: {}", s.text);
    // 1 + 2 + 1 + 3 logins.
    assert_eq!(s.value(CREATED, &[("origin", "login")]), 7.0, "{}", s.text);
    for reason in ["expired", "reuse"] {
        assert_eq!(revoked(&s, reason), 0.0, "{reason}");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_counted_as_a_connect_error() {
    let h = Harness::start_with(|c| c.upstream = "http://127.0.0.1:1".into()).await;
    let before = scrape(&h).await;
    let r = h.request("GET", "/api/upload/abc").send().await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    let after = scrape(&h).await;
    let connect = [("kind", "connect")];
    assert_eq!(
        after.value(UPSTREAM_ERRORS, &connect) - before.value(UPSTREAM_ERRORS, &connect),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(after.value(UPSTREAM_ERRORS, &[("kind", "timeout")]), 0.0);
    let public_502 = [
        ("route_class", "public"),
        ("method", "GET"),
        ("status", "502"),
    ];
    assert_eq!(after.value(REQUESTS, &public_502), 1.0, "{}", after.text);
}

#[tokio::test]
async fn a_slow_upstream_is_counted_as_a_timeout() {
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = scrape(&h).await;
    let r = h.get("/api/slow?ms=3000", &tokens.access_token).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", r.body);
    let after = scrape(&h).await;
    let timeout = [("kind", "timeout")];
    assert_eq!(
        after.value(UPSTREAM_ERRORS, &timeout) - before.value(UPSTREAM_ERRORS, &timeout),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(after.value(UPSTREAM_ERRORS, &[("kind", "connect")]), 0.0);
}
