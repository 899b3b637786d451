//! Public routes, forwarded whatever authorization they carry, and the third-party upload
//! route an API key reaches (and no other).

use http::StatusCode;
use serde_json::json;

use crate::recorded::{count, only_request_since};
use crate::support::*;

#[tokio::test]
async fn public_routes_are_forwarded_with_any_authorization_untouched() {
    let h = Harness::start().await;
    let cases = [
        ("GET", "/api/upload/abc", "/upload/abc"),
        ("GET", "/api/upload/abc/raw", "/upload/abc/raw"),
        ("POST", "/api/user/reset-password", "/user/reset-password"),
    ];
    for (method, path, upstream_path) in cases {
        for authorization in [None, Some("Bearer garbage"), Some("Basic Zm9vOmJhcg==")] {
            let before = h.uploader.requests().len();
            let mut request = h.request(method, path);
            if method == "POST" {
                request = request.json(json!({"email": ALICE.1}));
            }
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{method} {path} with {authorization:?}: {:?}",
                response.body
            );
            let forwarded = only_request_since(&h, before);
            assert_eq!(forwarded.method.as_str(), method);
            assert_eq!(forwarded.path_and_query, upstream_path);
            assert_eq!(
                forwarded.header("authorization"),
                authorization,
                "{method} {path}"
            );
            assert_eq!(count(&forwarded, "x-sessiongate-user"), 0);
        }
    }
}

#[tokio::test]
async fn an_api_key_reaches_the_third_party_upload_route_only() {
    let h = Harness::start().await;
    let api_key = h.uploader.api_key(ALICE.0, "Share");

    let response = h
        .request("POST", "/api/3rd-party/upload")
        .token(&api_key)
        .header("x-sessiongate-user", "someone-else")
        .body("hello, uploader", "application/octet-stream")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json()["bytes"], json!("hello, uploader".len()));
    let forwarded = only_request_since(&h, 0);
    assert_eq!(forwarded.path_and_query, "/3rd-party/upload");
    assert_eq!(
        forwarded.header("authorization"),
        Some(format!("Bearer {api_key}").as_str()),
        "the uploader checks its own key"
    );
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 0, "{forwarded:?}");

    // The same key is no session.
    let response = h.get("/api/account", &api_key).await;
    assert_eq!(
        response.status,
        StatusCode::UNAUTHORIZED,
        "{:?}",
        response.body
    );
    // It verifies (same secret, no issuer required) but belongs to no session.
    assert_eq!(response.code(), "SESSION_INVALID");
    assert_eq!(
        h.uploader.requests().len(),
        1,
        "the refused request was not forwarded"
    );
}
