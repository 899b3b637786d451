//! What survives a restart: sessions, rotations and revocations are on disk before the
//! gateway answers.

mod support;

use http::StatusCode;
use serde_json::json;
use support::*;

#[tokio::test]
async fn sessions_and_revocations_survive_a_restart() {
    let mut h = Harness::start().await;
    let kept = h.login(ALICE, CHROME_LINUX).await;
    let revoked = h.login(ALICE, POSTMAN).await;
    let rotated = h.login(ALICE, "ShareX/15.0.0").await;
    let bob = h.login(BOB, CHROME_LINUX).await;

    let ids: Vec<String> = h
        .sessions(&kept.access_token)
        .await
        .iter()
        .map(|s| s["_id"].as_str().unwrap().to_string())
        .collect();
    let r = h
        .request("DELETE", &format!("/api/account/sessions/{}", ids[1]))
        .token(&kept.access_token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    h.uploader.advance_clock(1);
    let r = h
        .request("POST", "/api/auth/refresh")
        .json(json!({ "refresh_token": rotated.refresh_token }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let after_refresh = r.json()["access_token"].as_str().unwrap().to_string();
    let before = h.sessions(&kept.access_token).await;

    h.restart().await;

    // Listed before any other use: the last uses too were kept.
    let after = h.sessions(&kept.access_token).await;
    let cases = [
        (&kept.access_token, StatusCode::OK),
        (&revoked.access_token, StatusCode::UNAUTHORIZED),
        (&rotated.access_token, StatusCode::UNAUTHORIZED),
        (&after_refresh, StatusCode::OK),
        (&bob.access_token, StatusCode::OK),
    ];
    for (token, status) in cases {
        assert_eq!(h.get("/api/account", token).await.status, status);
    }
    assert_eq!(after, before, "the same sessions, ids, dates and devices");
    assert_eq!(after.len(), 2);
    assert_eq!(
        after[1]["_id"].as_str(),
        Some(ids[2].as_str()),
        "rotated in place"
    );

    // The revoked session's refresh token stays dead too.
    let r = h
        .request("POST", "/api/auth/refresh")
        .json(json!({ "refresh_token": revoked.refresh_token }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoke_all_and_logout_survive_a_restart() {
    let mut h = Harness::start().await;
    let a1 = h.login(ALICE, CHROME_LINUX).await;
    let a2 = h.login(ALICE, POSTMAN).await;
    let b1 = h.login(BOB, CHROME_LINUX).await;
    let b2 = h.login(BOB, POSTMAN).await;
    let r = h
        .request("DELETE", "/api/account/sessions")
        .token(&a1.access_token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h
        .request("POST", "/api/auth/logout")
        .token(&b1.access_token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);

    h.restart().await;

    for token in [&a1, &a2, &b1] {
        assert_eq!(
            h.get("/api/account", &token.access_token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        h.get("/api/account", &b2.access_token).await.status,
        StatusCode::OK
    );
    assert_eq!(h.sessions(&b2.access_token).await.len(), 1);
}
