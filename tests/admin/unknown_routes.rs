//! What the admin listener answers to paths it does not serve and to methods its paths do not
//! take; nothing of it reaches the uploader.

use http::StatusCode;

use crate::support::*;

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

    let r = admin_call(h.admin_url("/reload-tls"), "POST", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.code(), "TLS_OFF");

    let r = admin_call(h.admin_url("/metrics"), "POST", &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", r.body);
    assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(
        h.uploader.requests().len(),
        0,
        "nothing reached the uploader"
    );
}
