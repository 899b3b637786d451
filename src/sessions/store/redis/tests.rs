//! The Redis store's tests: the contract every store keeps ([`contract_tests!`]), each test
//! against a redis-server of its own, then what is Redis's alone (the keys' expiry, the
//! slots, a server that goes away and comes back).

use std::time::{Duration, Instant};

use sessiongate_testkit::RedisServer;

use super::*;
use crate::sessions::store::contract::{Fixture, contract_tests, session};

/// A store on a redis-server of its own; a restart kills the server with SIGKILL, starts it
/// again on its append-only file, and connects anew.
pub(crate) struct RedisFixture {
    server: RedisServer,
    store: RedisStore,
}

/// How long a call may take in these tests.
const TIMEOUT: Duration = Duration::from_millis(500);

pub(crate) async fn connect(url: String) -> RedisStore {
    let target = RedisTarget {
        urls: vec![url],
        cluster: false,
        password: None,
        tls_ca: None,
        timeout: TIMEOUT,
    };
    RedisStore::connect(&target, "test")
        .await
        .expect("the store connects")
}

#[async_trait]
impl Fixture for RedisFixture {
    async fn start() -> Self {
        let server = RedisServer::start();
        let store = connect(server.url()).await;
        RedisFixture { server, store }
    }

    fn store(&self) -> &dyn SessionStore {
        &self.store
    }

    async fn restart(&mut self) {
        self.server.restart();
        self.store = connect(self.server.url()).await;
    }
}

contract_tests!(RedisFixture);

#[tokio::test]
async fn a_users_keys_expire_after_their_latest_session_and_go_with_it() {
    let fixture = RedisFixture::start().await;
    let now = 1_700_000_000_000;
    let day = 86_400_000;
    let early = session(1, "u", now, now + day);
    let late = session(2, "u", now, now + 14 * day);
    fixture.store.create(&early).await.expect("create");
    fixture.store.create(&late).await.expect("create");
    let key = fixture.store.key("u");
    let ttl: i64 = fixture
        .server
        .cli(&["PTTL", &key])
        .trim()
        .parse()
        .expect("a TTL");
    // 14 days and the grace, reckoned from the session's creation, not Redis's clock.
    let expected = 14 * day + KEY_GRACE_MS;
    assert!(
        (expected - 60_000..=expected).contains(&ttl),
        "{key}: {ttl} ms"
    );
    fixture
        .store
        .revoke("u", late.session_id())
        .await
        .expect("revoke");
    fixture
        .store
        .revoke("u", early.session_id())
        .await
        .expect("revoke");
    assert_eq!(
        fixture.server.cli(&["EXISTS", &key]).trim(),
        "0",
        "{key} is gone"
    );
    let users = fixture.server.cli(&["ZCARD", "test:{g}:users"]);
    assert_eq!(users.trim(), "0", "the sweep's index forgets the user");
}

#[tokio::test]
async fn a_sweep_leaves_no_dead_session_listed_counted_or_indexed() {
    let fixture = RedisFixture::start().await;
    let store = &fixture.store;
    for n in 0..40u8 {
        let user = format!("user {}", n % 4);
        store
            .create(&session(
                n,
                &user,
                1_000,
                2_000 + i64::from(n / 4 % 2) * 10_000,
            ))
            .await
            .expect("create");
    }
    assert_eq!(store.count().await.expect("count"), 40);
    assert_eq!(store.sweep_expired(5_000).await.expect("sweep"), 20);
    assert_eq!(store.count().await.expect("count"), 20);
    for n in 0..4u8 {
        let listed = store.list_user(&format!("user {n}")).await.expect("list");
        assert_eq!(listed.len(), 5);
        assert!(listed.iter().all(|s| s.expire_at_ms > 5_000));
    }
    let fields = fixture.server.cli(&["HLEN", "test:{u:user 0}"]);
    assert_eq!(
        fields.trim(),
        "15",
        "a record and two token fields a live session, nothing else"
    );
    assert_eq!(store.sweep_expired(20_000).await.expect("sweep"), 20);
    assert_eq!(store.count().await.expect("count"), 0);
    assert_eq!(
        fixture.server.cli(&["DBSIZE"]).trim(),
        "1",
        "only the count is left"
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_within_the_time_bound_and_comes_back() {
    let mut fixture = RedisFixture::start().await;
    let s = session(1, "u", 1_000, i64::MAX);
    fixture.store.create(&s).await.expect("create");

    fixture.server.kill();
    let started = Instant::now();
    let refused = fixture.store.find_access("u", &s.access_hash).await;
    assert!(
        matches!(&refused, Err(e) if e.is_unavailable()),
        "{refused:?}"
    );
    assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
    assert!(fixture.store.ping().await.is_err());
    assert!(matches!(
        fixture.store.create(&session(2, "u", 1_000, i64::MAX)).await,
        Err(e) if e.is_unavailable()
    ));

    // The same store, with no restart of its own, answers again within 2 s.
    fixture.server.restart();
    let back = Instant::now();
    loop {
        match fixture.store.find_access("u", &s.access_hash).await {
            Ok(found) => {
                assert_eq!(found.map(|g| g.session_id), Some(s.session_id()));
                break;
            }
            Err(error) => assert!(
                back.elapsed() < Duration::from_secs(2),
                "not back within 2 s: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A CA and a `localhost` certificate it signed, as PEM: (CA, certificate, key).
fn tls_files() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("a key");
    let ca = ca_params.self_signed(&ca_key).expect("a CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a key");
    let params = CertificateParams::new(vec!["localhost".to_string()]).expect("a name");
    let leaf = params.signed_by(&key, &issuer).expect("a certificate");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[tokio::test]
async fn a_rediss_url_speaks_tls_to_a_server_of_a_private_authority() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = tls_files();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let (ca_file, cert_file, key_file) = (
        write("ca.pem", &ca),
        write("cert.pem", &cert),
        write("key.pem", &key),
    );
    let tls_port = sessiongate_testkit::free_port(false).to_string();
    let server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert_file,
        "--tls-key-file",
        &key_file,
        "--tls-ca-cert-file",
        &ca_file,
        "--tls-auth-clients",
        "no",
    ]);
    let target = |tls_ca: Option<Vec<u8>>| RedisTarget {
        urls: vec![format!("rediss://localhost:{tls_port}")],
        cluster: false,
        password: None,
        tls_ca,
        timeout: TIMEOUT,
    };
    let store = RedisStore::connect(&target(Some(ca.into_bytes())), "tls")
        .await
        .expect("connects");
    let s = session(1, "u", 1_000, i64::MAX);
    store.create(&s).await.expect("a create over TLS");
    assert_eq!(
        store.get("u", s.session_id()).await.expect("get"),
        Some(s.clone())
    );
    // The plain port holds what came over TLS.
    assert_eq!(server.cli(&["HLEN", "tls:{u:u}"]).trim(), "3");

    // Without the authority, the server's certificate is not trusted: nothing is sent.
    let untrusting = RedisStore::connect(&target(None), "tls")
        .await
        .expect("lazy");
    assert!(matches!(untrusting.ping().await, Err(e) if e.is_unavailable()));
}
