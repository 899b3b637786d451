//! Two replicas on a Redis Cluster of 3 masters and 3 replicas: a user's keys share one slot,
//! what one gateway replica does the other sees at once, and a manual failover of every
//! master (`CLUSTER FAILOVER` on its replica) under traffic loses no acknowledged
//! revocation and no acknowledged login.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use sessiongate_testkit::RedisCluster;

use crate::fleet::{Fleet, Replica, SharedStore, user};

/// Users of the traffic; each round takes the next.
const USERS: usize = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_traffic_loses_no_acknowledged_revocation() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(|| RedisCluster::start(3, 1))
            .await
            .expect("cluster"),
    );
    let urls = cluster.urls().join(",");
    let fleet = Fleet::start(
        SharedStore {
            url: &urls,
            cluster: true,
        },
        2,
        USERS,
    )
    .await;
    let (a, b) = (&fleet.replicas[0], &fleet.replicas[1]);

    // A user's hash is under its hash tag: a key of that tag hashes to the same slot.
    let (access, _) = a.login(0).await;
    let slots: Vec<String> = [
        format!("sessiongate:{{u:{}}}", user(0).id),
        format!("{{u:{}}}", user(0).id),
    ]
    .iter()
    .map(|key| cluster.nodes[0].cli(&["CLUSTER", "KEYSLOT", key]))
    .collect();
    assert!(slots.iter().all(|s| s == &slots[0]), "{slots:?}");
    assert_eq!(b.account(&access).await, StatusCode::OK);

    // Traffic through both replicas while every master fails over to its replica in turn.
    let traffic = Arc::new(AtomicBool::new(true));
    let failovers = {
        let (cluster, traffic) = (cluster.clone(), traffic.clone());
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(300));
            let replicas = cluster.replicas();
            for &replica in &replicas {
                cluster.fail_over_to(replica);
                std::thread::sleep(Duration::from_millis(300));
            }
            traffic.store(false, Ordering::SeqCst);
            replicas.len()
        })
    };
    let mut ledger = Ledger::default();
    let mut n = 1;
    while traffic.load(Ordering::SeqCst) {
        assert!(n < USERS, "the failovers outlasted {USERS} rounds");
        round(a, b, n, &mut ledger).await;
        n += 1;
    }
    let failed_over = failovers.await.expect("the failovers ran");
    assert_eq!(failed_over, 3, "every master failed over once");

    // Afterwards, through both replicas: every acknowledged revocation is refused, every
    // acknowledged login that was not revoked is accepted.
    for replica in [a, b] {
        for token in &ledger.revoked {
            assert_eq!(
                replica.account(token).await,
                StatusCode::UNAUTHORIZED,
                "a revocation lost"
            );
        }
        for token in &ledger.live {
            assert_eq!(replica.account(token).await, StatusCode::OK, "a login lost");
        }
    }
    eprintln!(
        "{} rounds across 3 failovers: {} acknowledged revocations and {} logins kept, {} \
         answers 503 while a master was failing over",
        n - 1,
        ledger.revoked.len(),
        ledger.live.len(),
        ledger.unavailable
    );
    assert!(
        ledger.revoked.len() > 20,
        "too little traffic: {}",
        ledger.revoked.len()
    );
}

/// What the gateways acknowledged.
#[derive(Default)]
struct Ledger {
    /// Tokens of sessions whose revocation was answered 200.
    revoked: Vec<String>,
    /// Tokens of logins answered 200 and never revoked.
    live: Vec<String>,
    /// Answers 503 (fail closed, acknowledged nothing).
    unavailable: usize,
}

/// Logs user `n` in through A, checks the token through B, and revokes every other session
/// through B, checking it through A; records what was acknowledged.
async fn round(a: &Replica, b: &Replica, n: usize, ledger: &mut Ledger) {
    let user = user(n);
    let login = a
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(serde_json::json!({"email": user.email, "password": user.password})),
        )
        .await;
    if login.status == StatusCode::SERVICE_UNAVAILABLE {
        ledger.unavailable += 1;
        return;
    }
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let access = login.body["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    match b.account(&access).await {
        StatusCode::OK => {}
        StatusCode::SERVICE_UNAVAILABLE => ledger.unavailable += 1,
        other => panic!("round {n}: a login through A answered {other} through B"),
    }
    if n % 2 == 1 {
        ledger.live.push(access);
        return;
    }
    let revoked = b
        .call(Method::DELETE, "/api/account/sessions", Some(&access), None)
        .await;
    match revoked.status {
        StatusCode::OK => {
            assert_eq!(
                a.account(&access).await,
                StatusCode::UNAUTHORIZED,
                "round {n}"
            );
            ledger.revoked.push(access);
        }
        StatusCode::SERVICE_UNAVAILABLE => ledger.unavailable += 1,
        other => panic!("round {n}: revoke-all answered {other}: {}", revoked.body),
    }
}
