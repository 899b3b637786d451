//! What reaches the uploader through the gateway, and what comes back: the prefix and the
//! normalised path, the identity headers, hop-by-hop and `X-Forwarded-*` headers, public and
//! API-key routes, an upstream that is down or slow, and upstream responses passed back.

mod support;

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use share_stand_in::RecordedRequest;
use support::*;

/// The requests the uploader received after the first `since` ones.
fn received_since(h: &Harness, since: usize) -> Vec<RecordedRequest> {
    h.uploader.requests().into_iter().skip(since).collect()
}

/// The one request the uploader received after the first `since` ones.
fn only_request_since(h: &Harness, since: usize) -> RecordedRequest {
    let mut received = received_since(h, since);
    assert_eq!(
        received.len(),
        1,
        "exactly one forwarded request: {received:?}"
    );
    received.remove(0)
}

/// How many values of header `name` a recorded request carries.
fn count(request: &RecordedRequest, name: &str) -> usize {
    request.headers.get_all(name).iter().count()
}

#[tokio::test]
async fn the_prefix_is_stripped_and_the_query_kept_byte_for_byte() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let before = h.uploader.requests().len();
    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json(), json!({"user": {"_id": ALICE.0}}));
    let forwarded = only_request_since(&h, before);
    assert_eq!(forwarded.method, http::Method::GET);
    assert_eq!(forwarded.path_and_query, "/account");

    let before = h.uploader.requests().len();
    let response = h.get("/api/account?x=1&y=%20z", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(
        only_request_since(&h, before).path_and_query,
        "/account?x=1&y=%20z"
    );
}

#[tokio::test]
async fn a_path_outside_the_prefix_is_404_and_not_forwarded() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for path in ["/other", "/apix", "/apix/account", "/"] {
        for token in [None, Some(tokens.access_token.as_str())] {
            let mut request = h.request("GET", path);
            if let Some(token) = token {
                request = request.token(token);
            }
            let response = request.send().await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(response.code(), "NOT_FOUND", "{path}");
        }
    }
    assert_eq!(
        received_since(&h, before).len(),
        0,
        "nothing outside the prefix reaches the uploader"
    );
}

#[tokio::test]
async fn without_strip_prefix_the_path_arrives_with_the_prefix() {
    let h = Harness::start_with(|c| c.strip_prefix = false).await;
    // A public route: a login would reach the uploader as /api/auth/login, which it has not.
    let response = h.request("GET", "/api/upload/abc?dl=1").send().await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json()["path"], "/api/upload/abc?dl=1");
    assert_eq!(
        only_request_since(&h, 0).path_and_query,
        "/api/upload/abc?dl=1"
    );
}

#[tokio::test]
async fn the_forwarded_path_is_the_normalised_one() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let before = h.uploader.requests().len();
    let response = h
        .get("/api//account/./x/../settings", &tokens.access_token)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(
        only_request_since(&h, before).path_and_query,
        "/account/settings"
    );

    let before = h.uploader.requests().len();
    let response = h.get("/api/account%2Fsessions", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.code(), "BAD_PATH");
    assert_eq!(received_since(&h, before).len(), 0, "nothing forwarded");
}

#[tokio::test]
async fn a_session_route_carries_the_callers_user_and_session() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let sessions = h.sessions(&tokens.access_token).await;
    assert_eq!(sessions.len(), 1);
    let session_id = sessions[0]["_id"].as_str().expect("_id").to_string();

    let before = h.uploader.requests().len();
    let response = h
        .request("GET", "/api/account")
        .token(&tokens.access_token)
        .header("x-sessiongate-user", "someone-else")
        .header("x-sessiongate-session", "000000000000000000000000")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, before);
    assert_eq!(forwarded.header("x-sessiongate-user"), Some(ALICE.0));
    assert_eq!(
        forwarded.header("x-sessiongate-session"),
        Some(session_id.as_str())
    );
    // Replaced, not added to: the client's values are gone.
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 1);
    assert_eq!(count(&forwarded, "x-sessiongate-session"), 1);
    // The uploader still checks its own token.
    assert_eq!(
        forwarded.header("authorization"),
        Some(format!("Bearer {}", tokens.access_token).as_str())
    );
}

