//! Token checks on session routes: each refusal's code and header, nothing forwarded, and
//! expiry by the gateway's clock.

mod support;

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use support::*;

fn sign(claims: serde_json::Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn each_refusal_has_its_code_and_a_bearer_challenge_and_is_not_forwarded() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    let parts: Vec<&str> = live.access_token.split('.').collect();
    let tampered = format!("{}.{}.{}x", parts[0], parts[1], parts[2]);
    // Tokens the uploader signed a second later: valid, but never seen by the gateway.
    h.uploader.advance_clock(1);
    let unseen = h.uploader.issue_tokens(ALICE.0).access_token;
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "TOKEN_MISSING"),
        (Some("Basic YWxpY2U6cHc=".into()), "TOKEN_MISSING"),
        (Some("Bearer ".into()), "TOKEN_MISSING"),
        (Some("Bearer not-a-jwt".into()), "TOKEN_INVALID"),
        (Some(format!("Bearer {tampered}")), "TOKEN_INVALID"),
        (
            Some(format!("Bearer {}.{}.", parts[0], parts[1])),
            "TOKEN_INVALID",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(json!({"sub": ALICE.0, "exp": now() + 300}), "wrong-secret")
            )),
            "TOKEN_INVALID",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(json!({"sub": ALICE.0, "exp": now() - 3600}), SECRET)
            )),
            "TOKEN_EXPIRED",
        ),
        (
            Some(format!(
                "Bearer {}",
                sign(
                    json!({"sub": ALICE.0, "exp": now() + 300, "nbf": now() + 3600}),
                    SECRET
                )
            )),
            "TOKEN_INVALID",
        ),
        (
            Some(format!("Bearer {}", sign(json!({"sub": ALICE.0}), SECRET))),
            "TOKEN_INVALID",
        ),
        // Signed correctly, but no session holds it (a refresh token is not an access token).
        (
            Some(format!("Bearer {}", live.refresh_token)),
            "SESSION_INVALID",
        ),
        (Some(format!("Bearer {unseen}")), "SESSION_INVALID"),
    ];
    for (authorization, code) in cases {
        let mut request = h.request("GET", "/api/account");
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let r = request.send().await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(r.code(), code, "{authorization:?}");
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()));
        let challenge = r.header("www-authenticate").expect("a challenge");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    assert_eq!(
        h.upstream_hits("/account"),
        0,
        "no refused request reached the uploader"
    );
    // And the live token still works.
    assert_eq!(
        h.get("/api/account", &live.access_token).await.status,
        StatusCode::OK
    );
    assert_eq!(h.upstream_hits("/account"), 1);
}

#[tokio::test]
async fn the_scheme_is_case_insensitive_and_two_headers_are_refused() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = h
            .request("GET", "/api/account")
            .header("authorization", &format!("{scheme} {}", t.access_token))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}");
    }
    let r = h
        .request("GET", "/api/account")
        .token(&t.access_token)
        .token(&t.access_token)
        .send()
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_INVALID".into())
    );
    // A token in the query string is ignored.
    let r = h
        .request(
            "GET",
            &format!("/api/account?access_token={}", t.access_token),
        )
        .send()
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_MISSING".into())
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refused_by_the_gateways_clock() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    assert_eq!(
        h.get("/api/account", &t.access_token).await.status,
        StatusCode::OK
    );
    // Access tokens live 5 minutes; leeway is 5 seconds.
    h.clock.advance_seconds(300 + 10);
    let r = h.get("/api/account", &t.access_token).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED".into())
    );
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn an_expired_session_is_refused_at_once_and_swept_later() {
    // A leeway longer than the session lets the access token still verify after the session
    // is over, so the refusal below is the session's own expiry.
    let h = Harness::start_with(|c| {
        c.auth.leeway_seconds = 20 * 86400;
        c.sessions.sweep_interval_seconds = 1;
    })
    .await;
    let old = h.login(ALICE, CHROME_LINUX).await;
    h.clock.advance_seconds(15 * 86400);
    let r = h.get("/api/account", &old.access_token).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
    );
    let r = h
        .request("POST", "/api/auth/refresh")
        .json(json!({ "refresh_token": old.refresh_token }))
        .send()
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
    );

    h.uploader.advance_clock(15 * 86400);
    let fresh = h.login(ALICE, POSTMAN).await;
    let sessions = h.sessions(&fresh.access_token).await;
    assert_eq!(sessions.len(), 1, "the list shows only the live session");
    assert_eq!(sessions[0]["device"]["browser"], "PostmanRuntime");

    // The sweeper (every second) removes the expired record from the store.
    let mut waited = 0;
    while h.stored_sessions() > 1 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(h.stored_sessions(), 1, "swept within 5 s");
}

#[tokio::test]
async fn public_and_api_key_routes_pass_without_a_session() {
    let h = Harness::start().await;
    for (method, path, upstream) in [
        ("POST", "/api/auth/register", "/auth/register"),
        ("POST", "/api/user/reset-password", "/user/reset-password"),
        ("GET", "/api/upload/abc", "/upload/abc"),
        ("GET", "/api/upload/abc/raw", "/upload/abc/raw"),
    ] {
        let r = h
            .request(method, path)
            .header("authorization", "Bearer garbage")
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}");
        assert_eq!(h.upstream_hits(upstream), 1, "{method} {path}");
    }
    let key = h.uploader.api_key(ALICE.0, "Share");
    let r = h
        .request("POST", "/api/3rd-party/upload")
        .token(&key)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.upstream_hits("/3rd-party/upload"), 1);
    // The API key is not a session.
    let r = h.get("/api/account", &key).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "SESSION_INVALID".into())
    );
    // Nor did it become one.
    let t = h.login(ALICE, CHROME_LINUX).await;
    assert_eq!(h.sessions(&t.access_token).await.len(), 1);
}

#[tokio::test]
async fn a_required_issuer_refuses_tokens_without_it() {
    let h = Harness::start_with(|c| c.auth.issuer = Some("https://share.example.com".into())).await;
    // The stand-in issues no iss (WEB_URI unset): the gateway records nothing it cannot verify.
    let r = h
        .request("POST", "/api/auth/login")
        .json(json!({ "email": ALICE.1, "password": ALICE.2 }))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "the login answer passes through");
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    let r = h.get("/api/account", &token).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNAUTHORIZED, "TOKEN_INVALID".into())
    );
}
