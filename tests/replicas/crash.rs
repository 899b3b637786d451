//! SIGKILL of redis-server in the middle of traffic, 20 times over: no creation and no
//! revocation that the store acknowledged is lost (`appendonly yes`, `appendfsync always`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessiongate::auth::token_hash;
use sessiongate::sessions::{
    Device, RedisStore, RedisTarget, Session, SessionId, SessionStore, StoreError,
};
use sessiongate_testkit::RedisServer;

const CYCLES: usize = 20;
const WRITERS: usize = 4;
const USERS: usize = 8;

/// What the store acknowledged of a session.
#[derive(Debug, Clone)]
enum Acked {
    /// Its creation, and no revocation since.
    Live(Box<Session>),
    /// Its revocation.
    Revoked(String),
    /// A call on it failed: either outcome is right, and may come later.
    Unknown,
}

type Ledger = Arc<Mutex<HashMap<SessionId, Acked>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_loses_no_acknowledged_creation_or_revocation() {
    let mut redis = RedisServer::start();
    let target = RedisTarget {
        urls: vec![redis.url()],
        cluster: false,
        password: None,
        tls_ca: None,
        timeout: Duration::from_millis(500),
    };
    let store = Arc::new(
        RedisStore::connect(&target, "crash")
            .await
            .expect("connects"),
    );
    let ledger: Ledger = Arc::default();
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut next_session = 0u64;
    let (mut acked_creations, mut acked_revocations) = (0, 0);
    for cycle in 0..CYCLES {
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..WRITERS {
            let (store, ledger, running) = (store.clone(), ledger.clone(), running.clone());
            let first = next_session + (writer as u64) * 1_000_000;
            writers.spawn(write_until_stopped(store, ledger, running, first));
        }
        next_session += WRITERS as u64 * 1_000_000;
        // Kill at a different point of the traffic each cycle.
        random = random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = 40 + (random >> 33) % 160;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        redis.kill();
        tokio::time::sleep(Duration::from_millis(30)).await;
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut done = 0;
        while let Some(counts) = writers.join_next().await {
            let (created, revoked) = counts.expect("a writer finished");
            acked_creations += created;
            acked_revocations += revoked;
            done += 1;
        }
        assert_eq!(done, WRITERS);
        redis.restart();
        wait_for(&store).await;
        check(&store, &ledger, cycle).await;
    }
    eprintln!(
        "{CYCLES} kills: {acked_creations} acknowledged creations and {acked_revocations} \
         acknowledged revocations checked after each"
    );
    assert!(
        acked_creations > CYCLES * 10,
        "too little traffic: {acked_creations}"
    );
    assert!(
        acked_revocations > CYCLES * 5,
        "too little traffic: {acked_revocations}"
    );
}

/// Creates sessions and revokes every other one until told to stop, writing what the store
/// acknowledged into the ledger. How many creations and revocations were acknowledged.
async fn write_until_stopped(
    store: Arc<RedisStore>,
    ledger: Ledger,
    running: Arc<std::sync::atomic::AtomicBool>,
    first: u64,
) -> (usize, usize) {
    let (mut created, mut revoked) = (0, 0);
    let mut n = first;
    while running.load(std::sync::atomic::Ordering::SeqCst) {
        let session = session(n);
        n += 1;
        let id = session.session_id();
        let outcome = match store.create(&session).await {
            Ok(evicted) => {
                assert!(evicted.is_empty(), "tokens of their own evict no one");
                created += 1;
                Acked::Live(Box::new(session.clone()))
            }
            Err(error) => unknown(error),
        };
        let live = matches!(outcome, Acked::Live(_));
        ledger.lock().expect("ledger").insert(id, outcome);
        if !live || n.is_multiple_of(2) {
            continue;
        }
        let outcome = match store.revoke(&session.user, id).await {
            Ok(Some(_)) => {
                revoked += 1;
                Acked::Revoked(session.user.clone())
            }
            Ok(None) => panic!("a session just created was not there to revoke"),
            Err(error) => unknown(error),
        };
        ledger.lock().expect("ledger").insert(id, outcome);
    }
    (created, revoked)
}

fn unknown(error: StoreError) -> Acked {
    assert!(
        error.is_unavailable(),
        "only a lost server fails a call: {error}"
    );
    Acked::Unknown
}

/// Waits until the store answers again (the same store: it reconnects by itself).
async fn wait_for(store: &RedisStore) {
    let started = Instant::now();
    while store.ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no answer after a restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every acknowledged creation is there, whole, and found by its token; every acknowledged
/// revocation is gone.
async fn check(store: &RedisStore, ledger: &Ledger, cycle: usize) {
    let entries: Vec<(SessionId, Acked)> = ledger
        .lock()
        .expect("ledger")
        .iter()
        .map(|(id, acked)| (*id, acked.clone()))
        .collect();
    for (id, acked) in entries {
        match acked {
            Acked::Live(session) => {
                let found = store.get(&session.user, id).await.expect("get");
                assert_eq!(
                    found.as_ref(),
                    Some(&*session),
                    "cycle {cycle}: a creation lost"
                );
                let grant = store
                    .find_access(&session.user, &session.access_hash)
                    .await
                    .expect("find");
                assert_eq!(grant.map(|g| g.session_id), Some(id), "cycle {cycle}");
            }
            Acked::Revoked(user) => {
                let found = store.get(&user, id).await.expect("get");
                assert_eq!(found, None, "cycle {cycle}: a revocation lost");
            }
            // A call that failed while Redis was away may still be carried out after the
            // restart (it may have been queued on the connection): either outcome is right,
            // now or later.
            Acked::Unknown => {}
        }
    }
}

/// Session number `n`: its own tokens, one of [`USERS`] users.
fn session(n: u64) -> Session {
    let mut id = [0u8; 12];
    id[4..].copy_from_slice(&n.to_be_bytes());
    Session {
        id,
        user: session_user(SessionId(id)),
        access_hash: token_hash(&format!("access {n}")),
        refresh_hash: token_hash(&format!("refresh {n}")),
        device: Device::from_user_agent(Some("ShareX/15.0.0")),
        location: "unknown".into(),
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000,
        expire_at_ms: 1_700_000_000_000 + 14 * 86_400_000,
    }
}

/// The user of a session, from its id.
fn session_user(id: SessionId) -> String {
    let n = u64::from_be_bytes(id.0[4..].try_into().expect("8 bytes"));
    format!("{:024x}", n % USERS as u64)
}
