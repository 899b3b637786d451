//! The gateway as a TLS-terminating listener: HTTP/1.1 and HTTP/2 over TLS, ALPN, the
//! certificate reload (admin request and what new and old connections see), and the
//! plain-HTTP redirect listener.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;
use sessiongate::sessions::{ManualClock, SledStore};
use sessiongate::tls::CertStore;
use sessiongate::{Config, Gateway, Listeners, Server};
use share_stand_in::{StandIn, StandInConfig};
use support::{ALICE, SECRET};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const STEP: Duration = Duration::from_secs(10);

/// A CA that issues `localhost` certificates with chosen serials.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes `cert.pem` and `key.pem` for a fresh key with `serial` into `dir`.
    fn write_pair(&self, dir: &Path, serial: u64) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, leaf.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Every connection does a full handshake, so it shows the certificate served now.
        config.resumption = rustls::client::Resumption::disabled();
        TlsConnector::from(Arc::new(config))
    }
}

/// A gateway on TLS, with an admin and a redirect listener, in front of a stand-in.
struct TlsGateway {
    uploader: StandIn,
    main: SocketAddr,
    admin: SocketAddr,
    redirect: SocketAddr,
    ca: TestCa,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TlsGateway {
    async fn start() -> TlsGateway {
        let uploader = StandIn::start(StandInConfig {
            secret: SECRET.into(),
            ..StandInConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let (cert, key) = ca.write_pair(dir.path(), 1);
        let config = Config {
            upstream: uploader.url(),
            data_dir: dir.path().join("sessions"),
            ..Config::default()
        };
        let store = SledStore::open(&config.data_dir).unwrap();
        let gateway = Gateway::new(
            &config.settings().unwrap(),
            SECRET.as_bytes(),
            Arc::new(store),
            Arc::new(ManualClock::new()),
        );
        let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
        let (main, admin, redirect) = (bind().await, bind().await, bind().await);
        let addrs = (
            main.local_addr().unwrap(),
            admin.local_addr().unwrap(),
            redirect.local_addr().unwrap(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Server::new(gateway).with_tls(CertStore::load(&cert, &key).unwrap());
        let listeners = Listeners {
            main,
            admin: Some(admin),
            redirect: Some(redirect),
        };
        tokio::spawn(server.serve(listeners, async {
            let _ = stopped.await;
        }));
        TlsGateway {
            uploader,
            main: addrs.0,
            admin: addrs.1,
            redirect: addrs.2,
            ca,
            dir,
            _stop: stop,
        }
    }

    async fn connect(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.main).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(STEP, self.ca.connector(alpn).connect(name, tcp))
            .await
            .expect("handshake in time")
            .expect("handshake")
    }
}

fn serial(stream: &TlsStream<TcpStream>) -> String {
    let leaf = &stream.get_ref().1.peer_certificates().unwrap()[0];
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
    format!("{:x}", cert.serial)
}

/// An HTTP/1.1 or HTTP/2 sender over a TLS stream, by the negotiated ALPN.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn over(stream: TlsStream<TcpStream>) -> Sender {
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Sender::H1(sender)
        }
    }

    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, Version, serde_json::Value) {
        let response = match self {
            Sender::H1(s) => s.send_request(request).await.unwrap(),
            Sender::H2(s) => s.send_request(request).await.unwrap(),
        };
        let (status, version) = (response.status(), response.version());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            version,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }
}

