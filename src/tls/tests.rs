use std::net::SocketAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P384_SHA384,
    SerialNumber,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::*;

// Keys rcgen's ring backend cannot make or write; see tests/fixtures/tls/README.md.
const RSA_PKCS1: &str = include_str!("../../tests/fixtures/tls/rsa-pkcs1.pem");
const RSA_PKCS8: &str = include_str!("../../tests/fixtures/tls/rsa-pkcs8.pem");
const EC_SEC1: &str = include_str!("../../tests/fixtures/tls/ec-sec1.pem");
const EC_PKCS8: &str = include_str!("../../tests/fixtures/tls/ec-pkcs8.pem");

/// Bounds every network step, so a broken handshake fails the test instead of hanging it.
const STEP: Duration = Duration::from_secs(10);

/// A test CA issuing `localhost` certificates with chosen serials.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "sessiongate test CA");
        let key = KeyPair::generate().expect("P-256 key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A PEM chain, leaf then CA, for `localhost` with `serial` and `key`'s public half.
    fn chain(&self, key: &KeyPair, serial: u64) -> String {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("name");
        params.serial_number = Some(SerialNumber::from(serial));
        let leaf = params.signed_by(key, &self.issuer).expect("signed leaf");
        format!("{}{}", leaf.pem(), self.pem)
    }
}

/// Writes `contents` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

/// Writes a chain for a fresh P-256 key with `serial`; returns (cert path, key path).
fn write_pair(dir: &Path, ca: &TestCa, serial: u64) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("P-256 key");
    let cert = write(dir, "cert.pem", ca.chain(&key, serial));
    let key = write(dir, "key.pem", key.serialize_pem());
    (cert, key)
}

/// Serves `store` on 127.0.0.1 with an echo behind TLS: every byte read is written back.
async fn serve(store: Arc<CertStore>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = acceptor(store);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is the client's failure to report, not ours.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let (mut reader, mut writer) = tokio::io::split(tls);
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                }
            });
        }
    });
    addr
}

/// A client trusting `ca` only, speaking `versions` and offering `alpn`.
fn connector(
    ca: &CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("CA certificate");
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("ring supports these versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A resumed session reports the certificate of the session it resumes: every connection
    // here must do a full handshake to show the certificate served now.
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

fn default_connector(ca: &CertificateDer<'static>) -> TlsConnector {
    connector(ca, &[&TLS13, &TLS12], &[b"h2", b"http/1.1"])
}

async fn connect(addr: SocketAddr, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let name = ServerName::try_from("localhost").expect("server name");
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

fn peer_serial(stream: &TlsStream<TcpStream>) -> String {
    let chain = stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("server chain");
    serial_hex_of(&chain[0]).expect("leaf parses")
}

fn alpn(stream: &TlsStream<TcpStream>) -> Option<&[u8]> {
    stream.get_ref().1.alpn_protocol()
}

/// Sends `bytes` and expects them back from the echo server.
async fn echo(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
    let mut back = vec![0; bytes.len()];
    tokio::time::timeout(STEP, stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read echo");
    assert_eq!(back, bytes);
}

fn load_err(cert: &Path, key: &Path) -> TlsError {
    CertStore::load(cert, key).expect_err("loading should fail")
}

/// The operator must learn which file is wrong from the message alone.
fn assert_names(error: &TlsError, path: &Path) {
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} does not name {}",
        path.display()
    );
}

#[test]
fn loads_pkcs8_ecdsa_and_reports_the_leaf_serial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    for (serial, hex) in [
        (1, "1"),
        (0xff, "ff"),
        (0x0123_4567_89ab_cdef, "123456789abcdef"),
    ] {
        let (cert, key) = write_pair(dir.path(), &ca, serial);
        let store = CertStore::load(&cert, &key).expect("load");
        assert_eq!(store.serial_hex(), hex);
    }
    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("P-384 key");
    let cert = write(dir.path(), "p384.crt", ca.chain(&p384, 7));
    let key = write(dir.path(), "p384.key", p384.serialize_pem());
    assert_eq!(
        CertStore::load(&cert, &key).expect("P-384").serial_hex(),
        "7"
    );
}

#[test]
fn loads_rsa_and_ec_keys_in_every_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    for (pkcs8, served) in [
        (RSA_PKCS8, RSA_PKCS8),
        (RSA_PKCS8, RSA_PKCS1),
        (EC_PKCS8, EC_PKCS8),
        (EC_PKCS8, EC_SEC1),
    ] {
        let signer = KeyPair::from_pem(pkcs8).expect("fixture key");
        let cert = write(dir.path(), "cert.pem", ca.chain(&signer, 42));
        let key = write(dir.path(), "key.pem", served);
        let store = CertStore::load(&cert, &key).expect("load");
        assert_eq!(store.serial_hex(), "2a");
    }
}

