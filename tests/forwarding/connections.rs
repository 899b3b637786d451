//! Upstream connections: each client connection keeps one of its own, a timed-out one is not
//! reused, and a client connection outlives upstream connections closed under it.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use crate::recorded::received_since;
use crate::support::*;

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
