//! Connection hygiene under `[limits]`: oversized heads and bodies, slow and idle clients,
//! and the connection cap. Raw TCP clients where the test needs to control the bytes.

mod support;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Frame;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How a raw read ended.
#[derive(Debug)]
enum ReadEnd {
    /// The peer closed (EOF) or reset the connection.
    Closed,
    /// Nothing more arrived in time.
    TimedOut,
}

/// Reads whatever arrives until the peer closes or `limit` passes; the bytes and how it
/// ended.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, ReadEnd) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (received, ReadEnd::TimedOut),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, ReadEnd::Closed),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body (the gateway's JSON answers),
/// within `limit`; its head as text. `None` if the connection ended or the time ran out
/// before a whole response arrived.
async fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return Some(head);
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) | Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// A plain GET of a public route (no token needed), kept alive.
fn public_get(h: &Harness, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", h.addr())
}

/// Sends, on a new connection, a GET of a public route whose head is `head_bytes` long
/// (padded with one header).
async fn send_head_of(h: &Harness, head_bytes: usize) -> TcpStream {
    let start = format!(
        "GET /api/upload/abc HTTP/1.1\r\nHost: {}\r\nX-Pad: ",
        h.addr()
    );
    let pad = "a".repeat(head_bytes - start.len() - "\r\n\r\n".len());
    let request = format!("{start}{pad}\r\n\r\n");
    assert_eq!(request.len(), head_bytes);
    let mut stream = TcpStream::connect(h.addr()).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream
}

/// [`send_head_of`], then reads until the gateway closes or 5 s pass: the answer as text and
/// how it ended.
async fn refused_head_of(h: &Harness, head_bytes: usize) -> (String, ReadEnd) {
    let mut stream = send_head_of(h, head_bytes).await;
    let (answer, end) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    (String::from_utf8_lossy(&answer).into_owned(), end)
}