#[test]
fn one_file_may_hold_both_certificate_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let key = KeyPair::generate().expect("key");
    let both = write(
        dir.path(),
        "both.pem",
        format!("{}{}", key.serialize_pem(), ca.chain(&key, 3)),
    );
    assert_eq!(
        CertStore::load(&both, &both).expect("load").serial_hex(),
        "3"
    );
}

#[test]
fn missing_files_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = write_pair(dir.path(), &TestCa::new(), 1);
    let missing = dir.path().join("missing.pem");

    let error = load_err(&missing, &key);
    assert!(matches!(
        error,
        TlsError::Read {
            file: TlsFile::Certificate,
            ..
        }
    ));
    assert_names(&error, &missing);
    let error = load_err(&cert, &missing);
    assert!(matches!(
        error,
        TlsError::Read {
            file: TlsFile::Key,
            ..
        }
    ));
    assert_names(&error, &missing);
}

#[test]
fn garbage_files_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = write_pair(dir.path(), &TestCa::new(), 1);

    let garbage = write(dir.path(), "garbage.pem", "this is not PEM\n\0\u{1}\n");
    let error = load_err(&garbage, &key);
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    assert_names(&error, &garbage);
    let error = load_err(&cert, &garbage);
    assert!(matches!(error, TlsError::NoKey { .. }), "{error}");
    assert_names(&error, &garbage);

    let unterminated = write(dir.path(), "cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let error = load_err(&unterminated, &key);
    assert!(matches!(
        error,
        TlsError::Pem {
            file: TlsFile::Certificate,
            ..
        }
    ));
    assert_names(&error, &unterminated);
    assert!(
        error.to_string().contains("-----END CERTIFICATE-----"),
        "{error}"
    );

    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let bad_base64 = write(dir.path(), "base64.pem", bad_base64);
    let error = load_err(&bad_base64, &key);
    assert!(matches!(error, TlsError::Pem { .. }), "{error}");
    assert_names(&error, &bad_base64);

    let not_x509 = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let not_x509 = write(dir.path(), "not-x509.pem", not_x509);
    let error = load_err(&not_x509, &key);
    assert!(
        matches!(error, TlsError::BadCertificate { index: 1, .. }),
        "{error}"
    );
    assert_names(&error, &not_x509);

    let not_a_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let not_a_key = write(dir.path(), "not-a-key.pem", not_a_key);
    let error = load_err(&cert, &not_a_key);
    assert!(matches!(error, TlsError::BadKey { .. }), "{error}");
    assert_names(&error, &not_a_key);
}

#[test]
fn a_file_without_its_item_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = write_pair(dir.path(), &TestCa::new(), 1);
    // Each file holds only what the other should.
    let error = load_err(&key, &key);
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    assert_names(&error, &key);
    let error = load_err(&cert, &cert);
    assert!(matches!(error, TlsError::NoKey { .. }), "{error}");
    assert_names(&error, &cert);
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, _) = write_pair(dir.path(), &ca, 1);
    for other in [
        KeyPair::generate().expect("P-256 key").serialize_pem(),
        RSA_PKCS1.to_string(),
    ] {
        let other = write(dir.path(), "other.key", other);
        let error = load_err(&cert, &other);
        assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
        assert_names(&error, &cert);
        assert_names(&error, &other);
    }
}

