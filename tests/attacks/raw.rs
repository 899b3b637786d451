//! Raw HTTP/1.1 over a `TcpStream`, for requests no well-behaved client library would send,
//! and a small reader for what comes back. Every wait is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

/// Longest a raw exchange waits for the gateway, in all.
pub const READ_LIMIT: Duration = Duration::from_secs(5);

/// How long to keep listening once a whole response has arrived: a second response (to a
/// request hidden in the first one's body) would come within it.
const SETTLE: Duration = Duration::from_millis(500);

/// One response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `code` of a JSON body.
    pub fn code(&self) -> Option<String> {
        Some(self.json()?["code"].as_str()?.to_string())
    }
}

/// Everything the gateway sent on one connection, and whether it closed the connection.
#[derive(Debug)]
pub struct RawReply {
    /// Complete responses, in order.
    pub responses: Vec<RawResponse>,
    /// Whether the gateway closed (or reset) the connection within the time limit.
    pub closed: bool,
    /// Bytes after the last complete response.
    pub trailing: Vec<u8>,
}

impl RawReply {
    /// The statuses of the responses.
    pub fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|r| r.status).collect()
    }
}

/// Connects to `addr` within the time limit.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(READ_LIMIT, TcpStream::connect(addr))
        .await
        .expect("connected within the time limit")
        .expect("the gateway accepts connections")
}

/// Sends `request` on a new connection and reads what comes back.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = connect(addr).await;
    // The gateway may answer and close before reading all of an oversized request: a failed
    // write is not an error here, the reply says what happened.
    let _ = timeout(READ_LIMIT, stream.write_all(request)).await;
    read_reply(&mut stream).await
}

/// Reads until the gateway closes, the time limit passes, or nothing more arrives for a
/// moment after a complete response.
pub async fn read_reply(stream: &mut TcpStream) -> RawReply {
    let deadline = Instant::now() + READ_LIMIT;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut closed = false;
    loop {
        let (complete, _) = parse_responses(&bytes);
        let wait_until = if complete.is_empty() {
            deadline
        } else {
            (Instant::now() + SETTLE).min(deadline)
        };
        match timeout_at(wait_until, stream.read(&mut buf)).await {
            // A reset counts as closed: the gateway dropped the connection.
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let (responses, rest) = parse_responses(&bytes);
    RawReply {
        responses,
        closed,
        trailing: rest.to_vec(),
    }
}

/// Splits `bytes` into complete responses and what is left over.
fn parse_responses(mut bytes: &[u8]) -> (Vec<RawResponse>, &[u8]) {
    let mut responses = Vec::new();
    while let Some((response, rest)) = parse_response(bytes) {
        responses.push(response);
        bytes = rest;
    }
    (responses, bytes)
}

/// One complete response at the start of `bytes`, and the bytes after it.
fn parse_response(bytes: &[u8]) -> Option<(RawResponse, &[u8])> {
    let head_end = find(bytes, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &bytes[head_end + 4..];
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if value("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let (body, rest) = dechunk(rest)?;
        return Some((
            RawResponse {
                status,
                headers,
                body,
            },
            rest,
        ));
    }
    let length: usize = match value("content-length") {
        Some(length) => length.parse().ok()?,
        None => 0,
    };
    let body = rest.get(..length)?.to_vec();
    Some((
        RawResponse {
            status,
            headers,
            body,
        },
        &rest[length..],
    ))
}

/// A whole chunked body at the start of `bytes`, and the bytes after it.
fn dechunk(mut bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut body = Vec::new();
    // Each round consumes at least the size line, so this ends.
    loop {
        let line_end = find(bytes, b"\r\n")?;
        let size_text = std::str::from_utf8(&bytes[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            let end = find(bytes, b"\r\n")?;
            return Some((body, &bytes[end + 2..]));
        }
        body.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size + 2..)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
