//! Upstream faults: an uploader that refuses connections, closes them at once, resets one in
//! the middle of the response headers, cuts a body short, is slow to send headers, is slow to
//! send a body, or answers with bytes that are not HTTP.
//!
//! Each test puts the gateway in front of a fake upstream whose behaviour is switched at run
//! time, so the same gateway (and its connection pool) lives through the fault and must
//! recover when the upstream behaves again. In every case the client gets the stated answer
//! (502 or 504 JSON, or a cut stream where the response had started), the gateway stays
//! healthy, the session created before the fault still works unchanged, and requests succeed
//! again once the upstream is back.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use serde_json::json;
use share_stand_in::TokenPair;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// The gateway's `proxy.upstream_timeout_seconds` in these tests.
const UPSTREAM_TIMEOUT_S: u64 = 1;
/// What the fake upstream answers when it behaves.
const GOOD_BODY: &str = r#"{"ok":true}"#;
/// The slow body: this many chunks, one every [`SLOW_CHUNK_EVERY`].
const SLOW_CHUNKS: usize = 10;
const SLOW_CHUNK: &[u8] = b"0123456789abcdef";
const SLOW_CHUNK_EVERY: Duration = Duration::from_millis(300);
/// How long the slow-headers upstream waits before answering (after the gateway gave up).
const SLOW_HEADERS_DELAY: Duration = Duration::from_millis(2500);
/// How long the slowish-headers upstream waits: within the upstream timeout.
const SLOWISH_HEADERS_DELAY: Duration = Duration::from_millis(800);
/// The cut body: the length announced, and what is sent before the connection closes.
const CUT_ANNOUNCED: usize = 1000;
const CUT_SENT: usize = 400;

#[tokio::test]
async fn an_upstream_refusing_connections_is_502_and_the_pool_recovers() {
    fault_scenario(Behaviour::Refuse, Expect::Error(StatusCode::BAD_GATEWAY)).await;
}

#[tokio::test]
async fn an_upstream_closing_connections_at_once_is_502_and_the_pool_recovers() {
    fault_scenario(
        Behaviour::CloseAtOnce,
        Expect::Error(StatusCode::BAD_GATEWAY),
    )
    .await;
}

#[tokio::test]
async fn an_upstream_resetting_in_the_middle_of_its_headers_is_502_and_the_pool_recovers() {
    fault_scenario(
        Behaviour::ResetMidHeaders,
        Expect::Error(StatusCode::BAD_GATEWAY),
    )
    .await;
}

#[tokio::test]
async fn an_upstream_cutting_its_body_short_cuts_the_client_stream_and_the_pool_recovers() {
    fault_scenario(Behaviour::CutBody, Expect::CutStream).await;
}

#[tokio::test]
async fn an_upstream_slow_to_send_headers_is_504_and_the_pool_recovers() {
    fault_scenario(
        Behaviour::SlowHeaders,
        Expect::Error(StatusCode::GATEWAY_TIMEOUT),
    )
    .await;
}

#[tokio::test]
async fn an_upstream_slow_to_send_its_body_is_streamed_whole_without_a_deadline() {
    fault_scenario(Behaviour::SlowBody, Expect::SlowWholeBody).await;
}

#[tokio::test]
async fn an_upstream_answering_garbage_is_502_and_the_pool_recovers() {
    fault_scenario(Behaviour::Garbage, Expect::Error(StatusCode::BAD_GATEWAY)).await;
}

