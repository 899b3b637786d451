//! Protocol upgrades (WebSocket) pass through on session routes after the token check.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STEP: Duration = Duration::from_secs(5);

/// An upstream that agrees to every upgrade and then echoes bytes; it records each request
/// head it received.
async fn upgrading_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                seen.lock().unwrap().push(head);
                let answer = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
                stream.write_all(answer.as_bytes()).await.unwrap();
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    (format!("http://{addr}"), heads)
}

/// Reads up to the blank line ending an HTTP head.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(STEP, stream.read(&mut byte))
            .await
            .expect("head in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed inside a head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn upgrade_request(token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /api/live/updates HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test]
async fn an_upgrade_is_tunnelled_after_the_token_check() {
    let mut h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let (upstream, heads) = upgrading_upstream().await;
    h.config.upstream = upstream;
    h.restart().await;

    let mut client = TcpStream::connect(h.addr()).await.unwrap();
    client
        .write_all(upgrade_request(Some(&tokens.access_token)).as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );

    // Bytes flow both ways through the tunnel.
    client
        .write_all(b"hello through the gateway")
        .await
        .unwrap();
    let mut echoed = [0u8; 25];
    tokio::time::timeout(STEP, client.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&echoed, b"hello through the gateway");

    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    let upstream_head = heads[0].to_ascii_lowercase();
    assert!(
        upstream_head.starts_with("get /live/updates http/1.1"),
        "{upstream_head}"
    );
    assert!(
        upstream_head.contains("upgrade: websocket"),
        "{upstream_head}"
    );
    assert!(
        upstream_head.contains("connection: upgrade"),
        "{upstream_head}"
    );
    assert!(
        upstream_head.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="),
        "{upstream_head}"
    );
    assert!(
        upstream_head.contains(&format!("x-sessiongate-user: {}", ALICE.0)),
        "{upstream_head}"
    );
}

#[tokio::test]
async fn an_upgrade_without_a_live_session_is_refused_and_not_forwarded() {
    let mut h = Harness::start().await;
    let (upstream, heads) = upgrading_upstream().await;
    h.config.upstream = upstream;
    h.restart().await;
    let mut client = TcpStream::connect(h.addr()).await.unwrap();
    client
        .write_all(upgrade_request(None).as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        heads.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
}
