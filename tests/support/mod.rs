//! Builders for the integration tests: the real gateway on `127.0.0.1:0` in front of the
//! in-process stand-in uploader, a controllable clock, and a small HTTP client, so that a
//! test reads like the scenario it checks.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use sessiongate::sessions::{ManualClock, SessionStore, SledStore};
use sessiongate::{Config, Gateway, Listeners, Server};
use share_stand_in::{StandIn, StandInConfig, TokenPair};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The secret shared by the stand-in uploader and the gateway.
pub const SECRET: &str = "integration-test-secret";

/// Chrome 87 on Linux, the first device of `sessions-api.md`.
pub const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36";
/// Postman, the second device of `sessions-api.md`.
pub const POSTMAN: &str = "PostmanRuntime/7.26.8";

/// alice's id and credentials in the stand-in.
pub const ALICE: (&str, &str, &str) = (
    "5f4bff121037e424a17a3ebc",
    "alice@example.com",
    "alice-password",
);
/// bob's.
pub const BOB: (&str, &str, &str) = (
    "5f4bff121037e424a17a3ebd",
    "bob@example.com",
    "bob-password",
);
/// carol has two-factor authentication on (code 123456).
pub const CAROL: (&str, &str, &str) = (
    "5f4bff121037e424a17a3ebe",
    "carol@example.com",
    "carol-password",
);

/// A running gateway with its upstream, store directory and clock.
pub struct Harness {
    /// The stand-in uploader behind the gateway.
    pub uploader: StandIn,
    /// The gateway's clock.
    pub clock: Arc<ManualClock>,
    /// The config the gateway runs with.
    pub config: Config,
    data_dir: TempDir,
    gateway: Option<RunningGateway>,
    /// A handle on the running gateway's store (sled shares one instance between clones).
    store: Option<SledStore>,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct RunningGateway {
    addr: SocketAddr,
    admin: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `code` field of a JSON body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request under construction: `harness.request("GET", "/api/account").token(t).send()`.
pub struct RequestBuilder<'a> {
    harness: &'a Harness,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl RequestBuilder<'_> {
    /// Adds `Authorization: Bearer <token>`.
    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, value: Value) -> Self {
        self.body = Bytes::from(value.to_string());
        self.header("content-type", "application/json")
    }

    /// Sets a form body.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body = Bytes::from(encoded);
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// Sets a body of these bytes with this Content-Type.
    pub fn body(mut self, bytes: impl Into<Bytes>, content_type: &str) -> Self {
        self.body = bytes.into();
        self.header("content-type", content_type)
    }

    /// Sends it on the harness's pooled client and reads the whole response.
    pub async fn send(self) -> TestResponse {
        let request = self.build();
        let response = self
            .harness
            .client
            .request(request)
            .await
            .expect("the gateway answers");
        read(response).await
    }

    /// Sends it on a new, dedicated connection.
    pub async fn send_on_new_connection(self) -> TestResponse {
        let mut connection = self.harness.connect().await;
        connection.send(self.build()).await
    }

    fn build(&self) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.harness.url(&self.path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
            .body(Full::new(self.body.clone()))
            .expect("a valid test request")
    }
}

/// One HTTP/1.1 connection to the gateway, kept open across requests.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Sends a request built by a [`RequestBuilder`] on this connection.
    pub async fn send(&mut self, request: Request<Full<Bytes>>) -> TestResponse {
        self.sender.ready().await.expect("connection ready");
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("the gateway answers");
        read(response).await
    }

    /// GET `path` with a token on this connection.
    pub async fn get(&mut self, harness: &Harness, path: &str, token: &str) -> TestResponse {
        let request = harness.request("GET", path).token(token).build();
        self.send(request).await
    }
}

/// Sends `method` to an admin listener's URL with these headers (any gateway's, as two
/// gateways on one store need).
pub async fn admin_call(admin_url: String, method: &str, headers: &[(&str, &str)]) -> TestResponse {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a method"))
        .uri(admin_url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::new())).expect("a request"))
        .await
        .expect("the admin listener answers");
    read(response).await
}