#[tokio::test]
async fn client_sent_identity_headers_are_removed_on_public_and_login_routes() {
    let h = Harness::start().await;
    let forged = [
        ("x-sessiongate-user", "someone-else"),
        ("x-sessiongate-session", "000000000000000000000000"),
    ];

    let mut register = h
        .request("POST", "/api/auth/register")
        .json(json!({"email": "eve@example.com", "password": "pw"}));
    for (name, value) in forged {
        register = register.header(name, value);
    }
    let response = register.send().await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, 0);
    assert_eq!(forwarded.path_and_query, "/auth/register");
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 0, "{forwarded:?}");
    assert_eq!(
        count(&forwarded, "x-sessiongate-session"),
        0,
        "{forwarded:?}"
    );

    let mut login = h
        .request("POST", "/api/auth/login")
        .json(json!({"email": ALICE.1, "password": ALICE.2}));
    for (name, value) in forged {
        login = login.header(name, value);
    }
    let response = login.send().await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, 1);
    assert_eq!(forwarded.path_and_query, "/auth/login");
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 0, "{forwarded:?}");
    assert_eq!(
        count(&forwarded, "x-sessiongate-session"),
        0,
        "{forwarded:?}"
    );
}

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

#[tokio::test]
async fn an_unreachable_upstream_is_502_and_the_gateway_keeps_serving() {
    let mut h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    // Same session store, new gateway pointed at a port nothing listens on.
    h.config.upstream = "http://127.0.0.1:1".into();
    h.restart().await;

    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(
        response.status,
        StatusCode::BAD_GATEWAY,
        "{:?}",
        response.body
    );
    assert_eq!(response.code(), "UPSTREAM_UNAVAILABLE");

    let login = h
        .request("POST", "/api/auth/login")
        .json(json!({"email": ALICE.1, "password": ALICE.2}))
        .send()
        .await;
    assert_eq!(login.status, StatusCode::BAD_GATEWAY, "{:?}", login.body);
    assert_eq!(login.code(), "UPSTREAM_UNAVAILABLE");

    let public = h.request("GET", "/api/upload/abc").send().await;
    assert_eq!(public.status, StatusCode::BAD_GATEWAY, "{:?}", public.body);
    assert_eq!(public.code(), "UPSTREAM_UNAVAILABLE");

    // The same gateway serves the next request normally (the sessions endpoint, which it
    // answers itself), and the session survived the failed forwards.
    let sessions = h.sessions(&tokens.access_token).await;
    assert_eq!(sessions.len(), 1);
}

#[tokio::test]
async fn a_gateway_started_on_a_dead_upstream_answers_502() {
    let h = Harness::start_with(|c| c.upstream = "http://127.0.0.1:1".into()).await;
    let login = h
        .request("POST", "/api/auth/login")
        .json(json!({"email": ALICE.1, "password": ALICE.2}))
        .send()
        .await;
    assert_eq!(login.status, StatusCode::BAD_GATEWAY, "{:?}", login.body);
    assert_eq!(login.code(), "UPSTREAM_UNAVAILABLE");
    assert_eq!(h.uploader.requests().len(), 0);
}

#[tokio::test]
async fn a_slow_upstream_is_504_after_the_timeout_and_the_gateway_keeps_serving() {
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let started = Instant::now();
    let response = h.get("/api/slow?ms=3000", &tokens.access_token).await;
    let elapsed = started.elapsed();
    assert_eq!(
        response.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{:?}",
        response.body
    );
    assert_eq!(response.code(), "UPSTREAM_TIMEOUT");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2900),
        "answered after {elapsed:?}, the timeout is 1 s and the upstream takes 3 s"
    );
    assert_eq!(h.upstream_hits("/slow?ms=3000"), 1);

    let response = h.get("/api/slow?ms=100", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.json(), json!({"ok": true}));
    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
}

