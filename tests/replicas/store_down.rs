//! Redis stopped or hanging: session routes and the session endpoints fail closed with 503
//! `STORE_UNAVAILABLE` within the store's time bound, public routes keep forwarding,
//! `/readyz` names the failing store, the failures are counted, and when Redis is back the
//! same gateway serves again within 2 s.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use sessiongate_testkit::RedisServer;

use crate::fleet::{Fleet, Replica, SharedStore};

/// The default `store.timeout_ms`, and what a refusal may take beyond it.
const BOUND: Duration = Duration::from_millis(1_000);
const SLACK: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_session_routes_fail_closed_and_recover_without_a_restart() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let fleet = Fleet::start(
        SharedStore {
            url: &url,
            cluster: false,
        },
        1,
        3,
    )
    .await;
    let gateway = &fleet.replicas[0];
    let (access, _) = gateway.login(0).await;
    assert_eq!(gateway.account(&access).await, StatusCode::OK);

    // Stopped: connections refused.
    redis.kill();
    assert_fails_closed(gateway, &access).await;
    let metrics = gateway.metrics().await;
    assert!(
        failures(&metrics, "unavailable") >= 1.0,
        "store errors not counted:\n{metrics}"
    );
    redis.restart();
    assert_recovers(gateway, &access).await;

    // Hanging: connections open, no answers (SIGSTOP), so only the time bound ends a call.
    redis.pause();
    assert_fails_closed(gateway, &access).await;
    let metrics = gateway.metrics().await;
    assert!(
        failures(&metrics, "timeout") + failures(&metrics, "unavailable") >= 2.0,
        "{metrics}"
    );
    redis.resume();
    assert_recovers(gateway, &access).await;
}

/// Session routes, the session endpoints and logins answer 503 within the bound; a public
/// route is forwarded; `/readyz` is 503 and names the store.
async fn assert_fails_closed(gateway: &Replica, access: &str) {
    for (method, path) in [
        (Method::GET, "/api/account"),
        (Method::GET, "/api/account/sessions"),
        (Method::DELETE, "/api/account/sessions"),
    ] {
        let started = Instant::now();
        let answer = gateway.call(method.clone(), path, Some(access), None).await;
        let took = started.elapsed();
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}"
        );
        assert_eq!(
            answer.code(),
            "STORE_UNAVAILABLE",
            "{method} {path}: {}",
            answer.body
        );
        assert!(took < BOUND + SLACK, "{method} {path} took {took:?}");
    }
    let login = gateway
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(serde_json::json!({"email": "user1@example.com", "password": "password-1"})),
        )
        .await;
    assert_eq!(
        login.code(),
        "STORE_UNAVAILABLE",
        "a login that cannot be recorded"
    );
    // Public: forwarded without the store (the stand-in answers an unknown upload 404).
    let public = gateway
        .call(
            Method::GET,
            "/api/upload/0123456789abcdef01234567",
            None,
            None,
        )
        .await;
    assert_ne!(
        public.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        public.body
    );
    assert!(public.status.is_client_error() || public.status.is_success());
    let ready = gateway.admin_get("/readyz").await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert_eq!(ready.body["store"], "failing");
    assert_eq!(ready.body["store_backend"], "redis");
}

/// The same gateway serves the session again within 2 s of Redis answering.
async fn assert_recovers(gateway: &Replica, access: &str) {
    let back = Instant::now();
    loop {
        let status = gateway.account(access).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "still {status} after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gateway.admin_get("/readyz").await.status, StatusCode::OK);
}

/// `sessiongate_store_errors_total{backend="redis",kind}` in a scrape.
fn failures(metrics: &str, kind: &str) -> f64 {
    let series = format!("sessiongate_store_errors_total{{backend=\"redis\",kind=\"{kind}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