/// [`send_head_of`], then reads one whole response: its head.
async fn answered_head_of(h: &Harness, head_bytes: usize) -> String {
    let mut stream = send_head_of(h, head_bytes).await;
    read_response(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer")
}

#[tokio::test]
async fn a_request_head_over_the_limit_is_431_and_not_forwarded() {
    let h = Harness::start_with(|c| c.limits.max_header_bytes = 16384).await;
    // One byte over: the gateway's own JSON 431 (the head is within hyper's read buffer),
    // and the connection closed.
    let (answer, end) = refused_head_of(&h, 16385).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431, got {:?}",
        answer.chars().take(200).collect::<String>()
    );
    assert!(answer.contains(r#""code":"HEADERS_TOO_LARGE""#), "{answer}");
    assert!(matches!(end, ReadEnd::Closed), "the connection was closed");
    // Far over it, and over half the read buffer (256 KiB): the same.
    let (answer, _) = refused_head_of(&h, 200 * 1024).await;
    assert!(answer.contains(r#""code":"HEADERS_TOO_LARGE""#), "{answer}");
    assert_eq!(h.uploader.requests().len(), 0, "nothing was forwarded");

    // A head of exactly the limit passes.
    let head = answered_head_of(&h, 16384).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(h.upstream_hits("/upload/abc"), 1);
}

#[tokio::test]
async fn a_head_limit_under_8_kib_holds_too() {
    // hyper's read buffer cannot be under 8 KiB, so a smaller head limit is the gateway's to
    // keep (before, such a limit let heads up to 8 KiB through).
    let h = Harness::start_with(|c| c.limits.max_header_bytes = 2048).await;
    let (answer, _) = refused_head_of(&h, 4096).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains(r#""code":"HEADERS_TOO_LARGE""#), "{answer}");
    assert_eq!(h.uploader.requests().len(), 0, "nothing was forwarded");
    let head = answered_head_of(&h, 2048).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(h.upstream_hits("/upload/abc"), 1);
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_413_and_not_forwarded() {
    let h = Harness::start_with(|c| c.limits.max_request_body_bytes = 1024).await;
    let r = h
        .request("POST", "/api/auth/register")
        .body(vec![b'x'; 2048], "application/octet-stream")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert_eq!(r.code(), "BODY_TOO_LARGE");
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    assert_eq!(h.uploader.requests().len(), 0, "nothing was forwarded");

    let r = h
        .request("POST", "/api/auth/register")
        .body(vec![b'y'; 512], "application/octet-stream")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let forwarded = h.uploader.requests();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].path_and_query, "/auth/register");
    assert_eq!(forwarded[0].body.len(), 512, "the whole small body arrived");
}

/// A request body fed by a channel: each message is one frame, the channel's end is the
/// body's end (no length declared, so HTTP/1.1 sends it chunked).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn a_chunked_body_growing_past_the_limit_never_reaches_the_upstream_whole() {
    let h = Harness::start_with(|c| c.limits.max_request_body_bytes = 1024).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let feeder = tokio::spawn(async move {
        // 8 × 512 bytes = 4 KiB, four times the limit, a little at a time.
        for _ in 0..8 {
            if tx.send(Bytes::from(vec![b'z'; 512])).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let auth = format!("Bearer {}", tokens.access_token);
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let response = h
            .send_streaming(
                "POST",
                "/api/upload",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/octet-stream"),
                ],
                ChannelBody(rx),
            )
            .await;
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        (status, body)
    })
    .await
    .expect("the gateway answers or closes within 10 s");
    feeder.abort();
    let (status, body) = outcome;
    let body = body.map(|b| String::from_utf8_lossy(&b).to_string());
    // The upload must not look successful: the upstream never got the whole body. And the
    // client is told it was its body, not an upstream outage.
    assert!(
        !status.is_success(),
        "a body 4 times over the limit was accepted: {status} {body:?}"
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:?}");
    let text = body.as_ref().expect("a JSON body");
    assert!(text.contains("BODY_TOO_LARGE"), "{text}");
    if let Ok(text) = &body
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(bytes) = value["bytes"].as_u64()
    {
        assert!(bytes <= 1024, "the upstream counted {bytes} bytes");
    }
    eprintln!("over-limit chunked upload answered {status}: {body:?}");
}

#[tokio::test]
async fn a_client_that_stalls_inside_the_request_head_is_disconnected() {
    let h = Harness::start_with(|c| c.limits.header_read_timeout_seconds = 1).await;
    let mut stream = TcpStream::connect(h.addr()).await.expect("connect");
    stream.write_all(b"GET /api/acc").await.expect("write");
    let started = Instant::now();
    let (answer, end) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(end, ReadEnd::Closed),
        "still open after {elapsed:?}; received {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed <= Duration::from_secs(3),
        "closed after {elapsed:?}, the header timeout is 1 s"
    );
    assert_eq!(h.uploader.requests().len(), 0);
}

#[tokio::test]
async fn a_kept_alive_connection_gets_the_whole_header_time_for_its_next_head() {
    // The header timer of a connection's first head, started when it connected, is reused
    // for its next head: it must then run from the first answer, not from the connection.
    let h = Harness::start_with(|c| c.limits.header_read_timeout_seconds = 2).await;
    let mut stream = TcpStream::connect(h.addr()).await.expect("connect");
    let request = public_get(&h, "/api/upload/abc");
    let (first_half, second_half) = request.split_at(10);
    stream
        .write_all(first_half.as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stream
        .write_all(second_half.as_bytes())
        .await
        .expect("write");
    let head = read_response(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer within the header time");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answered = Instant::now();
    stream.write_all(b"GET /api/acc").await.expect("write");
    let (_, end) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let elapsed = answered.elapsed();
    assert!(
        matches!(end, ReadEnd::Closed),
        "still open after {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(1600) && elapsed <= Duration::from_secs(4),
        "closed {elapsed:?} after the first answer, the header timeout is 2 s"
    );
    assert_eq!(h.uploader.requests().len(), 1);
}

#[tokio::test]
async fn at_the_connection_limit_a_new_client_waits_for_a_free_slot() {
    let h = Harness::start_with(|c| c.limits.max_connections = 2).await;
    // Two clients take both slots: each is answered once, then sits idle.
    let mut first = TcpStream::connect(h.addr()).await.expect("connect");
    let mut second = TcpStream::connect(h.addr()).await.expect("connect");
    for stream in [&mut first, &mut second] {
        stream
            .write_all(public_get(&h, "/api/upload/one").as_bytes())
            .await
            .expect("write");
        let head = read_response(stream, Duration::from_secs(5))
            .await
            .expect("the first two clients are served");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }

    // A third connects (the kernel's accept queue takes it) but is not served.
    let mut third = TcpStream::connect(h.addr()).await.expect("connect");
    third
        .write_all(public_get(&h, "/api/upload/third").as_bytes())
        .await
        .expect("write");
    let early = read_response(&mut third, Duration::from_millis(1500)).await;
    assert_eq!(
        early, None,
        "the third client was served while two were open"
    );
    assert_eq!(h.upstream_hits("/upload/third"), 0);

    // One of the first two leaves: the third is served.
    drop(first);
    let started = Instant::now();
    let head = read_response(&mut third, Duration::from_secs(5))
        .await
        .expect("the third client is served once a slot is free");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h.upstream_hits("/upload/third"), 1);

    // The second one is still served on its kept-alive connection.
    second
        .write_all(public_get(&h, "/api/upload/two").as_bytes())
        .await
        .expect("write");
    let head = read_response(&mut second, Duration::from_secs(5))
        .await
        .expect("the second client is still served");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let h = Harness::start_with(|c| c.limits.keep_alive_idle_seconds = 1).await;
    let mut stream = TcpStream::connect(h.addr()).await.expect("connect");
    stream
        .write_all(public_get(&h, "/api/upload/abc").as_bytes())
        .await
        .expect("write");
    let head = read_response(&mut stream, Duration::from_secs(5))
        .await
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "the connection should be kept alive: {head}"
    );
    let started = Instant::now();
    let (rest, end) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(end, ReadEnd::Closed),
        "still open after {elapsed:?}"
    );
    assert!(
        rest.is_empty(),
        "unexpected bytes {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed <= Duration::from_secs(3),
        "closed after {elapsed:?}, the idle limit is 1 s"
    );
}

#[tokio::test]
async fn a_busy_connection_is_not_closed_as_idle() {
    // Requests every 400 ms keep a connection with a 1 s idle limit open for 3 s.
    let h = Harness::start_with(|c| c.limits.keep_alive_idle_seconds = 1).await;
    let mut stream = TcpStream::connect(h.addr()).await.expect("connect");
    for i in 0..8 {
        stream
            .write_all(public_get(&h, &format!("/api/upload/n{i}")).as_bytes())
            .await
            .expect("write");
        let head = read_response(&mut stream, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("request {i} on the kept-alive connection was not answered"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
