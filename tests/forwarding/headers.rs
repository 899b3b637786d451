//! Hop-by-hop headers stay behind; `X-Forwarded-*` and `Host` are the gateway's, not the
//! client's.

use http::StatusCode;

use crate::recorded::{count, only_request_since};
use crate::support::*;

#[tokio::test]
async fn hop_by_hop_headers_stay_behind_and_forwarding_headers_are_the_gateways() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let response = h
        .request("GET", "/api/account")
        .token(&tokens.access_token)
        .header("connection", "x-custom, keep-alive")
        .header("x-custom", "per-connection")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic cHJveHk6c2VjcmV0")
        .header("upgrade", "websocket")
        .header("x-request-id", "req-42")
        .header("user-agent", CHROME_LINUX)
        .header("accept", "application/json")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, before);

    for name in [
        "x-custom",
        "keep-alive",
        "te",
        "proxy-authorization",
        "upgrade",
    ] {
        assert_eq!(
            count(&forwarded, name),
            0,
            "{name} forwarded: {forwarded:?}"
        );
    }
    // The gateway's own connection to the uploader may carry its own Connection header, but
    // never the client's.
    for value in forwarded.headers.get_all("connection") {
        let value = value.to_str().unwrap().to_ascii_lowercase();
        assert!(
            !value.contains("x-custom"),
            "client's Connection forwarded: {value}"
        );
    }

    assert_eq!(forwarded.header("x-request-id"), Some("req-42"));
    assert_eq!(forwarded.header("user-agent"), Some(CHROME_LINUX));
    assert_eq!(forwarded.header("accept"), Some("application/json"));

    // The client's X-Forwarded-* are not believed: the uploader sees what the gateway saw.
    assert_eq!(count(&forwarded, "x-forwarded-for"), 1, "{forwarded:?}");
    assert_eq!(forwarded.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(count(&forwarded, "x-forwarded-proto"), 1, "{forwarded:?}");
    assert_eq!(forwarded.header("x-forwarded-proto"), Some("http"));
    let gateway_host = h.addr().to_string();
    assert_eq!(
        forwarded.header("x-forwarded-host"),
        Some(gateway_host.as_str())
    );

    // The gateway still serves this client normally afterwards.
    let again = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(again.status, StatusCode::OK);
}

#[tokio::test]
async fn x_forwarded_host_is_the_host_the_client_used() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let response = h
        .request("GET", "/api/account")
        .token(&tokens.access_token)
        .header("host", "share.example.com")
        .header("x-forwarded-host", "evil.example.net")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, before);
    assert_eq!(count(&forwarded, "x-forwarded-host"), 1, "{forwarded:?}");
    assert_eq!(
        forwarded.header("x-forwarded-host"),
        Some("share.example.com")
    );
    // The uploader is addressed as itself.
    assert_eq!(
        forwarded.header("host"),
        Some(h.uploader.addr().to_string().as_str())
    );
}
