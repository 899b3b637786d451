//! The graceful drain on SIGTERM: an upload in flight completes, new connections are not
//! served, and the process exits 0.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::gateway::{Launch, login, raw_get, start_gateway};

/// A request body fed by a channel, one frame per message, of a declared length.
struct ChannelBody {
    chunks: mpsc::Receiver<Bytes>,
    length: u64,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.length)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_upload_in_flight_refuses_new_connections_and_exits_0() {
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 64;
    let mut gateway = start_gateway(Launch::Preset).await;
    let (access, _) = login(&gateway).await;

    // 64 MiB in 1 MiB chunks, each one different, and their digest.
    let mut hasher = Sha256::new();
    let chunks: Vec<Bytes> = (0..CHUNKS)
        .map(|k| {
            let chunk: Vec<u8> = (0..CHUNK).map(|i| ((k * 7 + i) % 251) as u8).collect();
            hasher.update(&chunk);
            Bytes::from(chunk)
        })
        .collect();
    let sha256 = hex::encode(hasher.finalize());
    let total = (CHUNK * CHUNKS) as u64;

    // The feeder sends a chunk every 30 ms (about 2 s in all) and says when a quarter is out.
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let (quarter_tx, quarter_rx) = oneshot::channel::<()>();
    let feeder = tokio::spawn(async move {
        let mut quarter = Some(quarter_tx);
        for (k, chunk) in chunks.into_iter().enumerate() {
            if tx.send(chunk).await.is_err() {
                return;
            }
            if k == CHUNKS / 4 {
                let _ = quarter.take().map(|q| q.send(()));
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let stream = tokio::net::TcpStream::connect(gateway.main)
        .await
        .expect("connect to the gateway");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::post("/api/upload")
        .header("host", gateway.main.to_string())
        .header("authorization", format!("Bearer {access}"))
        .header("content-type", "application/octet-stream")
        .header("content-length", total.to_string())
        .body(ChannelBody {
            chunks: rx,
            length: total,
        })
        .expect("a valid request");
    let upload = tokio::spawn(async move {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    });

    tokio::time::timeout(Duration::from_secs(10), quarter_rx)
        .await
        .expect("a quarter of the upload is sent within 10 s")
        .expect("the feeder runs");
    gateway.child.terminate();
    let terminated = Instant::now();

    // After a moment, a new client is not served: refused, or accepted by nobody.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let late = raw_get(gateway.main, "/api/upload/abc", Duration::from_secs(2)).await;
    assert!(
        late.as_deref()
            .is_none_or(|answer| !answer.starts_with("HTTP/")),
        "a connection made after SIGTERM was served: {late:?}"
    );
    assert!(
        gateway.child.exited().is_none(),
        "the gateway exited with an upload in flight; stderr:\n{}",
        gateway.child.stderr()
    );

    let (status, body) = tokio::time::timeout(Duration::from_secs(30), upload)
        .await
        .expect("the upload completes within 30 s")
        .expect("the upload task")
        .unwrap_or_else(|e| {
            panic!(
                "the upload in flight failed after SIGTERM: {e}; stderr:\n{}",
                gateway.child.stderr()
            )
        });
    feeder.await.expect("the feeder finishes");
    let body: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&body)));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"bytes": total, "sha256": sha256}));

    // The grace period of the preset is 30 s; the drain needs no more than the upload.
    let remaining = Duration::from_secs(31).saturating_sub(terminated.elapsed());
    let exit = gateway.child.wait_exit(remaining).await;
    assert_eq!(exit.code(), Some(0), "stderr:\n{}", gateway.child.stderr());
}
