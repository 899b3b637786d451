//! HTTP/2 in cleartext with prior knowledge: a client speaking h2 to the main listener logs
//! in and lists its sessions; the upstream is still reached (over HTTP/1.1) on the right path.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use support::*;

/// Sends one request on the h2 connection; the status, version and JSON body.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Version, Value) {
    let exchange = async {
        sender.ready().await.expect("the h2 connection is ready");
        let response = sender.send_request(request).await.expect("an h2 answer");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the body arrives").to_bytes();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&body)));
        (parts.status, parts.version, json)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("answered within 10 s")
}

#[tokio::test]
async fn an_h2_client_logs_in_and_lists_its_sessions() {
    let h = Harness::start().await;
    let stream = tokio::net::TcpStream::connect(h.addr())
        .await
        .expect("connect to the gateway");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("the gateway speaks h2 with prior knowledge");
    let connection = tokio::spawn(connection);

    let login = Request::post(h.url("/api/auth/login"))
        .header("content-type", "application/json")
        .header("user-agent", CHROME_LINUX)
        .body(Full::new(Bytes::from(
            json!({"email": ALICE.1, "password": ALICE.2}).to_string(),
        )))
        .expect("a valid request");
    let (status, version, body) = send(&mut sender, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(version, Version::HTTP_2);
    let access = body["access_token"]
        .as_str()
        .expect("an access_token")
        .to_string();

    let list = Request::get(h.url("/api/account/sessions"))
        .header("authorization", format!("Bearer {access}"))
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let (status, version, body) = send(&mut sender, list).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["sessions"][0]["current"], true, "{body}");
    assert_eq!(body["sessions"][0]["device"]["browser"], "Chrome", "{body}");

    // A forwarded session route, on the same h2 connection.
    let account = Request::get(h.url("/api/account?x=1"))
        .header("authorization", format!("Bearer {access}"))
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let (status, version, body) = send(&mut sender, account).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(version, Version::HTTP_2);
    assert_eq!(body, json!({"user": {"_id": ALICE.0}}));

    // The uploader got the login and the account request on their stripped paths, with the
    // identity headers; the session list never reached it.
    assert_eq!(h.upstream_hits("/auth/login"), 1);
    assert_eq!(h.upstream_hits("/account?x=1"), 1);
    assert_eq!(h.upstream_hits("/account/sessions"), 0);
    let forwarded = h
        .uploader
        .requests()
        .into_iter()
        .find(|r| r.path_and_query == "/account?x=1")
        .expect("recorded");
    assert_eq!(forwarded.header("x-sessiongate-user"), Some(ALICE.0));
    assert!(
        forwarded.header("host").is_some(),
        "{:?}",
        forwarded.headers
    );

    drop(sender);
    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
}
