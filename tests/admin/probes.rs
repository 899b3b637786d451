//! `/healthz` and `/readyz`: ready when the store and the upstream answer, 503 when the
//! upstream is down.

use http::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn healthz_says_ok() {
    let h = Harness::start().await;
    let r = h.admin_get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_ready_when_the_store_and_the_upstream_answer() {
    let h = Harness::start().await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["store"], "ok", "{body}");
    assert_eq!(body["upstream"], "ok", "{body}");
}

#[tokio::test]
async fn readyz_is_503_when_the_upstream_is_down() {
    let h = Harness::start_with(|c| c.upstream = "http://127.0.0.1:1".into()).await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["upstream"], "failing", "{body}");
    assert_eq!(body["store"], "ok", "{body}");
}

#[tokio::test]
async fn readyz_does_not_probe_an_upstream_that_has_just_answered() {
    let h = Harness::start().await;
    let probes = || h.upstream_hits("/");
    let before = probes();
    // Nothing answered yet: the upstream is asked for `/`.
    assert_eq!(h.admin_get("/readyz").await.status, StatusCode::OK);
    assert_eq!(probes(), before + 1, "probed");
    // That answer is fresh: not asked again.
    assert_eq!(h.admin_get("/readyz").await.status, StatusCode::OK);
    assert_eq!(probes(), before + 1, "not probed twice");

    // A forwarded request's answer counts the same.
    let h = Harness::start().await;
    let probes = || h.upstream_hits("/");
    let before = probes();
    h.login(ALICE, CHROME_LINUX).await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["upstream"], "ok");
    assert_eq!(probes(), before, "a login's answer is fresh");
}
