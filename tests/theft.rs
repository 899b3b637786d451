//! Refresh-token rotation with theft detection: a replaced refresh token presented again
//! after the grace window revokes the whole session.

mod support;

use http::StatusCode;
use serde_json::json;
use support::*;

async fn refresh(h: &Harness, refresh_token: &str) -> TestResponse {
    h.request("POST", "/api/auth/refresh")
        .json(json!({ "refresh_token": refresh_token }))
        .send()
        .await
}

#[tokio::test]
async fn reuse_within_the_grace_window_is_refused_but_the_session_lives() {
    let h = Harness::start().await;
    let first = h.login(ALICE, CHROME_LINUX).await;
    h.uploader.advance_clock(1);
    let rotated = refresh(&h, &first.refresh_token).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let access = rotated.json()["access_token"].as_str().unwrap().to_string();

    // Another tab, racing, 3 s later (the grace window is 10 s).
    h.clock.advance_seconds(3);
    let racing = refresh(&h, &first.refresh_token).await;
    assert_eq!(
        (racing.status, racing.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
    );
    assert_eq!(
        h.get("/api/account", &access).await.status,
        StatusCode::OK,
        "the session lives"
    );
    assert_eq!(
        h.upstream_hits("/auth/refresh"),
        1,
        "the refused refresh was not forwarded"
    );
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_session_for_both_holders() {
    let h = Harness::start().await;
    let stolen = h.login(ALICE, CHROME_LINUX).await;
    let other = h.login(ALICE, POSTMAN).await;
    // The legitimate client refreshes...
    h.uploader.advance_clock(1);
    let rotated = refresh(&h, &stolen.refresh_token).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let body = rotated.json();
    let (access, new_refresh) = (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    );
    // ...and a minute later the thief tries the copy it stole.
    h.clock.advance_seconds(60);
    let thief = refresh(&h, &stolen.refresh_token).await;
    assert_eq!(thief.status, StatusCode::UNAUTHORIZED);

    // The whole session is gone: the legitimate holder's tokens are refused too.
    let r = h.get("/api/account", &access).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
    );
    assert_eq!(
        refresh(&h, &new_refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Other sessions of the user are untouched.
    assert_eq!(h.sessions(&other.access_token).await.len(), 1);

    let metrics = h.admin_get("/metrics").await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "sessiongate_sessions_revoked_total{reason=\"reuse\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_refresh_in_the_same_second_as_the_login_is_not_mistaken_for_theft() {
    let h = Harness::start().await;
    // The uploader's tokens carry whole seconds: start early in one, so that the login and
    // the refresh fall in the same second (they take milliseconds).
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .subsec_millis();
    if into_second > 500 {
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(
            1_050 - into_second,
        )))
        .await;
    }
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    // No clock move: the uploader answers with byte-identical tokens.
    let same = refresh(&h, &tokens.refresh_token).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.json()["refresh_token"], json!(tokens.refresh_token));
    h.clock.advance_seconds(60);
    h.uploader.advance_clock(60);
    let again = refresh(&h, &tokens.refresh_token).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the current refresh token still works"
    );
}
