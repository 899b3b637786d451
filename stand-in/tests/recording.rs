//! Request recording, the echo route, the uploader's sessions handlers, and shutdown.

mod common;

use std::time::Duration;

use common::Client;
use http::{Method, StatusCode};
use serde_json::json;
use share_stand_in::{StandIn, StandInConfig};

#[tokio::test]
async fn requests_are_recorded_in_order_with_headers_and_bodies() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let headers = [("x-test", "one"), ("content-type", "text/plain")];
    let path = "/Some/Thing/?a=1&b=%20x";
    let reply = client
        .send(Method::PATCH, path, &headers, common::full("hello"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"ok": true, "method": "PATCH", "path": path})
    );
    client.get("/account", None).await;

    let requests = stand_in.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, Method::PATCH);
    assert_eq!(requests[0].path_and_query, path);
    assert_eq!(requests[0].header("X-Test"), Some("one"));
    assert_eq!(requests[0].header("missing"), None);
    assert_eq!(&requests[0].body[..], b"hello");
    assert_eq!(requests[1].method, Method::GET);
    assert_eq!(requests[1].path_and_query, "/account");

    stand_in.clear_requests();
    assert!(stand_in.requests().is_empty());
    client.get("/x", None).await;
    assert_eq!(stand_in.requests().len(), 1);
}

#[tokio::test]
async fn login_bodies_are_recorded() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let body = json!({"email": "alice@example.com", "password": "alice-password"});
    Client::new(&stand_in)
        .post_json("/auth/login", body.clone())
        .await;
    let recorded = &stand_in.requests()[0];
    assert_eq!(recorded.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&recorded.body).unwrap(),
        body
    );
}

#[tokio::test]
async fn the_uploaders_sessions_handlers_show_themselves() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    for path in [
        "/account/sessions",
        "/ACCOUNT/Sessions/",
        "/account//sessions",
    ] {
        let reply = client.get(path, None).await;
        assert_eq!(reply.headers["x-served-by"], "uploader");
        assert_eq!(
            reply.json(),
            json!({"sessions": [], "total": 0, "servedBy": "uploader"})
        );
    }
    for path in [
        "/account/sessions",
        "/account/sessions/5fe00728d0adc5576af8684f/",
    ] {
        let reply = client
            .send(Method::DELETE, path, &[], common::empty())
            .await;
        assert_eq!(
            reply.json(),
            json!({"code": "SESSION_REVOKED", "servedBy": "uploader"})
        );
    }
    let other = client.get("/account/sessions//", None).await;
    assert_eq!(other.json()["ok"], json!(true));
}

#[tokio::test]
async fn unparsable_json_is_a_bad_request() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let headers = [("content-type", "application/json")];
    let reply = Client::new(&stand_in)
        .send(Method::POST, "/auth/login", &headers, common::full("{nope"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dropping_the_stand_in_stops_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stand_in = StandIn::start_on(StandInConfig::default(), listener).await;
    let addr = stand_in.addr();
    assert_eq!(stand_in.url(), format!("http://{addr}"));
    Client::new(&stand_in).get("/", None).await;
    drop(stand_in);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
