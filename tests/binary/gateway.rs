//! The binary run as a gateway in front of an in-process stand-in uploader, on free loopback
//! ports and a temporary working directory, and the requests the tests send it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use share_stand_in::{StandIn, StandInConfig};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::child::{ChildGuard, PRESET, SECRET, free_addr, sessiongate};

pub(crate) const ALICE: (&str, &str) = ("alice@example.com", "alice-password");

/// A gateway child in front of an in-process stand-in uploader.
pub(crate) struct RunningGateway {
    pub(crate) child: ChildGuard,
    pub(crate) main: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) uploader: StandIn,
    /// The working directory; the store is in its `sessions`.
    pub(crate) work: TempDir,
}

/// How to start the child.
pub(crate) enum Launch {
    /// The shipped preset, with the addresses and data directory from the environment.
    Preset,
    /// The same, with this admin token in `SESSIONGATE_ADMIN_TOKEN`.
    PresetWithAdminToken(&'static str),
    /// A config file written for the test, with this `[log] format`, and `RUST_LOG=debug`.
    DebugLog { format: &'static str },
}

pub(crate) async fn start_gateway(launch: Launch) -> RunningGateway {
    start_gateway_in(launch, tempfile::tempdir().expect("a temp dir")).await
}

/// Starts the child in `work`, with its store in `work/sessions`.
pub(crate) async fn start_gateway_in(launch: Launch, work: TempDir) -> RunningGateway {
    let uploader = StandIn::start(StandInConfig {
        secret: SECRET.into(),
        ..StandInConfig::default()
    })
    .await;
    let data = work.path().join("sessions");
    let (main, admin) = (free_addr(), free_addr());
    let mut command = sessiongate(work.path());
    command.env("JWT_SECRET", SECRET);
    if let Launch::PresetWithAdminToken(token) = launch {
        command.env("SESSIONGATE_ADMIN_TOKEN", token);
    }
    match launch {
        Launch::Preset | Launch::PresetWithAdminToken(_) => {
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
pub(crate) async fn raw_get(addr: SocketAddr, path: &str, limit: Duration) -> Option<String> {
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
pub(crate) async fn call(
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

/// Stops the child with SIGTERM, asserts it exits 0, and gives back its working directory.
pub(crate) async fn stop_gracefully(gateway: RunningGateway) -> TempDir {
    let RunningGateway {
        mut child, work, ..
    } = gateway;
    child.terminate();
    let status = child.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "the gateway stops: {status}");
    work
}

/// `GET /api/account/sessions` on `main` with the access token `access`: status and body.
pub(crate) async fn list_sessions(main: SocketAddr, access: &str) -> (StatusCode, Value) {
    let bearer = format!("Bearer {access}");
    call(
        main,
        "GET",
        "/api/account/sessions",
        &[("authorization", &bearer)],
        None,
    )
    .await
}

/// Logs alice in through the gateway: her access and refresh tokens.
pub(crate) async fn login(gateway: &RunningGateway) -> (String, String) {
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