/// Each request on a kept-alive client connection has the whole upstream timeout of its own,
/// counted from when it is sent: not cut short by a deadline an earlier request on the same
/// connection left behind, and still enforced after the connection sat idle past it.
#[tokio::test]
async fn each_request_on_a_kept_connection_has_its_own_upstream_deadline() {
    let env = FaultEnv::start().await;
    let timeout = Duration::from_secs(UPSTREAM_TIMEOUT_S);
    let token = env.tokens.access_token.clone();
    let mut connection = env.h.connect().await;
    let timed = async |connection: &mut Connection| {
        let started = Instant::now();
        let response = connection.get(&env.h, "/api/account", &token).await;
        (response, started.elapsed())
    };

    let (first, _) = timed(&mut connection).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    // The next request starts well within the first one's deadline and answers after it.
    let first_deadline = Instant::now() + timeout;
    tokio::time::sleep(timeout.mul_f64(0.4)).await;
    env.fake.set(Behaviour::SlowishHeaders).await;
    let (second, took) = timed(&mut connection).await;
    assert!(
        Instant::now() > first_deadline,
        "the test's premise: the answer came after the first request's deadline"
    );
    assert_eq!(
        (second.status, second.body.as_ref()),
        (StatusCode::OK, GOOD_BODY.as_bytes()),
        "answered in {took:?}, within its own {timeout:?}: {:?}",
        String::from_utf8_lossy(&second.body)
    );
    assert!(took >= SLOWISH_HEADERS_DELAY, "{took:?}");

    // Idle for longer than the timeout, then an upstream that does not answer in time.
    tokio::time::sleep(timeout.mul_f64(1.5)).await;
    env.fake.set(Behaviour::SlowHeaders).await;
    let (third, took) = timed(&mut connection).await;
    assert_eq!(
        third.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{:?}",
        third.body
    );
    assert_eq!(third.code(), "UPSTREAM_TIMEOUT");
    assert!(
        took >= timeout.mul_f64(0.9) && took < timeout * 2,
        "answered after {took:?} with a {timeout:?} upstream timeout"
    );

    // The same client connection goes on, on a new upstream connection.
    env.fake.set(Behaviour::Good).await;
    let (fourth, _) = timed(&mut connection).await;
    assert_eq!(
        (fourth.status, fourth.body.as_ref()),
        (StatusCode::OK, GOOD_BODY.as_bytes())
    );
}

/// What the client must see while the upstream misbehaves.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status with the matching JSON code, on a session route and on the lifecycle
    /// routes alike.
    Error(StatusCode),
    /// The status and headers arrive, then the body breaks off before its announced length.
    CutStream,
    /// The whole body arrives, over longer than the upstream timeout.
    SlowWholeBody,
}

/// The scenario every test runs, for one behaviour.
async fn fault_scenario(behaviour: Behaviour, expect: Expect) {
    let env = FaultEnv::start().await;
    env.assert_serving("before the fault").await;

    env.fake.set(behaviour).await;
    match expect {
        Expect::Error(status) => env.assert_error_everywhere(status).await,
        Expect::CutStream => env.assert_cut_stream().await,
        Expect::SlowWholeBody => env.assert_slow_whole_body().await,
    }
    env.assert_unharmed(behaviour).await;

    env.fake.set(Behaviour::Good).await;
    env.assert_serving("after the upstream came back").await;
    env.assert_unharmed(behaviour).await;
    env.assert_refresh_token_still_valid().await;
}

/// The gateway in front of a switchable fake upstream, with alice's session created before.
struct FaultEnv {
    h: Harness,
    fake: FakeUpstream,
    tokens: TokenPair,
}

impl FaultEnv {
    /// alice logs in through the gateway in front of the stand-in; then the same store is
    /// served by a gateway in front of the fake upstream.
    async fn start() -> FaultEnv {
        let mut h =
            Harness::start_with(|c| c.proxy.upstream_timeout_seconds = UPSTREAM_TIMEOUT_S).await;
        let tokens = h.login(ALICE, CHROME_LINUX).await;
        let fake = FakeUpstream::start().await;
        h.config.upstream = fake.url();
        h.restart().await;
        FaultEnv { h, fake, tokens }
    }

    /// Several authenticated requests in a row are forwarded and answered by the fake.
    async fn assert_serving(&self, when: &str) {
        for attempt in 1..=3 {
            let response = self.h.get("/api/account", &self.tokens.access_token).await;
            assert_eq!(
                (response.status, response.body.as_ref()),
                (StatusCode::OK, GOOD_BODY.as_bytes()),
                "{when}, request {attempt}: {:?}",
                String::from_utf8_lossy(&response.body)
            );
        }
    }