fn login_request(uri: &str) -> Request<Full<Bytes>> {
    let body = json!({"email": ALICE.1, "password": ALICE.2}).to_string();
    Request::post(uri)
        .header("content-type", "application/json")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn get(uri: &str, token: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn http1_and_http2_over_tls_by_alpn_with_an_http1_upstream() {
    let g = TlsGateway::start().await;
    for (alpn, version) in [
        (&[&b"h2"[..], b"http/1.1"][..], Version::HTTP_2),
        (&[&b"http/1.1"[..]][..], Version::HTTP_11),
    ] {
        let stream = g.connect(alpn).await;
        let expected_alpn: &[u8] = if version == Version::HTTP_2 {
            b"h2"
        } else {
            b"http/1.1"
        };
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(expected_alpn));
        let mut sender = Sender::over(stream).await;
        let (status, got, body) = sender
            .send(login_request("https://localhost/api/auth/login"))
            .await;
        assert_eq!((status, got), (StatusCode::OK, version));
        let token = body["access_token"].as_str().unwrap().to_string();
        let (status, got, body) = sender
            .send(get("https://localhost/api/account/sessions", &token))
            .await;
        assert_eq!((status, got), (StatusCode::OK, version));
        assert!(body["total"].as_u64().unwrap() >= 1);
        g.uploader.advance_clock(1);
    }
    // The upstream was spoken to in HTTP/1.1 and told the client used TLS.
    let logins: Vec<_> = g
        .uploader
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query == "/auth/login")
        .collect();
    assert_eq!(logins.len(), 2);
    assert!(
        logins
            .iter()
            .all(|r| r.header("x-forwarded-proto") == Some("https"))
    );
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_old_ones() {
    let g = TlsGateway::start().await;
    let old = g.connect(&[b"http/1.1"]).await;
    assert_eq!(serial(&old), "1");
    let mut old = Sender::over(old).await;
    let (status, _, body) = old
        .send(login_request("https://localhost/api/auth/login"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_string();

    g.ca.write_pair(g.dir.path(), 2);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let reload = Request::post(format!("http://{}/reload-tls", g.admin))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = client.request(reload).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value =
        serde_json::from_slice(&answer.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body, json!({"code": "TLS_RELOADED", "serial": "2"}));

    let new = g.connect(&[b"http/1.1"]).await;
    assert_eq!(
        serial(&new),
        "2",
        "a new connection sees the new certificate"
    );
    let (status, _, _) = old.send(get("https://localhost/api/account", &token)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the old connection survived the reload"
    );

    // A broken file keeps the current certificate.
    std::fs::write(g.dir.path().join("cert.pem"), "not a certificate").unwrap();
    let reload = Request::post(format!("http://{}/reload-tls", g.admin))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = client.request(reload).await.unwrap();
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "TLS_RELOAD_FAILED");
    assert!(
        body["error"].as_str().unwrap().contains("cert.pem"),
        "{body}"
    );
    assert_eq!(serial(&g.connect(&[b"http/1.1"]).await), "2");
}

#[tokio::test]
async fn the_redirect_listener_sends_plain_http_to_https_with_308() {
    let g = TlsGateway::start().await;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(format!("http://{}/api/account?x=1", g.redirect))
        .header("host", "share.example.com")
        .body(Full::<Bytes>::new(Bytes::new()))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        "https://share.example.com/api/account?x=1"
    );
    assert!(g.uploader.requests().is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn a_plain_http_client_on_the_tls_port_gets_no_answer() {
    let g = TlsGateway::start().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(g.main).await.unwrap();
    tcp.write_all(b"GET /api/account HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(STEP, tcp.read_to_end(&mut buffer)).await;
    assert!(
        !buffer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP must not be served on the TLS port: {read:?}"
    );
    assert!(g.uploader.requests().is_empty());
}

/// The real binary, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The serial a new TLS connection to `addr` is shown, if a handshake succeeds now.
async fn serial_at(addr: SocketAddr, ca: &TestCa) -> Option<String> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = ServerName::try_from("localhost").unwrap();
    let connect = ca.connector(&[b"http/1.1"]).connect(name, tcp);
    let stream = tokio::time::timeout(STEP, connect).await.ok()?.ok()?;
    Some(serial(&stream))
}

#[tokio::test]
async fn sighup_reloads_the_certificate_of_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (cert, key) = ca.write_pair(dir.path(), 7);
    let (main, admin) = (free_addr(), free_addr());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sessiongate"))
        .args([
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/sessiongate.toml"),
        ])
        .env("JWT_SECRET", SECRET)
        .env("SESSIONGATE_LISTEN", main.to_string())
        .env("SESSIONGATE_ADMIN_LISTEN", admin.to_string())
        .env("SESSIONGATE_UPSTREAM", "http://127.0.0.1:1")
        .env("SESSIONGATE_DATA_DIR", dir.path().join("sessions"))
        .env("SESSIONGATE_TLS_CERT", &cert)
        .env("SESSIONGATE_TLS_KEY", &key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);

    let mut first = None;
    for _ in 0..200 {
        first = serial_at(main, &ca).await;
        if first.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        first.as_deref(),
        Some("7"),
        "the binary serves its certificate"
    );

    ca.write_pair(dir.path(), 8);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut seen = None;
    for _ in 0..100 {
        seen = serial_at(main, &ca).await;
        if seen.as_deref() == Some("8") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.as_deref(),
        Some("8"),
        "after SIGHUP new connections see the new serial"
    );
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "SIGHUP does not stop the gateway"
    );
}
