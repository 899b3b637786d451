//! The admin session routes on the Redis store: two gateways in this process on one
//! redis-server (`sessiongate-testkit`), in front of one stand-in uploader. What an operator
//! revokes through one gateway's admin listener is refused by the other at its next request.

use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;
use sessiongate::config::StoreConfig;
use sessiongate::sessions::{ManualClock, open_store};
use sessiongate::{Config, Gateway, Listeners, Server};
use sessiongate_testkit::RedisServer;
use share_stand_in::{StandIn, StandInConfig, TokenPair};
use tokio::sync::oneshot;

use crate::sessions::ADMIN_TOKEN;
use crate::support::{ALICE, BOB, CHROME_LINUX, POSTMAN, SECRET, admin_call};

/// One gateway on the shared Redis: its addresses, and what stops it.
struct Replica {
    main: SocketAddr,
    admin: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Replica {
    async fn start(redis: &RedisServer, uploader: &StandIn, clock: Arc<ManualClock>) -> Replica {
        let config = Config {
            upstream: uploader.url(),
            store: StoreConfig {
                backend: "redis".into(),
                redis_url: redis.url(),
                ..StoreConfig::default()
            },
            ..Config::default()
        };
        let env = |name: &str| (name == "SESSIONGATE_ADMIN_TOKEN").then(|| ADMIN_TOKEN.to_string());
        let token = config.load_admin_token(env).expect("a valid admin token");
        let settings = config.settings().expect("valid").with_admin_token(token);
        let store = open_store(&settings, None).await.expect("the Redis store");
        let gateway = Gateway::new(&settings, SECRET.as_bytes(), store, clock);
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let (main, admin) = (bind().await.expect("bind"), bind().await.expect("bind"));
        let addrs = (
            main.local_addr().expect("addr"),
            admin.local_addr().expect("addr"),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            main,
            admin: Some(admin),
            redirect: None,
        };
        tokio::spawn(Server::new(gateway).serve(listeners, async {
            let _ = stopped.await;
        }));
        Replica {
            main: addrs.0,
            admin: addrs.1,
            _stop: stop,
        }
    }

    /// `method path` on the admin listener with the admin token: status and body.
    async fn admin(&self, method: &str, path: &str) -> (StatusCode, Value) {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let url = format!("http://{}{path}", self.admin);
        let r = admin_call(url, method, &[("authorization", &bearer)]).await;
        (r.status, r.json())
    }

    /// A request on the main listener with a token: its status.
    async fn status(&self, path: &str, token: &str) -> StatusCode {
        let url = format!("http://{}{path}", self.main);
        let bearer = format!("Bearer {token}");
        admin_call(url, "GET", &[("authorization", &bearer)])
            .await
            .status
    }

    /// Logs a user in through this gateway.
    async fn login(&self, user: (&str, &str, &str), agent: &str, uploader: &StandIn) -> TokenPair {
        uploader.advance_clock(1);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let body = serde_json::json!({ "email": user.1, "password": user.2 }).to_string();
        let request = http::Request::post(format!("http://{}/api/auth/login", self.main))
            .header("content-type", "application/json")
            .header("user-agent", agent)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .expect("a request");
        let response = client.request(request).await.expect("the gateway answers");
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("a body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        TokenPair {
            access_token: body["access_token"].as_str().expect("a token").into(),
            refresh_token: body["refresh_token"].as_str().expect("a token").into(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_gateways_admin_api_is_refused_by_another_on_the_same_redis() {
    let redis = RedisServer::start();
    let uploader = StandIn::start(StandInConfig {
        secret: SECRET.into(),
        ..StandInConfig::default()
    })
    .await;
    let clock = Arc::new(ManualClock::new());
    let a = Replica::start(&redis, &uploader, clock.clone()).await;
    let b = Replica::start(&redis, &uploader, clock.clone()).await;

    let alice_1 = a.login(ALICE, CHROME_LINUX, &uploader).await;
    let alice_2 = b.login(ALICE, POSTMAN, &uploader).await;
    let bob = a.login(BOB, CHROME_LINUX, &uploader).await;
    for token in [&alice_1, &alice_2, &bob] {
        assert_eq!(
            b.status("/api/account", &token.access_token).await,
            StatusCode::OK
        );
    }
    let listing = b
        .admin("GET", &format!("/admin/users/{}/sessions", ALICE.0))
        .await;
    assert_eq!(listing.0, StatusCode::OK, "{}", listing.1);
    assert_eq!(listing.1["total"], 2, "B lists what A created");
    assert_eq!(
        a.admin("GET", "/admin/sessions/count").await.1["sessions"],
        3
    );

    // "This account is compromised": every session of alice's, through A.
    let (status, body) = a
        .admin("DELETE", &format!("/admin/users/{}/sessions", ALICE.0))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revoked"], 2, "{body}");
    for token in [&alice_1, &alice_2] {
        assert_eq!(
            b.status("/api/account", &token.access_token).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            a.status("/api/account", &token.access_token).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        b.status("/api/account", &bob.access_token).await,
        StatusCode::OK
    );
    assert_eq!(
        b.admin("GET", &format!("/admin/users/{}/sessions", ALICE.0))
            .await
            .1["total"],
        0
    );

    // One session by id through B (found by id alone on Redis), refused by A.
    let bobs = b
        .admin("GET", &format!("/admin/users/{}/sessions", BOB.0))
        .await
        .1;
    let id = bobs["sessions"][0]["_id"]
        .as_str()
        .expect("an id")
        .to_string();
    let (status, body) = b.admin("DELETE", &format!("/admin/sessions/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], BOB.0);
    assert_eq!(
        a.status("/api/account", &bob.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        a.admin("DELETE", &format!("/admin/sessions/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.admin("GET", "/admin/sessions/count").await.1["sessions"],
        0
    );
}