    /// The session endpoints, login, refresh and a forwarded request all get `status`.
    async fn assert_error_everywhere(&self, status: StatusCode) {
        let code = match status {
            StatusCode::GATEWAY_TIMEOUT => "UPSTREAM_TIMEOUT",
            _ => "UPSTREAM_UNAVAILABLE",
        };
        let timeout = Duration::from_secs(UPSTREAM_TIMEOUT_S);
        let token = &self.tokens.access_token;
        let requests = [
            (
                "a session route",
                self.h.request("GET", "/api/account").token(token),
            ),
            (
                "a login",
                self.h
                    .request("POST", "/api/auth/login")
                    .json(json!({"email": ALICE.1, "password": ALICE.2})),
            ),
            (
                "a refresh",
                self.h
                    .request("POST", "/api/auth/refresh")
                    .json(json!({"refresh_token": self.tokens.refresh_token})),
            ),
            ("a public route", self.h.request("GET", "/api/upload/abc")),
        ];
        for (what, request) in requests {
            let started = Instant::now();
            let response = request.send().await;
            let elapsed = started.elapsed();
            assert_eq!(response.status, status, "{what}: {:?}", response.body);
            assert_eq!(response.code(), code, "{what}");
            let content_type = response.header("content-type").unwrap_or_default();
            assert!(
                content_type.starts_with("application/json"),
                "{what}: {content_type}"
            );
            if status == StatusCode::GATEWAY_TIMEOUT {
                assert!(
                    elapsed >= timeout.mul_f64(0.9) && elapsed < timeout * 2,
                    "{what}: answered after {elapsed:?} with a {timeout:?} upstream timeout"
                );
            }
        }
    }

    /// The status (200) and headers arrive; the body breaks off, or ends short.
    async fn assert_cut_stream(&self) {
        let authorization = format!("Bearer {}", self.tokens.access_token);
        let response = self
            .h
            .send_streaming(
                "GET",
                "/api/account",
                &[("authorization", &authorization)],
                Empty::<Bytes>::new(),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the response had started"
        );
        let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
            .await
            .expect("the cut is noticed, the client is not left waiting");
        match body {
            Err(_) => {}
            Ok(collected) => {
                let len = collected.to_bytes().len();
                assert!(
                    len < CUT_ANNOUNCED,
                    "the client got a whole body of {len} bytes from an upstream that sent \
                     {CUT_SENT} of {CUT_ANNOUNCED}"
                );
            }
        }

        // A refresh reads the upstream's answer whole before passing it on: a cut answer
        // is 502, and the session is not rotated.
        let refresh = self
            .h
            .request("POST", "/api/auth/refresh")
            .json(json!({"refresh_token": self.tokens.refresh_token}))
            .send()
            .await;
        assert_eq!(
            refresh.status,
            StatusCode::BAD_GATEWAY,
            "{:?}",
            refresh.body
        );
        assert_eq!(refresh.code(), "UPSTREAM_UNAVAILABLE");
    }

