//! `sessiongate migrate`: a stopped gateway's sled store copied into Redis and back, each
//! copy checked by the binary entry by entry and here against the original; a non-empty
//! target, one store named twice and bad arguments refused with nothing written.

use std::path::Path;
use std::time::Duration;

use sessiongate::auth::token_hash;
use sessiongate::sessions::{
    Device, RedisStore, RedisTarget, Rotation, Session, SessionId, SessionStore, SledStore,
};
use sessiongate_testkit::{RedisServer, wait_for_sled_let_go};

use crate::child::{run_to_end, sessiongate};

const USERS: [&str; 3] = [
    "5fc1d2e3a4b5c6d7e8f90a1b",
    "5fc1d2e3a4b5c6d7e8f90a1c",
    "5fc1d2e3a4b5c6d7e8f90a1d",
];

/// Session `n`, dealt round the users, its own tokens, live for 14 days from now.
fn session(n: u32) -> Session {
    let mut id = [0u8; 12];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let now = 1_800_000_000_000 + i64::from(n);
    Session {
        id,
        user: USERS[n as usize % USERS.len()].into(),
        access_hash: token_hash(&format!("access {n}")),
        refresh_hash: token_hash(&format!("refresh {n}")),
        device: Device::from_user_agent(Some("ShareX/15.0.0")),
        location: format!("City {n}, Region CC"),
        created_at_ms: now,
        updated_at_ms: now,
        expire_at_ms: now + 14 * 86_400_000,
    }
}

/// A stopped gateway's store: 300 sessions, 10 of them rotated (their old refresh tokens
/// remembered), one of those then revoked (its remembered token an orphan). What it holds,
/// user by user.
async fn fill(dir: &Path) -> Vec<Vec<Session>> {
    let store = SledStore::open(dir).expect("the store opens");
    for n in 0..300 {
        store.create(&session(n)).await.expect("create");
    }
    for n in 0..10 {
        let s = session(n);
        let rotation = Rotation {
            access_hash: token_hash(&format!("access {n} rotated")),
            refresh_hash: token_hash(&format!("refresh {n} rotated")),
            expire_at_ms: s.expire_at_ms + 1_000,
            now_ms: s.created_at_ms + 500,
        };
        store
            .rotate(&s.user, s.session_id(), rotation)
            .await
            .expect("rotate")
            .expect("exists");
    }
    let gone = session(9);
    store
        .revoke(&gone.user, gone.session_id())
        .await
        .expect("revoke");
    let held = listings(&store).await;
    drop(store);
    assert!(
        wait_for_sled_let_go(dir, Duration::from_secs(5)),
        "the store is free for the migration"
    );
    held
}

async fn listings(store: &dyn SessionStore) -> Vec<Vec<Session>> {
    let mut held = Vec::new();
    for user in USERS {
        held.push(store.list_user(user).await.expect("list"));
    }
    held
}

fn write_config(dir: &Path, name: &str, store: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, store).expect("write a config");
    path
}

fn migrate(work: &Path, from: &Path, to: &Path) -> (i32, String, String) {
    let mut command = sessiongate(work);
    command
        .arg("migrate")
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(to);
    let (status, stdout, stderr) = run_to_end(&mut command);
    (status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_goes_into_redis_and_back_unchanged() {
    let work = tempfile::tempdir().expect("tempdir");
    let sled_dir = work.path().join("sessions");
    let original = fill(&sled_dir).await;
    let redis = RedisServer::start();
    let sled_config = write_config(
        work.path(),
        "sled.toml",
        &format!("data_dir = {:?}\n", sled_dir.display().to_string()),
    );
    let redis_config = write_config(
        work.path(),
        "redis.toml",
        &format!(
            "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
            redis.url()
        ),
    );

    let (code, stdout, stderr) = migrate(work.path(), &sled_config, &redis_config);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("299 sessions and 9 rotated-away refresh tokens")
            && stdout.contains("1 rotated-away tokens of sessions that are gone left out"),
        "{stdout}"
    );

    let target = RedisTarget {
        urls: vec![redis.url()],
        cluster: false,
        password: None,
        tls_ca: None,
        timeout: Duration::from_secs(1),
    };
    let copy = RedisStore::connect(&target, "sessiongate")
        .await
        .expect("connects");
    assert_eq!(
        listings(&copy).await,
        original,
        "every session, whole, user by user"
    );
    assert_eq!(copy.count().await.expect("count"), 299);
    for n in 0..9 {
        let s = session(n);
        let remembered = copy
            .find_rotated(&s.user, &s.refresh_hash)
            .await
            .expect("find");
        assert_eq!(
            remembered.map(|r| r.session_id),
            Some(s.session_id()),
            "session {n}"
        );
        let rotated = token_hash(&format!("access {n} rotated"));
        let grant = copy.find_access(&s.user, &rotated).await.expect("find");
        assert_eq!(grant.map(|g| g.session_id), Some(s.session_id()));
    }

    // Again into the now full Redis: refused, nothing written.
    let (code, _, stderr) = migrate(work.path(), &sled_config, &redis_config);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(copy.count().await.expect("count"), 299);

    // And back into a new sled store.
    let back_dir = work.path().join("back");
    let back_config = write_config(
        work.path(),
        "back.toml",
        &format!("data_dir = {:?}\n", back_dir.display().to_string()),
    );
    let (code, stdout, stderr) = migrate(work.path(), &redis_config, &back_config);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("299 sessions and 9 rotated-away"),
        "{stdout}"
    );
    let back = SledStore::open(&back_dir).expect("the copy opens");
    assert_eq!(listings(&back).await, original);
    let s = session(3);
    let remembered = back
        .find_rotated(&s.user, &s.refresh_hash)
        .await
        .expect("find");
    assert_eq!(remembered.map(|r| r.session_id), Some(SessionId(s.id)));
}

#[test]
fn bad_migrations_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = write_config(work.path(), "a.toml", "data_dir = \"sessions\"\n");
    let empty = work.path().join("empty");
    let other = write_config(
        work.path(),
        "b.toml",
        &format!("data_dir = {:?}\n", empty.display().to_string()),
    );
    let run = |args: &[&str]| {
        let mut command = sessiongate(work.path());
        command.args(args);
        let (status, _, stderr) = run_to_end(&mut command);
        (status.code().unwrap_or(-1), stderr)
    };
    let a = config.to_str().expect("utf-8");
    let b = other.to_str().expect("utf-8");
    for (args, code, says) in [
        (vec!["migrate", "--from", a], 64, "migrate needs --to"),
        (vec!["migrate", "--to", a], 64, "migrate needs --from"),
        (
            vec!["migrate", "--from", a, "--to", a],
            64,
            "the same store",
        ),
        (
            vec!["migrate", "--config", a, "--from", a, "--to", b],
            64,
            "only --from and --to",
        ),
        (vec!["--from", a], 64, "--from is an option of migrate"),
        (
            vec!["migrate", "--from", "missing.toml", "--to", b],
            64,
            "missing.toml",
        ),
        // No store where a.toml says: nothing to copy, and none made.
        (
            vec!["migrate", "--from", a, "--to", b],
            1,
            "no session store",
        ),
    ] {
        let (got, stderr) = run(&args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!empty.exists(), "the target was not created");
    assert!(
        !work.path().join("sessions").exists(),
        "no source store was made"
    );
}
