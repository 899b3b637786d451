//! Client-sent headers that claim something only the gateway may say: the caller's identity,
//! the client's address, a protocol switch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use share_stand_in::RecordedRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, sleep, timeout_at};

use crate::raw;
use crate::support::*;
use crate::{assert_refusal, assert_still_serving};

/// The values of header `name` on a recorded request.
fn values(request: &RecordedRequest, name: &str) -> Vec<String> {
    request
        .headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The one request the uploader received after the first `since`.
fn only_since(h: &Harness, since: usize) -> RecordedRequest {
    let mut received: Vec<_> = h.uploader.requests().into_iter().skip(since).collect();
    assert_eq!(received.len(), 1, "one forwarded request: {received:?}");
    received.remove(0)
}

/// Forged identity and address headers, in several spellings and repeats.
const FORGED: &[(&str, &str)] = &[
    ("x-sessiongate-user", BOB.0),
    ("X-SessionGate-User", "admin"),
    ("x-sessiongate-session", "6946b1a27d3c0f9a1e000001"),
    ("X-SESSIONGATE-SESSION", "forged"),
    ("x-forwarded-for", "10.0.0.1, 1.2.3.4"),
    ("X-Forwarded-For", "8.8.8.8"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    // Asking the gateway to treat its own headers as hop-by-hop must not keep the forgeries.
    ("connection", "x-sessiongate-user, x-forwarded-for"),
];

#[tokio::test]
async fn identity_headers_from_the_client_are_replaced_on_session_routes() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let session_id = h.sessions(&t.access_token).await[0]["_id"]
        .as_str()
        .expect("an id")
        .to_string();
    let before = h.uploader.requests().len();
    let mut request = h.request("GET", "/api/account").token(&t.access_token);
    for (name, value) in FORGED {
        request = request.header(name, value);
    }
    let r = request.send().await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let received = only_since(&h, before);
    assert_eq!(values(&received, "x-sessiongate-user"), [ALICE.0]);
    assert_eq!(values(&received, "x-sessiongate-session"), [session_id]);
    assert_eq!(values(&received, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(values(&received, "x-forwarded-proto"), ["http"]);
    assert_eq!(
        values(&received, "x-forwarded-host"),
        [h.addr().to_string()],
        "the Host the client used, not its X-Forwarded-Host"
    );
}

#[tokio::test]
async fn identity_headers_from_the_client_are_removed_on_public_login_and_api_key_routes() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let key = h.uploader.api_key(ALICE.0, "Share");
    for (method, path, body) in [
        ("POST", "/api/user/reset-password", None),
        ("GET", "/api/upload/abc", None),
        (
            "POST",
            "/api/auth/login",
            Some(serde_json::json!({"email": BOB.1, "password": BOB.2})),
        ),
        ("POST", "/api/3rd-party/upload", None),
    ] {
        let before = h.uploader.requests().len();
        let mut request = h.request(method, path).token(&key);
        for (name, value) in FORGED {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send().await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}: {:?}", r.body);
        let received = only_since(&h, before);
        let what = format!("{method} {path}");
        assert_eq!(
            values(&received, "x-sessiongate-user"),
            Vec::<String>::new(),
            "{what}"
        );
        assert_eq!(
            values(&received, "x-sessiongate-session"),
            Vec::<String>::new(),
            "{what}"
        );
        assert_eq!(
            values(&received, "x-forwarded-for"),
            ["127.0.0.1"],
            "{what}"
        );
        assert_eq!(values(&received, "x-forwarded-proto"), ["http"], "{what}");
    }
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn forged_identity_headers_do_not_authenticate() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for path in ["/api/account", "/api/account/sessions"] {
        let mut request = h.request("GET", path);
        for (name, value) in FORGED {
            request = request.header(name, value);
        }
        let r = request.send().await;
        assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_MISSING", path);
    }
    assert_eq!(h.uploader.requests().len(), before, "nothing forwarded");
    assert_still_serving(&h, &t.access_token).await;
}

/// Every byte an [`agreeing_upstream`] received, on all its connections, as it arrived.
type Received = Arc<Mutex<Vec<u8>>>;

/// An upstream that agrees to any upgrade, as an h2c-capable server would, and records every
/// byte it receives; other requests get a plain 200. Each connection lives at most 3 s.
async fn agreeing_upstream() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received: Received = Arc::default();
    let record = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut answered = false;
                while let Ok(Ok(n)) = timeout_at(deadline, stream.read(&mut buf)).await {
                    if n == 0 {
                        break;
                    }
                    record
                        .lock()
                        .expect("not poisoned")
                        .extend_from_slice(&buf[..n]);
                    head.extend_from_slice(&buf[..n]);
                    if !answered && head.windows(4).any(|w| w == b"\r\n\r\n") {
                        answered = true;
                        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                        let answer = if head.contains("\r\nupgrade: h2c") {
                            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                        } else {
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        };
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                }
            });
        }
    });
    (url, received)
}

#[tokio::test]
async fn an_h2c_upgrade_never_opens_a_tunnel_past_the_gateway() {
    // The h2c smuggling attack: if the gateway passed `Upgrade: h2c` on and the upstream
    // agreed (101), the client would hold a raw connection to the upstream and every later
    // request on it would skip the gateway: its token and session checks, and its own
    // answer to the sessions endpoints.
    let mut h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let (upstream, received) = agreeing_upstream().await;
    h.config.upstream = upstream;
    h.restart().await;
    let auth = format!("Authorization: Bearer {}\r\n", t.access_token);
    for (what, path, auth) in [
        ("public route", "/api/user/upgrade", ""),
        (
            "session route with a live token",
            "/api/account",
            auth.as_str(),
        ),
    ] {
        received.lock().expect("not poisoned").clear();
        let mut stream = raw::connect(h.addr()).await;
        let upgrade = format!(
            "GET {path} HTTP/1.1\r\nHost: gateway\r\n{auth}Connection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        );
        stream.write_all(upgrade.as_bytes()).await.expect("write");
        let first = raw::read_reply(&mut stream).await;
        // What the client sends next must be read by the gateway, not by the upstream.
        let next = "DELETE /account/sessions HTTP/1.1\r\nHost: uploader\r\n\r\n\
                    GET /api/account/sessions HTTP/1.1\r\nHost: gateway\r\n\r\n";
        let second = if first.closed {
            None
        } else {
            let _ = stream.write_all(next.as_bytes()).await;
            Some(raw::read_reply(&mut stream).await)
        };
        drop(stream);
        // Tunnelled bytes arrive at once on loopback; give them a moment all the same.
        sleep(Duration::from_millis(200)).await;
        let seen = String::from_utf8_lossy(&received.lock().expect("not poisoned")).into_owned();
        assert!(
            !seen.contains("DELETE /account/sessions"),
            "{what}: requests after the upgrade reached the upstream unchecked: {seen:?}"
        );
        assert!(
            !seen.to_ascii_lowercase().contains("upgrade: h2c"),
            "{what}: the h2c upgrade was passed on: {seen:?}"
        );
        assert!(!first.statuses().contains(&101), "{what}: {first:?}");
        if let Some(second) = second {
            // Pipelined: the gateway parses both itself; the DELETE is outside the prefix.
            let codes: Vec<Option<String>> = second.responses.iter().map(|r| r.code()).collect();
            assert_eq!(
                codes,
                [Some("NOT_FOUND".into()), Some("TOKEN_MISSING".into())],
                "{what}: {second:?}"
            );
        }
    }
}
