//! The real `sessiongate` binary as a child process: `--check-config` exit codes, the
//! `healthcheck` subcommand, the graceful drain on SIGTERM, and logs that never carry a token.
//!
//! Every child runs on loopback ports found free by the OS, with its own temporary data
//! directory, and is killed when its guard drops (also when a test fails).

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use share_stand_in::{StandIn, StandInConfig};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

const BIN: &str = env!("CARGO_BIN_EXE_sessiongate");
const PRESET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sessiongate.toml");
/// The signing secret the child and its stand-in uploader share.
const SECRET: &str = "binary-test-secret-5a1f0c";
const ALICE: (&str, &str) = ("alice@example.com", "alice-password");

/// A loopback address nothing listens on right now (bound, then released).
fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// Reads a child's pipe to the end on a thread, into a shared buffer.
fn drain(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let thread = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("buffer lock")
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, thread)
}

/// A child process, killed and reaped on drop.
struct ChildGuard {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ChildGuard {
    fn spawn(command: &mut Command) -> ChildGuard {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sessiongate binary starts");
        let (stdout, out_reader) = drain(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = drain(child.stderr.take().expect("piped stderr"));
        ChildGuard {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("buffer lock")).to_string()
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("buffer lock")).to_string()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// The exit status if the child has exited (its pipes then read to the end); panics
    /// with its stderr once `deadline`, `limit` after the wait began, has passed.
    fn exit_status_by(&mut self, deadline: Instant, limit: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            for reader in self.readers.drain(..) {
                reader.join().expect("the pipe reader does not panic");
            }
            return Some(status);
        }
        assert!(
            Instant::now() < deadline,
            "the child did not exit within {limit:?}; stderr:\n{}",
            self.stderr()
        );
        None
    }

    /// Waits (without blocking the runtime) for the child to exit, then for its pipes to be
    /// read to the end. Panics with its stderr after `limit`.
    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status_by(deadline, limit) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Like [`ChildGuard::wait_exit`], for tests without a runtime.
    fn wait_exit_blocking(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exit_status_by(deadline, limit) {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM through `kill(1)`.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The binary with an empty environment (nothing of the test runner's leaks in) and a
/// working directory of its own.
fn sessiongate(workdir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.env_clear().current_dir(workdir);
    command
}

/// Runs a short command to its end (at most 20 s): its status, stdout and stderr.
fn run_to_end(command: &mut Command) -> (ExitStatus, String, String) {
    let mut child = ChildGuard::spawn(command);
    let status = child.wait_exit_blocking(Duration::from_secs(20));
    (status, child.stdout(), child.stderr())
}

#[test]
fn check_config_accepts_the_preset_when_the_secret_is_set() {
    let work = tempfile::tempdir().expect("a temp dir");
    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).env("JWT_SECRET", SECRET).args([
            "--check-config",
            "--config",
            PRESET,
        ]));
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        !work.path().join("data").exists(),
        "--check-config must not create the store"
    );
}

#[test]
fn check_config_without_the_secret_exits_64_naming_the_key() {
    let work = tempfile::tempdir().expect("a temp dir");
    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).args(["--check-config", "--config", PRESET]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("auth.secret_env"), "stderr: {stderr}");
}

#[test]
fn check_config_with_a_bad_listen_address_exits_64_naming_the_key() {
    let work = tempfile::tempdir().expect("a temp dir");
    let config = work.path().join("bad.toml");
    std::fs::write(&config, "listen = \"nowhere\"\n").expect("write the config");
    let (status, stdout, stderr) = run_to_end(
        sessiongate(work.path())
            .env("JWT_SECRET", SECRET)
            .arg("--check-config")
            .arg("--config")
            .arg(&config),
    );
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("`listen`"), "stderr: {stderr}");
    assert!(
        stderr.contains("nowhere"),
        "the bad value is named: {stderr}"
    );
}

