//! Bodies of 256 MiB through the gateway in both directions, streamed with flat memory.
//!
//! This file is a test binary of its own so that the peak-memory readings below measure only
//! its own tests: the client, the gateway and the stand-in uploader all run in this process.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use http::StatusCode;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::*;

/// Size of each generated upload chunk, and of the pieces a download is checked in.
const CHUNK: usize = 64 * 1024;
/// The size of the big bodies: 256 MiB.
const TOTAL: u64 = 256 * 1024 * 1024;
/// How much the process's peak resident memory may grow during one big transfer: half the
/// body, so that holding the whole body anywhere (client, gateway or uploader) fails.
const MAX_PEAK_GROWTH_KIB: u64 = 128 * 1024;
/// Upper bound on one big transfer, so that a stalled stream fails instead of hanging.
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);

/// The tests run one at a time, so that each peak-memory reading is that test's own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A field of `/proc/self/status`, in KiB.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(|value| value.trim().trim_end_matches("kB").trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// The peak resident memory (`VmHWM`) of this process, from one point on.
///
/// Why this check exists: the gateway promises that bodies of any size stream through it
/// (hyper's flow control pacing the client), never buffered whole. A test that only compares
/// bytes would still pass if the gateway, the client or the uploader collected the body
/// first; a 256 MiB body held anywhere in this process raises the peak by at least 256 MiB,
/// so a growth under 128 MiB shows it was streamed.
struct PeakMemory {
    start_kib: u64,
}

impl PeakMemory {
    fn start() -> PeakMemory {
        // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+), so that an
        // earlier peak of this process cannot hide this one. Where that is not allowed, the
        // comparison with the earlier peak still stands.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        PeakMemory {
            start_kib: proc_status_kib("VmHWM"),
        }
    }

    fn assert_flat(&self, what: &str) {
        let peak_kib = proc_status_kib("VmHWM");
        let growth_kib = peak_kib.saturating_sub(self.start_kib);
        eprintln!(
            "{what}: peak RSS {} MiB -> {} MiB (+{} MiB)",
            self.start_kib / 1024,
            peak_kib / 1024,
            growth_kib / 1024
        );
        assert!(
            growth_kib < MAX_PEAK_GROWTH_KIB,
            "{what}: peak RSS grew by {} MiB (from {} to {} MiB) for a {} MiB body: \
             the body was buffered somewhere",
            growth_kib / 1024,
            self.start_kib / 1024,
            peak_kib / 1024,
            TOTAL / (1024 * 1024)
        );
    }
}

/// The bytes generated so far and their running SHA-256.
type Digest256 = Arc<Mutex<(u64, Sha256)>>;