#[tokio::test]
async fn alpn_prefers_h2_then_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, key) = write_pair(dir.path(), &ca, 1);
    let addr = serve(CertStore::load(&cert, &key).expect("load")).await;

    let (h2, http1): (&[u8], &[u8]) = (b"h2", b"http/1.1");
    for (offer, expected) in [
        (vec![h2, http1], Some(h2)),
        // The server's preference wins over the client's order.
        (vec![http1, h2], Some(h2)),
        (vec![http1], Some(http1)),
        (vec![], None),
    ] {
        let stream = connect(addr, &connector(&ca.der, &[&TLS13, &TLS12], &offer)).await;
        assert_eq!(alpn(&stream), expected, "client offered {offer:?}");
    }
}

#[tokio::test]
async fn tls12_only_and_tls13_only_clients_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, key) = write_pair(dir.path(), &ca, 1);
    let addr = serve(CertStore::load(&cert, &key).expect("load")).await;
    for (version, expected) in [
        (&TLS12, ProtocolVersion::TLSv1_2),
        (&TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let mut stream = connect(addr, &connector(&ca.der, &[version], &[b"h2"])).await;
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        assert_eq!(alpn(&stream), Some(&b"h2"[..]));
        echo(&mut stream, b"hello").await;
    }
}

#[tokio::test]
async fn rsa_pkcs1_and_ec_sec1_keys_serve_handshakes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    for (pkcs8, served) in [(RSA_PKCS8, RSA_PKCS1), (EC_PKCS8, EC_SEC1)] {
        let signer = KeyPair::from_pem(pkcs8).expect("fixture key");
        let cert = write(dir.path(), "cert.pem", ca.chain(&signer, 9));
        let key = write(dir.path(), "key.pem", served);
        let addr = serve(CertStore::load(&cert, &key).expect("load")).await;
        for version in [&TLS12, &TLS13] {
            let mut stream = connect(addr, &connector(&ca.der, &[version], &[])).await;
            assert_eq!(peer_serial(&stream), "9");
            echo(&mut stream, b"signed").await;
        }
    }
}

#[tokio::test]
async fn reload_serves_new_connections_the_new_certificate_and_keeps_open_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, key) = write_pair(dir.path(), &ca, 1);
    let store = CertStore::load(&cert, &key).expect("load");
    let addr = serve(store.clone()).await;
    let client = default_connector(&ca.der);

    let mut a = connect(addr, &client).await;
    assert_eq!(peer_serial(&a), "1");
    echo(&mut a, b"before").await;

    write_pair(dir.path(), &ca, 2);
    store.reload().expect("reload");
    assert_eq!(store.serial_hex(), "2");
    let mut b = connect(addr, &client).await;
    assert_eq!(peer_serial(&b), "2");
    echo(&mut b, b"new connection").await;
    // The open connection keeps working, both ways, on the keys it negotiated.
    echo(&mut a, b"after the reload").await;

    let garbage = write(dir.path(), "cert.pem", "not a certificate");
    let error = store.reload().expect_err("garbage is refused");
    assert_names(&error, &garbage);
    assert_eq!(store.serial_hex(), "2");
    let mut c = connect(addr, &client).await;
    assert_eq!(peer_serial(&c), "2");
    echo(&mut c, b"still 2").await;
    echo(&mut a, b"and A").await;
}

#[tokio::test]
async fn reload_refuses_a_half_rotated_pair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new();
    let (cert, key) = write_pair(dir.path(), &ca, 1);
    let store = CertStore::load(&cert, &key).expect("load");
    // The new certificate is in place but its key is not yet.
    let next = KeyPair::generate().expect("key");
    write(dir.path(), "cert.pem", ca.chain(&next, 2));
    let error = store.reload().expect_err("mismatch is refused");
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
    assert_eq!(store.serial_hex(), "1");
    write(dir.path(), "key.pem", next.serialize_pem());
    store.reload().expect("complete pair");
    assert_eq!(store.serial_hex(), "2");
}