#[test]
fn an_unknown_argument_exits_64() {
    let work = tempfile::tempdir().expect("a temp dir");
    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).env("JWT_SECRET", SECRET).args([
            "--config",
            PRESET,
            "--frobnicate",
        ]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("--frobnicate"), "stderr: {stderr}");

    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).args(["--config", PRESET, "--to", "elsewhere"]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("--to is an option of compact"),
        "stderr: {stderr}"
    );

    let (status, stdout, stderr) = run_to_end(sessiongate(work.path()).args([
        "compact",
        "--config",
        PRESET,
        "--check-config",
    ]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("compact takes only"), "stderr: {stderr}");
    assert!(
        !work.path().join("data").exists(),
        "nothing was compacted or made"
    );
}

/// A gateway child in front of an in-process stand-in uploader.
struct RunningGateway {
    child: ChildGuard,
    main: SocketAddr,
    admin: SocketAddr,
    uploader: StandIn,
    /// The working directory; the store is in its `sessions`.
    work: TempDir,
}

/// How to start the child.
enum Launch {
    /// The shipped preset, with the addresses and data directory from the environment.
    Preset,
    /// A config file written for the test, with this `[log] format`, and `RUST_LOG=debug`.
    DebugLog { format: &'static str },
}

async fn start_gateway(launch: Launch) -> RunningGateway {
    start_gateway_in(launch, tempfile::tempdir().expect("a temp dir")).await
}

/// Starts the child in `work`, with its store in `work/sessions`.
async fn start_gateway_in(launch: Launch, work: TempDir) -> RunningGateway {
    let uploader = StandIn::start(StandInConfig {
        secret: SECRET.into(),
        ..StandInConfig::default()
    })
    .await;
    let data = work.path().join("sessions");
    let (main, admin) = (free_addr(), free_addr());
    let mut command = sessiongate(work.path());
    command.env("JWT_SECRET", SECRET);
    match launch {
        Launch::Preset => {
            command
                .env("SESSIONGATE_LISTEN", main.to_string())
                .env("SESSIONGATE_ADMIN_LISTEN", admin.to_string())
                .env("SESSIONGATE_UPSTREAM", uploader.url())
                .env("SESSIONGATE_DATA_DIR", &data)
                .args(["--config", PRESET]);
        }
        Launch::DebugLog { format } => {
            let config = work.path().join("sessiongate.toml");
            let text = format!(
                "listen = \"{main}\"\nadmin_listen = \"{admin}\"\nupstream = \"{}\"\n\
                 data_dir = {:?}\n\n[log]\nformat = \"{format}\"\nlevel = \"debug\"\n",
                uploader.url(),
                data.display().to_string(),
            );
            std::fs::write(&config, text).expect("write the config");
            command
                .env("RUST_LOG", "debug")
                .arg("--config")
                .arg(&config);
        }
    }
    let mut child = ChildGuard::spawn(&mut command);
    wait_healthy(&mut child, admin).await;
    RunningGateway {
        child,
        main,
        admin,
        uploader,
        work,
    }
}

/// Polls `/healthz` on the admin listener for up to 10 s.
async fn wait_healthy(child: &mut ChildGuard, admin: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.exited() {
            panic!(
                "the gateway exited early ({status}); stderr:\n{}",
                child.stderr()
            );
        }
        if raw_get(admin, "/healthz", Duration::from_millis(500))
            .await
            .is_some_and(|answer| answer.starts_with("HTTP/1.1 200"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz did not answer within 10 s; stderr:\n{}",
            child.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GET on a new connection with `Connection: close`; the whole answer, if one came.
async fn raw_get(addr: SocketAddr, path: &str, limit: Duration) -> Option<String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(String::from_utf8_lossy(&answer).to_string())
    };
    tokio::time::timeout(limit, exchange).await.ok().flatten()
}

/// One request to the gateway on a new connection: status and JSON body (`null` if empty or
/// not JSON).
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let bytes = match &body {
        Some(value) => {
            request = request.header("content-type", "application/json");
            Bytes::from(value.to_string())
        }
        None => Bytes::new(),
    };
    let request = request.body(Full::new(bytes)).expect("a valid request");
    let exchange = async {
        let response = client.request(request).await.expect("the gateway answers");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body arrives")
            .to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
}

/// Logs alice in through the gateway: her access and refresh tokens.
async fn login(gateway: &RunningGateway) -> (String, String) {
    let (status, body) = call(
        gateway.main,
        "POST",
        "/api/auth/login",
        &[],
        Some(json!({"email": ALICE.0, "password": ALICE.1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "login: {body}");
    let token = |name: &str| body[name].as_str().expect("a token").to_string();
    (token("access_token"), token("refresh_token"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_the_admin_listener_answers_and_1_when_not() {
    let gateway = start_gateway(Launch::Preset).await;
    let work = tempfile::tempdir().expect("a temp dir");

    let admin = gateway.admin.to_string();
    let (status, stdout, stderr) = tokio::task::spawn_blocking({
        let dir = work.path().to_path_buf();
        move || {
            run_to_end(
                sessiongate(&dir)
                    .env("SESSIONGATE_ADMIN_LISTEN", admin)
                    .arg("healthcheck"),
            )
        }
    })
    .await
    .expect("the healthcheck runs");
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");

    let closed = free_addr();
    let (status, stdout, stderr) = tokio::task::spawn_blocking({
        let dir: PathBuf = work.path().to_path_buf();
        move || {
            run_to_end(
                sessiongate(&dir)
                    .env("SESSIONGATE_ADMIN_LISTEN", closed.to_string())
                    .arg("healthcheck"),
            )
        }
    })
    .await
    .expect("the healthcheck runs");
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(&closed.to_string()) && stderr.to_lowercase().contains("connect"),
        "stderr should say it could not connect to {closed}: {stderr:?}"
    );
    drop(gateway);
}

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

/// Drives a login, authenticated requests (header, and query string too), a refresh, a
/// refused stale token and a logout through a child logging at debug level; then stops it
/// and checks its whole log.
async fn no_token_in_the_log(format: &'static str) {
    let mut gateway = start_gateway(Launch::DebugLog { format }).await;
    let main = gateway.main;
    let (access, refresh) = login(&gateway).await;
    let bearer = format!("Bearer {access}");

    let (status, body) = call(
        main,
        "GET",
        "/api/account",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A head over the 16 KiB limit (within the read buffer), its path far past what the
    // access log keeps: refused, and logged cut short.
    let long_path = format!("/api/{}", "p".repeat(20 * 1024));
    let (status, body) = call(main, "GET", &long_path, &[], None).await;
    assert_eq!(
        status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{body}"
    );
    assert_eq!(body["code"], "HEADERS_TOO_LARGE", "{body}");
    let query = format!("/api/account?access_token={access}");
    let (status, body) = call(main, "GET", &query, &[("authorization", &bearer)], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A second later, the uploader's refresh gives new tokens.
    gateway.uploader.advance_clock(1);
    let (status, body) = call(
        main,
        "POST",
        "/api/auth/refresh",
        &[],
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let new_refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert_ne!(new_access, access);
    // The rotated-away access token is refused.
    let (status, body) = call(
        main,
        "GET",
        "/api/account",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let new_bearer = format!("Bearer {new_access}");
    let (status, body) = call(
        main,
        "POST",
        "/api/auth/logout",
        &[("authorization", &new_bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses = [200, 200, 431, 200, 200, 401, 200];

    gateway.child.terminate();
    let exit = gateway.child.wait_exit(Duration::from_secs(31)).await;
    let log = gateway.child.stderr();
    assert_eq!(exit.code(), Some(0), "log:\n{log}");

    let signature = |token: &str| token.rsplit('.').next().expect("a JWT").to_string();
    let secrets = [
        ("the access token", access.clone()),
        ("the refresh token", refresh.clone()),
        ("the new access token", new_access.clone()),
        ("the new refresh token", new_refresh.clone()),
        ("the secret", SECRET.to_string()),
        ("the access token's signature", signature(&access)),
        ("the refresh token's signature", signature(&refresh)),
        ("the new access token's signature", signature(&new_access)),
        ("the new refresh token's signature", signature(&new_refresh)),
    ];
    for (what, needle) in &secrets {
        if let Some(line) = log.lines().find(|l| l.contains(needle.as_str())) {
            panic!("the {format} log contains {what}: {line}");
        }
    }

    let access_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sessiongate::access"))
        .collect();
    assert_eq!(
        access_lines.len(),
        statuses.len(),
        "one access-log line per request:\n{}",
        access_lines.join("\n")
    );
    // The long path is cut to the longest the gateway serves (4 KiB) and an ellipsis.
    for line in &access_lines {
        assert!(line.len() < 4096 + 1024, "a long access-log line: {line}");
    }
    assert!(
        access_lines
            .iter()
            .any(|l| l.contains(&format!("{}…", "p".repeat(100)))),
        "the long path is logged, cut:\n{}",
        access_lines.join("\n")
    );
    if format == "json" {
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            if let Err(e) = serde_json::from_str::<Value>(line) {
                panic!("a log line is not JSON ({e}): {line}");
            }
        }
        for (line, expected) in access_lines.iter().zip(statuses) {
            let entry: Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(entry["target"], "sessiongate::access", "{line}");
            assert_eq!(entry["status"], expected, "{line}");
            assert!(entry["route"].is_string(), "{line}");
            assert!(entry["path"].is_string(), "{line}");
        }
    } else {
        for (line, expected) in access_lines.iter().zip(statuses) {
            let line = strip_ansi(line);
            assert!(line.contains(&format!("status={expected}")), "{line}");
            assert!(line.contains("route="), "{line}");
        }
    }
    assert!(
        log.contains("sessiongate listening"),
        "the startup line is logged:\n{log}"
    );
    // stderr is a pipe here, as under systemd, Docker or a log shipper: no colour codes.
    if let Some(line) = log.lines().find(|l| l.contains('\u{1b}')) {
        panic!("the {format} log written to a pipe contains ANSI escape codes: {line:?}");
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... final-byte`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_log_never_contains_a_token() {
    no_token_in_the_log("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_never_contains_a_token() {
    no_token_in_the_log("json").await;
}

/// `compact` with the preset and `extra` arguments, on the store in `work/sessions`: status,
/// stdout and stderr.
async fn compact(work: &Path, extra: &[&str]) -> (ExitStatus, String, String) {
    let mut command = sessiongate(work);
    command
        .env("SESSIONGATE_DATA_DIR", work.join("sessions"))
        .args(["compact", "--config", PRESET])
        .args(extra);
    tokio::task::spawn_blocking(move || run_to_end(&mut command))
        .await
        .expect("the compaction's waiter does not panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_refuses_a_running_gateways_store_then_keeps_every_session() {
    let gateway = start_gateway(Launch::Preset).await;
    let (access, _) = login(&gateway).await;
    let bearer = format!("Bearer {access}");
    let list = |main| {
        let bearer = bearer.clone();
        async move {
            call(
                main,
                "GET",
                "/api/account/sessions",
                &[("authorization", &bearer)],
                None,
            )
            .await
        }
    };
    let (status, before) = list(gateway.main).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["total"], 1, "{before}");

    // The running gateway holds the store: refused, exit 1, and the gateway carries on.
    let (status, stdout, stderr) = compact(gateway.work.path(), &[]).await;
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("stop the gateway first"),
        "stderr: {stderr}"
    );
    assert_eq!(list(gateway.main).await, (StatusCode::OK, before.clone()));

    // Stopped, the store is compacted into another directory, then in place...
    let RunningGateway {
        mut child, work, ..
    } = gateway;
    child.terminate();
    let status = child.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "the gateway stops: {status}");
    let (status, stdout, stderr) = compact(work.path(), &["--to", "copy"]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("point data_dir at it"), "stdout: {stdout}");
    assert!(work.path().join("copy").join("db").is_file());
    let (status, stdout, stderr) = compact(work.path(), &[]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("copied and checked"), "stdout: {stdout}");
    assert!(!work.path().join("sessions.compacting").exists());

    // ...and a gateway on it knows the session, whose token still works and still revokes.
    let gateway = start_gateway_in(Launch::Preset, work).await;
    assert_eq!(list(gateway.main).await, (StatusCode::OK, before));
    let (status, body) = call(
        gateway.main,
        "DELETE",
        "/api/account/sessions",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(list(gateway.main).await.0, StatusCode::UNAUTHORIZED);
}