    /// Headers at once, then a chunk every 300 ms: the whole body arrives, well after the
    /// upstream timeout (which covers headers only).
    async fn assert_slow_whole_body(&self) {
        let expected: Vec<u8> = SLOW_CHUNK.repeat(SLOW_CHUNKS);
        let started = Instant::now();
        let response = self.h.get("/api/account", &self.tokens.access_token).await;
        let elapsed = started.elapsed();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body.as_ref(), expected.as_slice());
        let slowest = SLOW_CHUNK_EVERY * SLOW_CHUNKS as u32;
        assert!(
            elapsed >= slowest.mul_f64(0.9),
            "the body took {elapsed:?}, the upstream spreads it over {slowest:?}"
        );
        assert!(elapsed > Duration::from_secs(UPSTREAM_TIMEOUT_S) * 2);
    }

    /// The gateway is healthy and alice's session is there, unchanged (same access token
    /// hash, nothing new), whatever reached the upstream.
    async fn assert_unharmed(&self, behaviour: Behaviour) {
        let health = self.h.admin_get("/healthz").await;
        assert_eq!(health.status, StatusCode::OK, "after {behaviour:?}");
        let sessions = self.h.sessions(&self.tokens.access_token).await;
        assert_eq!(sessions.len(), 1, "after {behaviour:?}: {sessions:?}");
        assert_eq!(
            sessions[0]["accessTokenHash"],
            sha512_hex(&self.tokens.access_token),
            "after {behaviour:?}: the session was not rotated"
        );
        assert_eq!(self.h.stored_sessions(), 1, "after {behaviour:?}");
    }

    /// Back in front of the real stand-in, the refresh token from before the fault still
    /// rotates the session: no fault revoked it or marked it reused.
    async fn assert_refresh_token_still_valid(mut self) {
        self.h.config.upstream = self.h.uploader.url();
        self.h.restart().await;
        self.h.uploader.advance_clock(1);
        let refresh = self
            .h
            .request("POST", "/api/auth/refresh")
            .json(json!({"refresh_token": self.tokens.refresh_token}))
            .send()
            .await;
        assert_eq!(refresh.status, StatusCode::OK, "{:?}", refresh.body);
        let access = refresh.json()["access_token"]
            .as_str()
            .expect("a new access token")
            .to_string();
        let sessions = self.h.sessions(&access).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0]["accessTokenHash"], sha512_hex(&access));
    }
}

// ---------------------------------------------------------------------------------------
// The fake upstream

/// How the fake upstream treats the next request (or connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Behaviour {
    /// HTTP/1.1 keep-alive, `200 {"ok":true}`.
    Good,
    /// Nothing listens on the port, and every open connection is closed: the upstream is down.
    Refuse,
    /// New connections are closed as soon as accepted; a request on an open one closes it.
    CloseAtOnce,
    /// Half the status line and headers, then a TCP reset.
    ResetMidHeaders,
    /// Headers announcing [`CUT_ANNOUNCED`] bytes, [`CUT_SENT`] of them, then the close.
    CutBody,
    /// Nothing for [`SLOW_HEADERS_DELAY`], then a (late) answer.
    SlowHeaders,
    /// Headers at once, then a chunk every [`SLOW_CHUNK_EVERY`].
    SlowBody,
    /// Bytes that are not HTTP, then the close.
    Garbage,
    /// `200 {"ok":true}` after [`SLOWISH_HEADERS_DELAY`], within the upstream timeout.
    SlowishHeaders,
}

impl Behaviour {
    const ALL: [Behaviour; 9] = [
        Behaviour::Good,
        Behaviour::Refuse,
        Behaviour::CloseAtOnce,
        Behaviour::ResetMidHeaders,
        Behaviour::CutBody,
        Behaviour::SlowHeaders,
        Behaviour::SlowBody,
        Behaviour::Garbage,
        Behaviour::SlowishHeaders,
    ];
}

/// The switch shared by the fake's tasks.
struct Switch {
    mode: AtomicU8,
    changed: Notify,
}

impl Switch {
    fn get(&self) -> Behaviour {
        Behaviour::ALL[usize::from(self.mode.load(Ordering::SeqCst))]
    }
}

/// A raw-TCP upstream on a fixed loopback port whose behaviour can be switched at run time.
struct FakeUpstream {
    addr: SocketAddr,
    switch: Arc<Switch>,
    task: JoinHandle<()>,
}