#[tokio::test]
async fn upstream_responses_come_back_with_their_status_and_body() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;

    let response = h.get("/api/big?bytes=1000000", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body.len(), 1_000_000);
    let pattern: Vec<u8> = (0..1_000_000).map(|i| (i % 256) as u8).collect();
    assert!(
        response.body[..] == pattern[..],
        "the body is the uploader's byte pattern"
    );

    // The uploader's own refusals come back as it sent them: a 400 for a JSON body it cannot
    // parse on a public route...
    let response = h
        .request("POST", "/api/auth/register")
        .body("{not json", "application/json")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(&response.body[..], b"Bad Request");

    // ...and a 401 on a session route, when the gateway accepts the session but the uploader
    // finds the access token expired by its own clock (access tokens live 5 minutes).
    h.uploader.advance_clock(600);
    let response = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        &response.body[..],
        b"Unauthorized",
        "the uploader's answer, not the gateway's"
    );
}

#[tokio::test]
async fn each_client_connection_keeps_one_upstream_connection_of_its_own() {
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let since = h.uploader.requests().len();
    let mut first = h.connect().await;
    let mut second = h.connect().await;
    for round in 0..4 {
        for connection in [&mut first, &mut second] {
            let response = connection
                .get(&h, "/api/account", &tokens.access_token)
                .await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "round {round}: {:?}",
                response.body
            );
        }
    }
    let received = received_since(&h, since);
    assert_eq!(received.len(), 8, "{received:?}");
    let upstream_authority = h.uploader.addr().to_string();
    for request in &received {
        assert_eq!(request.header("host"), Some(upstream_authority.as_str()));
    }
    // Requests alternate between the two client connections: each kept its own.
    let first_peer = received[0].peer;
    let second_peer = received[1].peer;
    assert_ne!(first_peer, second_peer);
    for (i, request) in received.iter().enumerate() {
        let expected = if i % 2 == 0 { first_peer } else { second_peer };
        assert_eq!(request.peer, expected, "request {i}");
    }

    // A request the upstream does not answer in time ends that upstream connection (its
    // late answer must never be taken for the next request's); the client connection's next
    // request goes on a new one and gets its own answer.
    let since = h.uploader.requests().len();
    let slow = first
        .get(&h, "/api/slow?ms=2000", &tokens.access_token)
        .await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", slow.body);
    let next = first.get(&h, "/api/account", &tokens.access_token).await;
    assert_eq!(next.status, StatusCode::OK, "{:?}", next.body);
    assert_ne!(
        next.json(),
        json!({"ok": true}),
        "the slow request's late answer"
    );
    let received = received_since(&h, since);
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].peer, first_peer);
    assert_ne!(received[1].peer, first_peer);
}

/// An upstream that answers every request and then closes the connection, without saying so
/// (no `Connection: close`), as an upstream closing idle keep-alive connections does. Returns
/// its URL and the number of connections it has accepted.
async fn closing_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                              Content-Length: 11\r\n\r\n{\"ok\":true}";
                let _ = stream.write_all(answer.as_bytes()).await;
                // Dropped here: the connection closes after one answer.
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_client_connection_outlives_upstream_connections_closed_under_it() {
    let (upstream, accepted) = closing_upstream().await;
    let h = Harness::start_with(|c| c.upstream = upstream).await;
    let mut connection = h.connect().await;
    for attempt in 1..=5 {
        // A public route: the token is not looked at.
        let response = connection.get(&h, "/api/upload/abc", "none").await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "request {attempt}: {:?}",
            response.body
        );
        assert_eq!(response.json(), json!({"ok": true}), "request {attempt}");
        // Time for the closed upstream connection's end to arrive before the next request.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
}
