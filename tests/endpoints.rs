//! The sessions endpoints, answered by the gateway and never forwarded, without the uploader's
//! flaws.

mod support;

use http::StatusCode;
use serde_json::json;
use support::*;

/// Nothing ever reached the uploader's own session handlers.
fn assert_uploader_handlers_untouched(h: &Harness) {
    let leaked: Vec<_> = h
        .uploader
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.to_ascii_lowercase().contains("sessions"))
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert!(leaked.is_empty(), "reached the uploader: {leaked:?}");
}

#[tokio::test]
async fn the_list_has_the_documented_shape_oldest_first() {
    let h = Harness::start().await;
    let first = h.login(ALICE, CHROME_LINUX).await;
    let second = h.login(ALICE, POSTMAN).await;
    h.login(BOB, CHROME_LINUX).await;

    let response = h.get("/api/account/sessions", &second.access_token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = response.json();
    assert_eq!(
        body["total"],
        json!(2),
        "bob's session is not alice's: {body}"
    );
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(
        sessions[0]["accessTokenHash"],
        sha512_hex(&first.access_token)
    );
    assert_eq!(
        sessions[1]["accessTokenHash"],
        sha512_hex(&second.access_token)
    );
    assert!(sessions[0]["createdAt"].as_str() < sessions[1]["createdAt"].as_str());
    let keys: Vec<&str> = sessions[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "device",
            "location",
            "_id",
            "expireAt",
            "createdAt",
            "lastActiveAt",
            "accessTokenHash",
            "current"
        ]
    );
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn head_is_answered_like_get_without_a_body() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let response = h
        .request("HEAD", "/api/account/sessions")
        .token(&t.access_token)
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());
    let unauthenticated = h.request("HEAD", "/api/account/sessions").send().await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn revoking_one_session_ends_it_on_the_next_request() {
    let h = Harness::start().await;
    let laptop = h.login(ALICE, CHROME_LINUX).await;
    let phone = h.login(ALICE, POSTMAN).await;
    let sessions = h.sessions(&laptop.access_token).await;
    let phone_id = sessions[1]["_id"].as_str().unwrap();

    let response = h
        .request("DELETE", &format!("/api/account/sessions/{phone_id}"))
        .token(&laptop.access_token)
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({"code": "SESSION_REVOKED", "error": "Session has been revoked."})
    );

    let refused = h.get("/api/account", &phone.access_token).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
    );
    assert_eq!(
        h.get("/api/account", &laptop.access_token).await.status,
        StatusCode::OK
    );
    let left = h.sessions(&laptop.access_token).await;
    assert_eq!(left.len(), 1);

    // The same id again: gone.
    let again = h
        .request("DELETE", &format!("/api/account/sessions/{phone_id}"))
        .token(&laptop.access_token)
        .send()
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::NOT_FOUND, "SESSION_NOT_FOUND".into())
    );
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn revocation_is_refused_on_the_next_request_on_every_connection() {
    let h = Harness::start().await;
    let victim = h.login(ALICE, CHROME_LINUX).await;
    let owner = h.login(ALICE, POSTMAN).await;
    // Two keep-alive connections already carrying the victim's token.
    let mut one = h.connect().await;
    let mut two = h.connect().await;
    assert_eq!(
        one.get(&h, "/api/account", &victim.access_token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        two.get(&h, "/api/account", &victim.access_token)
            .await
            .status,
        StatusCode::OK
    );

    let id = h.sessions(&owner.access_token).await[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoke = h
        .request("DELETE", &format!("/api/account/sessions/{id}"))
        .token(&owner.access_token)
        .send()
        .await;
    assert_eq!(revoke.status, StatusCode::OK);

    let hits = h.upstream_hits("/account");
    for connection in [&mut one, &mut two] {
        let r = connection
            .get(&h, "/api/account", &victim.access_token)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
        );
    }
    assert_eq!(
        h.upstream_hits("/account"),
        hits,
        "nothing forwarded after the revocation"
    );
}

#[tokio::test]
async fn nobody_can_see_or_revoke_another_users_sessions() {
    let h = Harness::start().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let bob = h.login(BOB, POSTMAN).await;
    let bob_id = h.sessions(&bob.access_token).await[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();

    let attempt = h
        .request("DELETE", &format!("/api/account/sessions/{bob_id}"))
        .token(&alice.access_token)
        .send()
        .await;
    assert_eq!(attempt.status, StatusCode::NOT_FOUND);
    assert_eq!(
        attempt.json(),
        json!({"code": "SESSION_NOT_FOUND", "error": "Session not found."})
    );
    assert_eq!(
        h.get("/api/account", &bob.access_token).await.status,
        StatusCode::OK,
        "bob still in"
    );

    let listed = h.sessions(&alice.access_token).await;
    assert!(listed.iter().all(|s| s["_id"] != json!(bob_id)));
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_not_500() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    for id in [
        "5fe00728d0adc5576af8684f",
        "not-an-id",
        "5fe00728d0adc5576af8684",
        "5fe00728d0adc5576af8684fa",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "x%20y",
        "5fe00728d0adc5576af8684f;x",
    ] {
        let r = h
            .request("DELETE", &format!("/api/account/sessions/{id}"))
            .token(&t.access_token)
            .send()
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "SESSION_NOT_FOUND".into()),
            "{id}"
        );
    }
    // An upper-case spelling of a real id is the same id (ObjectIds are hex).
    let id = h.sessions(&t.access_token).await[0]["_id"]
        .as_str()
        .unwrap()
        .to_uppercase();
    let r = h
        .request("DELETE", &format!("/api/account/sessions/{id}"))
        .token(&t.access_token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn revoke_all_ends_every_session_of_the_caller_only() {
    let h = Harness::start().await;
    let a1 = h.login(ALICE, CHROME_LINUX).await;
    let a2 = h.login(ALICE, POSTMAN).await;
    let b = h.login(BOB, CHROME_LINUX).await;
    let response = h
        .request("DELETE", "/api/account/sessions")
        .token(&a1.access_token)
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({"code": "ALL_SESSIONS_REVOKE", "error": "All Sessions has been revoked."})
    );
    for t in [&a1, &a2] {
        assert_eq!(
            h.get("/api/account", &t.access_token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(h.sessions(&b.access_token).await.len(), 1);
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn every_express_spelling_is_answered_by_the_gateway() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    for path in [
        "/api/account/sessions/",
        "/api/Account/Sessions",
        "/API/ACCOUNT/SESSIONS/",
        "/api//account//sessions",
        "/api/account/./sessions",
        "/api/upload/x/../../account/sessions",
        "/api/%61ccount/%73essions",
        "/api/account/sessions?x=1",
    ] {
        let r = h.get(path, &t.access_token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.json()["total"], json!(1), "{path}");
    }
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    for (method, path, allow) in [
        ("POST", "/api/account/sessions", "GET, HEAD, DELETE"),
        ("PUT", "/api/account/sessions/", "GET, HEAD, DELETE"),
        ("PATCH", "/api/account/sessions", "GET, HEAD, DELETE"),
        (
            "GET",
            "/api/account/sessions/5fe00728d0adc5576af8684f",
            "DELETE",
        ),
        (
            "POST",
            "/api/account/sessions/5fe00728d0adc5576af8684f",
            "DELETE",
        ),
    ] {
        let r = h.request(method, path).token(&t.access_token).send().await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    }
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn the_endpoints_need_a_live_session() {
    let h = Harness::start().await;
    let unknown = h.uploader.issue_tokens(ALICE.0);
    for (method, path) in [
        ("GET", "/api/account/sessions"),
        ("DELETE", "/api/account/sessions"),
        ("DELETE", "/api/account/sessions/5fe00728d0adc5576af8684f"),
    ] {
        let none = h.request(method, path).send().await;
        assert_eq!(
            (none.status, none.code()),
            (StatusCode::UNAUTHORIZED, "TOKEN_MISSING".into())
        );
        let r = h
            .request(method, path)
            .token(&unknown.access_token)
            .send()
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
        );
    }
    assert_uploader_handlers_untouched(&h);
}

#[tokio::test]
async fn last_active_at_is_the_last_use_to_a_minute() {
    use sessiongate::api::iso_millis;
    use sessiongate::sessions::Clock;

    let h = Harness::start().await;
    let first = h.login(ALICE, CHROME_LINUX).await;
    let second = h.login(ALICE, POSTMAN).await;

    // Not used since its login: the login's time.
    let listing = h.sessions(&first.access_token).await;
    let unused = listed_session(&listing, &second.access_token);
    assert_eq!(unused["lastActiveAt"], unused["createdAt"]);

    // Used two minutes later through a forwarded route, then again 30 s after that: the
    // second use is within the minute of the first, which stands.
    h.clock.advance_seconds(120);
    let used_at = h.clock.now_ms();
    assert_eq!(
        h.get("/api/account", &second.access_token).await.status,
        StatusCode::OK
    );
    h.clock.advance_seconds(30);
    assert_eq!(
        h.get("/api/account", &second.access_token).await.status,
        StatusCode::OK
    );
    let listing = h.sessions(&first.access_token).await;
    assert_eq!(
        listed_session(&listing, &second.access_token)["lastActiveAt"],
        iso_millis(used_at)
    );
    // The caller's own listing is a use of its session.
    assert_eq!(
        listed_session(&listing, &first.access_token)["lastActiveAt"],
        iso_millis(h.clock.now_ms())
    );

    // A use more than a minute after the one noted is noted.
    h.clock.advance_seconds(61);
    let later = h.clock.now_ms();
    assert_eq!(
        h.get("/api/account", &second.access_token).await.status,
        StatusCode::OK
    );
    let listing = h.sessions(&first.access_token).await;
    assert_eq!(
        listed_session(&listing, &second.access_token)["lastActiveAt"],
        iso_millis(later)
    );
    assert_uploader_handlers_untouched(&h);
}