/// A deterministic pseudo-random body (xorshift64) of `chunks` chunks of 64 KiB, produced one
/// chunk at a time as the connection asks for it, and hashed into `digest` as it goes: the
/// test never holds more than a chunk of it either. No Content-Length: it goes chunked.
fn generated_body(
    chunks: usize,
    digest: Digest256,
) -> StreamBody<impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static> {
    let seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let chunks = stream::unfold((0usize, seed), move |(index, mut state)| {
        let digest = digest.clone();
        async move {
            if index == chunks {
                return None;
            }
            let mut chunk = vec![0u8; CHUNK];
            for word in chunk.chunks_exact_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                word.copy_from_slice(&state.to_le_bytes());
            }
            let mut digest = digest.lock().unwrap();
            digest.0 += chunk.len() as u64;
            digest.1.update(&chunk);
            Some((Ok(Frame::data(Bytes::from(chunk))), (index + 1, state)))
        }
    });
    StreamBody::new(chunks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_256_mib_upload_reaches_the_uploader_byte_for_byte_with_flat_memory() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let authorization = format!("Bearer {}", tokens.access_token);
    let digest = Digest256::default();
    let chunks = usize::try_from(TOTAL).unwrap() / CHUNK;

    let memory = PeakMemory::start();
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(TRANSFER_LIMIT, async {
        let response = h
            .send_streaming(
                "POST",
                "/api/upload",
                &[
                    ("authorization", authorization.as_str()),
                    ("content-type", "application/octet-stream"),
                ],
                generated_body(chunks, digest.clone()),
            )
            .await;
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    })
    .await
    .expect("the upload finishes within the limit");
    let elapsed = started.elapsed();
    eprintln!("256 MiB upload through the gateway: {elapsed:?}");
    memory.assert_flat("upload");

    assert_eq!(
        status,
        StatusCode::OK,
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    let (sent, hasher) = std::mem::take(&mut *digest.lock().unwrap());
    assert_eq!(sent, TOTAL, "the whole body was generated and sent");
    let reported: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        reported,
        json!({"bytes": TOTAL, "sha256": hex::encode(hasher.finalize())}),
        "what reached the uploader is what the client sent"
    );
    let requests = h.uploader.requests();
    let uploads: Vec<_> = requests
        .iter()
        .filter(|r| r.path_and_query == "/upload")
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].method, http::Method::POST);
    assert_eq!(uploads[0].header("x-sessiongate-user"), Some(ALICE.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_256_mib_download_streams_back_intact_with_flat_memory() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let authorization = format!("Bearer {}", tokens.access_token);
    // The expected bytes of any piece up to CHUNK long starting at offset o are
    // pattern[o % 256..][..len].
    let pattern: Vec<u8> = (0..CHUNK + 256).map(|i| (i % 256) as u8).collect();

    let memory = PeakMemory::start();
    let started = Instant::now();
    let (received, frames) = tokio::time::timeout(TRANSFER_LIMIT, async {
        let response = h
            .send_streaming(
                "GET",
                &format!("/api/big?bytes={TOTAL}"),
                &[("authorization", authorization.as_str())],
                Empty::<Bytes>::new(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut received: u64 = 0;
        let mut frames: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("the download does not break off");
            let Ok(data) = frame.into_data() else {
                continue;
            };
            frames += 1;
            for piece in data.chunks(CHUNK) {
                let start = usize::try_from(received % 256).unwrap();
                assert!(
                    piece == &pattern[start..start + piece.len()],
                    "wrong bytes in the piece at offset {received}"
                );
                received += piece.len() as u64;
            }
        }
        (received, frames)
    })
    .await
    .expect("the download finishes within the limit");
    let elapsed = started.elapsed();
    eprintln!("256 MiB download through the gateway: {elapsed:?} in {frames} frames");
    memory.assert_flat("download");

    assert_eq!(received, TOTAL, "every byte arrived, and no more");
    assert!(frames > 1, "the body came in frames, not as one buffer");
}

/// Sends a chunked upload of `total` bytes with these extra header lines on a raw socket,
/// reading the answer while it writes, as a client must when a server may refuse a request
/// before its body. Returns the status and the JSON body of the answer, and how much of the
/// body the socket took before the gateway closed the connection.
///
/// (hyper's client is not used here: when the gateway answers early and closes, hyper
/// reports the failed body write and drops the answer it has not read yet.)
async fn raw_upload(h: &Harness, extra_headers: &str, total: usize) -> (u16, Value, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stream = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let (mut read_half, mut write_half) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        // Up to the end of the connection, or a reset after a complete answer.
        let _ = read_half.read_to_end(&mut answer).await;
        answer
    });
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: {}\r\ncontent-type: application/octet-stream\r\n\
         transfer-encoding: chunked\r\n{extra_headers}\r\n",
        h.addr()
    );
    write_half.write_all(head.as_bytes()).await.unwrap();
    let chunk = [
        format!("{CHUNK:x}\r\n").into_bytes(),
        vec![0x5a; CHUNK],
        b"\r\n".to_vec(),
    ]
    .concat();
    let mut sent = 0;
    while sent < total {
        // A write error means the gateway closed the connection after answering.
        if write_half.write_all(&chunk).await.is_err() {
            break;
        }
        sent += CHUNK;
    }
    if sent == total {
        let _ = write_half.write_all(b"0\r\n\r\n").await;
    }
    let answer = reader.await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head:?}"));
    let json = serde_json::from_str(&body[..length]).unwrap();
    (status, json, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_without_a_valid_token_is_401_and_never_reaches_the_uploader() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let h = Harness::start().await;
    let cases = [
        ("", "TOKEN_MISSING"),
        ("authorization: Bearer not.a.token\r\n", "TOKEN_INVALID"),
    ];
    for (header, code) in cases {
        // 16 MiB: more than the socket buffers hold, so the gateway must answer without
        // waiting for a body it will not forward.
        let (status, body, sent) =
            tokio::time::timeout(Duration::from_secs(10), raw_upload(&h, header, 16 << 20))
                .await
                .expect("the refusal comes within 10 s");
        eprintln!(
            "refused upload ({code}): the socket took {} KiB of 16 MiB",
            sent / 1024
        );
        assert_eq!(status, 401, "{header:?}: {body}");
        assert_eq!(body["code"], code, "{header:?}: {body}");
    }
    assert_eq!(
        h.uploader.requests().len(),
        0,
        "the uploader received nothing: {:?}",
        h.uploader.requests()
    );
}
