//! The operators' session routes refusing: without the right admin token (401), off without
//! one (404 `ADMIN_API_DISABLED`), bad ids, users, paths and methods (400, 404, 405); nothing
//! is changed by a refused call.

use http::StatusCode;

use crate::scrape::{REVOKED, scrape};
use crate::sessions::{ADMIN_TOKEN, admin, ids, start_with_admin_token, status_of};
use crate::support::*;

#[tokio::test]
async fn a_missing_or_wrong_admin_token_is_401_and_changes_nothing() {
    let (h, _dir) = start_with_admin_token().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let id = ids(&h
        .get("/api/account/sessions", &alice.access_token)
        .await
        .json())[0]
        .clone();
    let before = scrape(&h).await;
    let user_bearer = format!("Bearer {}", alice.access_token);
    let longer = format!("Bearer {ADMIN_TOKEN}x");
    let shorter = format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]);
    let basic = format!("Basic {ADMIN_TOKEN}");
    let refusals: &[&[(&str, &str)]] = &[
        &[],
        &[(
            "authorization",
            "Bearer wrong-token-wrong-token-wrong-token",
        )],
        &[("authorization", &longer)],
        &[("authorization", &shorter)],
        &[("authorization", &basic)],
        &[("authorization", "Bearer")],
        &[("authorization", &user_bearer)],
    ];
    let routes = [
        ("DELETE", format!("/admin/sessions/{id}")),
        ("DELETE", format!("/admin/users/{}/sessions", ALICE.0)),
        ("GET", format!("/admin/users/{}/sessions", ALICE.0)),
        ("GET", "/admin/sessions/count".to_string()),
        ("GET", "/admin/nope".to_string()),
        ("DELETE", "/admin/sessions/not-an-id".to_string()),
    ];
    for headers in refusals {
        for (method, path) in &routes {
            let r = admin_call(h.admin_url(path), method, headers).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {headers:?}"
            );
            assert_eq!(r.code(), "UNAUTHORIZED", "{method} {path} {headers:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            let body = String::from_utf8_lossy(&r.body);
            assert!(!body.contains(ALICE.0) && !body.contains(&id), "{body}");
        }
    }
    // Two Authorization headers, one of them right: refused too.
    let right = format!("Bearer {ADMIN_TOKEN}");
    let path = h.admin_url("/admin/sessions/count");
    let r = admin_call(
        path,
        "GET",
        &[("authorization", &right), ("authorization", "Bearer x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    assert_eq!(status_of(&h, &alice.access_token).await, StatusCode::OK);
    assert_eq!(h.stored_sessions(), 1);
    let after = scrape(&h).await;
    assert_eq!(
        after.value(REVOKED, &[("reason", "admin")]),
        before.value(REVOKED, &[("reason", "admin")])
    );
}

#[tokio::test]
async fn without_an_admin_token_the_session_routes_are_off() {
    let h = Harness::start().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    for (method, path) in [
        ("GET", format!("/admin/users/{}/sessions", ALICE.0)),
        ("DELETE", format!("/admin/users/{}/sessions", ALICE.0)),
        (
            "DELETE",
            "/admin/sessions/0123456789abcdef01234567".to_string(),
        ),
        ("GET", "/admin/sessions/count".to_string()),
        ("GET", "/admin".to_string()),
    ] {
        for headers in [&[][..], &[("authorization", bearer.as_str())][..]] {
            let r = admin_call(h.admin_url(&path), method, headers).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(r.code(), "ADMIN_API_DISABLED", "{method} {path}");
            let message = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(
                message.contains("admin.token_file") && message.contains("SESSIONGATE_ADMIN_TOKEN"),
                "{message}"
            );
        }
    }
    assert_eq!(status_of(&h, &alice.access_token).await, StatusCode::OK);
    assert_eq!(h.stored_sessions(), 1);
    assert_eq!(h.admin_get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_ids_users_paths_and_methods_are_refused_and_change_nothing() {
    let (h, _dir) = start_with_admin_token().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let id = ids(&h
        .get("/api/account/sessions", &alice.access_token)
        .await
        .json())[0]
        .clone();
    let long_user = "u".repeat(129);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "DELETE",
            "/admin/sessions/xyz".into(),
            StatusCode::BAD_REQUEST,
            "INVALID_SESSION_ID",
        ),
        (
            "DELETE",
            format!("/admin/sessions/{}", &id[..23]),
            StatusCode::BAD_REQUEST,
            "INVALID_SESSION_ID",
        ),
        (
            "DELETE",
            format!("/admin/sessions/{id}0"),
            StatusCode::BAD_REQUEST,
            "INVALID_SESSION_ID",
        ),
        (
            "DELETE",
            format!("/admin/sessions/{}g", &id[..23]),
            StatusCode::BAD_REQUEST,
            "INVALID_SESSION_ID",
        ),
        (
            "DELETE",
            "/admin/users//sessions".into(),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "GET",
            "/admin/users//sessions".into(),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "DELETE",
            format!("/admin/users/{long_user}/sessions"),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "DELETE",
            format!("/admin/users/{}%2F/sessions", ALICE.0),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "DELETE",
            format!("/admin/users/{}%0A/sessions", ALICE.0),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "DELETE",
            format!("/admin/users/{}%zz/sessions", ALICE.0),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "DELETE",
            format!("/admin/users/{}%ff/sessions", ALICE.0),
            StatusCode::BAD_REQUEST,
            "INVALID_USER",
        ),
        (
            "POST",
            "/admin/sessions/count".into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "GET",
            format!("/admin/sessions/{id}"),
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "PUT",
            format!("/admin/users/{}/sessions", ALICE.0),
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "DELETE",
            format!("/admin/users/{}/sessions/", ALICE.0),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "DELETE",
            format!("/admin/users/{}", ALICE.0),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "GET",
            "/admin/nope".into(),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ];
    for (method, path, status, code) in &cases {
        let r = admin(&h, method, path).await;
        assert_eq!(r.status, *status, "{method} {path}: {:?}", r.body);
        assert_eq!(r.code(), *code, "{method} {path}");
    }
    let allow = |method: &str, path: &str| {
        let path = path.to_string();
        let method = method.to_string();
        let h = &h;
        async move {
            admin(h, &method, &path)
                .await
                .header("allow")
                .map(str::to_string)
        }
    };
    assert_eq!(
        allow("POST", "/admin/sessions/count").await.as_deref(),
        Some("GET")
    );
    assert_eq!(
        allow("GET", &format!("/admin/sessions/{id}"))
            .await
            .as_deref(),
        Some("DELETE")
    );
    assert_eq!(
        allow("PATCH", &format!("/admin/users/{}/sessions", ALICE.0))
            .await
            .as_deref(),
        Some("GET, DELETE")
    );
    assert_eq!(status_of(&h, &alice.access_token).await, StatusCode::OK);
    assert_eq!(h.stored_sessions(), 1);
}