impl FakeUpstream {
    async fn start() -> FakeUpstream {
        let listener = listen(None).await;
        let addr = listener.local_addr().expect("local addr");
        let switch = Arc::new(Switch {
            mode: AtomicU8::new(Behaviour::Good as u8),
            changed: Notify::new(),
        });
        let task = tokio::spawn(serve(listener, switch.clone()));
        FakeUpstream { addr, switch, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the behaviour; a switch to or from [`Behaviour::Refuse`] has taken effect
    /// (the port closed, or listening again) when this returns.
    async fn set(&self, behaviour: Behaviour) {
        self.switch.mode.store(behaviour as u8, Ordering::SeqCst);
        self.switch.changed.notify_one();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let listening = TcpStream::connect(self.addr).await.is_ok();
            if listening == (behaviour != Behaviour::Refuse) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the fake did not switch to {behaviour:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on `addr` (or a free loopback port), with `SO_REUSEADDR` so the port can be
/// listened on again after a [`Behaviour::Refuse`] spell.
async fn listen(addr: Option<SocketAddr>) -> tokio::net::TcpListener {
    let addr = addr.unwrap_or_else(|| "127.0.0.1:0".parse().expect("an address"));
    let mut last_error = None;
    for _ in 0..100 {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        match socket.bind(addr).and_then(|()| socket.listen(128)) {
            Ok(listener) => return listener,
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("cannot listen on {addr}: {last_error:?}");
}

/// Accepts connections until aborted; while refusing, listens on nothing.
async fn serve(listener: tokio::net::TcpListener, switch: Arc<Switch>) {
    let addr = listener.local_addr().expect("local addr");
    let mut listener = Some(listener);
    let mut connections = JoinSet::new();
    loop {
        let Some(accepting) = &listener else {
            // Down: no listener, no open connection, until switched back.
            connections.shutdown().await;
            while switch.get() == Behaviour::Refuse {
                switch.changed.notified().await;
            }
            listener = Some(listen(Some(addr)).await);
            continue;
        };
        tokio::select! {
            accepted = accepting.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(connection(stream, switch.clone()));
                }
            }
            () = switch.changed.notified() => {
                if switch.get() == Behaviour::Refuse {
                    listener = None;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection: each request is treated as the switch says at the time.
async fn connection(mut stream: TcpStream, switch: Arc<Switch>) {
    stream.set_nodelay(true).ok();
    if switch.get() == Behaviour::CloseAtOnce {
        return;
    }
    let mut buffer = Vec::new();
    while read_request(&mut stream, &mut buffer).await {
        let written = match switch.get() {
            Behaviour::Good => respond(&mut stream, GOOD_BODY.as_bytes()).await,
            Behaviour::Refuse | Behaviour::CloseAtOnce => return,
            Behaviour::ResetMidHeaders => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
                    .await;
                let _ = stream.flush().await;
                // A reset, not an orderly close.
                let _ = stream.set_zero_linger();
                return;
            }
            Behaviour::CutBody => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                     content-length: {CUT_ANNOUNCED}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&[b'x'; CUT_SENT]).await;
                let _ = stream.flush().await;
                return;
            }
            Behaviour::SlowHeaders => {
                // The gateway gives up first; a late answer must never reach another request.
                tokio::time::sleep(SLOW_HEADERS_DELAY).await;
                respond(&mut stream, br#"{"late":true}"#).await
            }
            Behaviour::SlowishHeaders => {
                tokio::time::sleep(SLOWISH_HEADERS_DELAY).await;
                respond(&mut stream, GOOD_BODY.as_bytes()).await
            }
            Behaviour::SlowBody => slow_body(&mut stream).await,
            Behaviour::Garbage => {
                let _ = stream
                    .write_all(b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n")
                    .await;
                let _ = stream.flush().await;
                return;
            }
        };
        if !written {
            return;
        }
    }
}

/// Reads one request head and its `Content-Length` body into nothing, keeping any bytes of
/// the next request in `buffer`. False at the end of the connection.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return false;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let body_len: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + body_len {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    buffer.drain(..head_end + body_len);
    true
}

/// A keep-alive `200` JSON answer. False if the connection is gone.
async fn respond(stream: &mut TcpStream, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

/// Headers at once, then the body a chunk at a time. False if the connection is gone.
async fn slow_body(stream: &mut TcpStream) -> bool {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        SLOW_CHUNK.len() * SLOW_CHUNKS
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    for _ in 0..SLOW_CHUNKS {
        tokio::time::sleep(SLOW_CHUNK_EVERY).await;
        if stream.write_all(SLOW_CHUNK).await.is_err() {
            return false;
        }
    }
    true
}
