//! Slow clients: connections that dribble a request's head one byte at a time must not keep
//! others from being served, and are cut once `limits.header_read_timeout_seconds` passes.

use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::raw;
use crate::support::*;

/// The head a slow client dribbles; it never completes within the test.
const SLOW_HEAD: &[u8] =
    b"GET /api/account HTTP/1.1\r\nHost: gateway\r\nX-Dribble: aaaaaaaaaaaaaaaaaaaaaaaa";

/// Sends up to `bytes` bytes of [`SLOW_HEAD`], one every `every`; returns the stream, or
/// `None` once the gateway closed it.
async fn dribble(mut stream: TcpStream, bytes: usize, every: Duration) -> Option<TcpStream> {
    for byte in SLOW_HEAD.iter().take(bytes) {
        if stream.write_all(&[*byte]).await.is_err() {
            return None;
        }
        sleep(every).await;
    }
    Some(stream)
}

#[tokio::test]
async fn fifty_dribbling_connections_do_not_delay_other_clients() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let stream = raw::connect(h.addr()).await;
        // 15 bytes at one every 200 ms: about 3 s each, then the task ends.
        slow.push(tokio::spawn(dribble(
            stream,
            15,
            Duration::from_millis(200),
        )));
    }
    sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    for i in 0..10 {
        let asked = Instant::now();
        let r = timeout(
            Duration::from_secs(2),
            h.request("GET", "/api/account")
                .token(&t.access_token)
                .send_on_new_connection(),
        )
        .await
        .unwrap_or_else(|_| panic!("request {i} served within 2 s"));
        assert_eq!(r.status, StatusCode::OK, "request {i}: {:?}", r.body);
        assert!(asked.elapsed() < Duration::from_secs(2));
        sleep(Duration::from_millis(200)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the normal requests ran while the slow ones dribbled"
    );
    for task in slow {
        let stream = timeout(Duration::from_secs(10), task)
            .await
            .expect("the slow client ends")
            .expect("the slow client does not panic");
        drop(stream);
    }
}

#[tokio::test]
async fn a_dribbling_connection_is_closed_after_the_header_read_timeout() {
    let h = Harness::start_with(|c| c.limits.header_read_timeout_seconds = 1).await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let mut stream = raw::connect(h.addr()).await;
    let started = Instant::now();
    // One byte every 100 ms for at most 6 s: hyper's header timer runs from the first byte
    // and is not reset by later ones.
    let mut written = 0;
    for byte in SLOW_HEAD.iter().cycle().take(60) {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        written += 1;
        let mut buf = [0u8; 512];
        match timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            // Closed (or reset), possibly after a 408: either way the slow client is gone.
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(
                    text.starts_with("HTTP/1.1 408"),
                    "only a timeout answer: {text}"
                );
            }
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    assert!(
        written < 60 && elapsed < Duration::from_secs(4),
        "closed within about the 1 s timeout: {written} bytes over {elapsed:?}"
    );
    let r = h.get("/api/account", &t.access_token).await;
    assert_eq!(r.status, StatusCode::OK);
}
