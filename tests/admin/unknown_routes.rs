//! What the admin listener answers to paths it does not serve and to methods its paths do not
//! take; nothing of it reaches the uploader.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::*;

/// Sends a request with any method to the admin listener.
async fn admin_send(h: &Harness, method: Method, path: &str) -> TestResponse {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(method)
        .uri(h.admin_url(path))
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = client
        .request(request)
        .await
        .expect("the admin listener answers");
    let (parts, body) = response.into_parts();
    TestResponse {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("the body arrives").to_bytes(),
    }
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_on_the_admin_listener() {
    let h = Harness::start().await;
    let r = h.admin_get("/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NOT_FOUND");
    // The admin listener does not serve the API.
    let r = h.admin_get("/api/account/sessions").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NOT_FOUND");

    let r = admin_send(&h, Method::POST, "/reload-tls").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.code(), "TLS_OFF");

    let r = admin_send(&h, Method::POST, "/metrics").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", r.body);
    assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(
        h.uploader.requests().len(),
        0,
        "nothing reached the uploader"
    );
}
