//! Streamed uploads, slow responses and big responses.

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Client;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use serde_json::json;
use sha2::{Digest, Sha256};
use share_stand_in::{StandIn, StandInConfig};

/// A body of `chunks` pseudo-random chunks of 64 KiB, sent without a Content-Length.
struct Chunks {
    left: usize,
    state: u64,
}

impl Chunks {
    fn new(chunks: usize) -> Chunks {
        Chunks {
            left: chunks,
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn next_chunk(&mut self) -> Bytes {
        let mut chunk = Vec::with_capacity(64 * 1024);
        while chunk.len() < 64 * 1024 {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.extend_from_slice(&self.state.to_le_bytes());
        }
        Bytes::from(chunk)
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        this.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(this.next_chunk()))))
    }
}

fn expected(chunks: usize) -> (u64, String) {
    let mut body = Chunks::new(chunks);
    let mut hasher = Sha256::new();
    for _ in 0..chunks {
        hasher.update(body.next_chunk());
    }
    ((chunks * 64 * 1024) as u64, hex::encode(hasher.finalize()))
}

#[tokio::test]
async fn uploads_are_streamed_and_digested() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let chunks = 128; // 8 MiB
    let (bytes, sha256) = expected(chunks);
    for path in ["/upload", "/3rd-party/upload/"] {
        let headers = [
            ("content-type", "application/octet-stream"),
            ("x-upload", path),
        ];
        let body = Chunks::new(chunks).boxed();
        let reply = client.send(Method::POST, path, &headers, body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json(), json!({"bytes": bytes, "sha256": sha256}));
    }
    let requests = stand_in.requests();
    assert_eq!(requests.len(), 2);
    for (request, path) in requests.iter().zip(["/upload", "/3rd-party/upload/"]) {
        assert_eq!(request.path_and_query, path);
        assert_eq!(request.header("x-upload"), Some(path));
        assert_eq!(request.header("transfer-encoding"), Some("chunked"));
        assert!(request.body.is_empty());
    }
}

#[tokio::test]
async fn an_empty_upload_has_the_empty_digest() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let reply = Client::new(&stand_in)
        .send(Method::POST, "/upload", &[], common::empty())
        .await;
    let empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(reply.json(), json!({"bytes": 0, "sha256": empty_sha256}));
}

#[tokio::test]
async fn slow_waits_before_answering() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let start = Instant::now();
    let reply = client.get("/slow?ms=200", None).await;
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"ok": true}));
    // The request is recorded before the wait.
    let pending = tokio::spawn({
        let url = stand_in.url();
        async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<common::Body>();
            let uri = format!("{url}/slow?ms=300").parse().unwrap();
            client.get(uri).await.unwrap().status()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stand_in.requests().len(), 2);
    assert_eq!(pending.await.unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn big_streams_the_pattern() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let len = 3 * 64 * 1024 + 1234;
    let reply = client.get(&format!("/big?bytes={len}"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-length"], len.to_string().as_str());
    assert_eq!(reply.body.len(), len);
    assert!(
        reply
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 256) as u8)
    );

    let empty = client.get("/big?bytes=0", None).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.is_empty());
}