async fn read(response: http::Response<hyper::body::Incoming>) -> TestResponse {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body arrives").to_bytes();
    TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Waits until no handle holds the sled store in `dir`: the last one dropped (the gateway's,
/// or that of a `sessiongate sessions --direct` run in this process) may hold its lock a
/// moment longer ([`sessiongate_testkit::wait_for_sled_let_go`]). On the blocking pool, so
/// that a task of this runtime still holding it can end meanwhile.
async fn store_let_go(dir: &std::path::Path) {
    let dir = dir.to_path_buf();
    let free = tokio::task::spawn_blocking(move || {
        sessiongate_testkit::wait_for_sled_let_go(&dir, Duration::from_secs(5))
    });
    assert!(
        free.await.expect("the wait does not panic"),
        "the store is still held 5 s after its gateway stopped"
    );
}

impl Harness {
    /// The gateway with the shipped preset's settings, in front of a fresh stand-in.
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    /// Like [`Harness::start`], with the config adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Harness {
        let uploader = StandIn::start(StandInConfig {
            secret: SECRET.into(),
            ..StandInConfig::default()
        })
        .await;
        let data_dir = tempfile::tempdir().expect("a temporary store directory");
        let mut config = Config::from_toml(include_str!("../../config/sessiongate.toml"))
            .expect("the shipped preset parses");
        config.upstream = uploader.url();
        config.data_dir = data_dir.path().join("sessions");
        adjust(&mut config);
        let mut harness = Harness {
            uploader,
            clock: Arc::new(ManualClock::new()),
            config,
            data_dir,
            gateway: None,
            store: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
        };
        harness.start_gateway().await;
        harness
    }

    async fn start_gateway(&mut self) {
        let admin_token = self
            .config
            .load_admin_token(|_| None)
            .expect("a valid admin token");
        let settings = self.config.clone().settings().expect("the config is valid");
        let settings = settings.with_admin_token(admin_token);
        // sled in the data directory, or the Redis the config names (`store.backend`).
        let store: Arc<dyn SessionStore> = if self.config.store.backend == "redis" {
            sessiongate::sessions::open_store(&settings, None)
                .await
                .expect("the Redis store opens")
        } else {
            store_let_go(&self.config.data_dir).await;
            let store = SledStore::open(&self.config.data_dir).expect("the store opens");
            self.store = Some(store.clone());
            Arc::new(store)
        };
        let gateway = Gateway::new(&settings, SECRET.as_bytes(), store, self.clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let admin = admin_listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            main: listener,
            admin: Some(admin_listener),
            redirect: None,
        };
        let task = tokio::spawn(Server::new(gateway).serve(listeners, async {
            let _ = stopped.await;
        }));
        self.gateway = Some(RunningGateway {
            addr,
            admin,
            stop,
            task,
        });
    }

    /// Stops the gateway (graceful shutdown, store closed) and starts it again on the same
    /// store directory, on a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        // Connections pooled to the old port are dead.
        self.client = Client::builder(TokioExecutor::new()).build_http();
        self.start_gateway().await;
    }

    /// Stops the gateway and waits for it to finish, down to its store's lock let go.
    pub async fn stop(&mut self) {
        self.store = None;
        if let Some(running) = self.gateway.take() {
            let _ = running.stop.send(());
            running
                .task
                .await
                .expect("the gateway task does not panic")
                .expect("the gateway stops cleanly");
            if self.config.store.backend != "redis" {
                store_let_go(&self.config.data_dir).await;
            }
        }
    }

    /// How many sessions the running gateway's store holds, expired ones included.
    pub fn stored_sessions(&self) -> usize {
        self.store.as_ref().expect("the gateway is running").count()
    }

    /// The gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.gateway.as_ref().expect("the gateway is running").addr
    }

    /// The admin listener's URL of a path (`/metrics`, `/healthz`, ...).
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self.gateway.as_ref().expect("the gateway is running").admin;
        format!("http://{admin}{path}")
    }

    /// GETs a path on the admin listener.
    pub async fn admin_get(&self, path: &str) -> TestResponse {
        admin_call(self.admin_url(path), "GET", &[]).await
    }

    /// The gateway URL of a path (`/api/...`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), path)
    }

    /// Starts a request.
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            harness: self,
            method: Method::from_bytes(method.as_bytes()).expect("a method"),
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// GET `path` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.request("GET", path).token(token).send().await
    }

    /// Opens a dedicated connection to the gateway.
    pub async fn connect(&self) -> Connection {
        let stream = tokio::net::TcpStream::connect(self.addr())
            .await
            .expect("connect to the gateway");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        Connection { sender }
    }

    /// Logs a user in through the gateway with a User-Agent, expecting tokens. Both clocks
    /// move one second first, so every login gets tokens and a creation time of its own.
    pub async fn login(&self, user: (&str, &str, &str), user_agent: &str) -> TokenPair {
        self.uploader.advance_clock(1);
        self.clock.advance_seconds(1);
        let response = self
            .request("POST", "/api/auth/login")
            .header("user-agent", user_agent)
            .json(serde_json::json!({ "email": user.1, "password": user.2 }))
            .send()
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "login: {:?}",
            response.body
        );
        let body = response.json();
        TokenPair {
            access_token: body["access_token"].as_str().expect("access_token").into(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .into(),
        }
    }

    /// The caller's session list (asserting 200).
    pub async fn sessions(&self, access_token: &str) -> Vec<Value> {
        let response = self.get("/api/account/sessions", access_token).await;
        assert_eq!(response.status, StatusCode::OK, "list: {:?}", response.body);
        response.json()["sessions"]
            .as_array()
            .expect("a sessions array")
            .clone()
    }

    /// How many requests reached the uploader on a path (exact path and query as received).
    pub fn upstream_hits(&self, path: &str) -> usize {
        self.uploader
            .requests()
            .iter()
            .filter(|r| r.path_and_query == path)
            .count()
    }
}

/// SHA-512 of a token, lowercase hex: what the web client compares with `accessTokenHash`.
pub fn sha512_hex(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(token.as_bytes()))
}

/// The entry of a session listing whose `accessTokenHash` is `access_token`'s (asserting
/// there is one).
pub fn listed_session<'l>(listing: &'l [Value], access_token: &str) -> &'l Value {
    let hash = sha512_hex(access_token);
    listing
        .iter()
        .find(|s| s["accessTokenHash"] == hash.as_str())
        .unwrap_or_else(|| panic!("the token's session is listed: {listing:?}"))
}

impl Harness {
    /// Sends `method path` with `headers` and any body (a stream, for bodies too big to hold)
    /// on a new, dedicated HTTP/1.1 connection, and returns the response with its body still
    /// unread, so that a test can read it frame by frame.
    pub async fn send_streaming<B>(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: B,
    ) -> http::Response<hyper::body::Incoming>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = tokio::net::TcpStream::connect(self.addr())
            .await
            .expect("connect to the gateway");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, B>(TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("a method"))
            .uri(path)
            .header(http::header::HOST, self.addr().to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).expect("a valid test request");
        sender.ready().await.expect("connection ready");
        sender
            .send_request(request)
            .await
            .expect("the gateway answers")
    }
}
