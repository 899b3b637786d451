use super::*;

use crate::auth::token_hash;
use crate::sessions::store::contract::rotation;
use crate::sessions::store::sled::tests::open;
use crate::sessions::store::{AccessGrant, RotatedToken, Touch};
use crate::sessions::{Device, Session, SessionStore, SledStore};

/// Session number `n` of `user`: tokens "access n" and "refresh n".
fn session(n: u32, user: &str) -> Session {
    let mut id = [0u8; 12];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let created_at_ms = 1_000 + i64::from(n);
    Session {
        id,
        user: user.into(),
        access_hash: token_hash(&format!("access {n}")),
        refresh_hash: token_hash(&format!("refresh {n}")),
        device: Device::from_user_agent(Some("ShareX/15.0.0")),
        location: "Berlin, Berlin DE".into(),
        created_at_ms,
        updated_at_ms: created_at_ms,
        expire_at_ms: 9_000_000,
    }
}

const USERS: [&str; 3] = [
    "5fc1d2e3a4b5c6d7e8f90a1b",
    "5fc1d2e3a4b5c6d7e8f90a1c",
    "5fc1d2e3a4b5c6d7e8f90a1d",
];

/// Session number `n` as [`churn`] creates it, dealt round the users.
fn dealt(n: u32) -> Session {
    session(n, USERS[n as usize % USERS.len()])
}

/// What a store holds, read through its interface: every user's listing, and for each of
/// the sessions created by [`churn`] what its tokens find.
type Observed = (
    usize,
    Vec<Vec<Session>>,
    Vec<(Option<AccessGrant>, Option<Session>)>,
    Option<RotatedToken>,
    Vec<Vec<Option<i64>>>,
);

async fn observe(store: &SledStore) -> Observed {
    let mut listings = Vec::new();
    for user in USERS {
        listings.push(store.list_user(user).await.expect("list"));
    }
    let mut found = Vec::new();
    for n in 0..CREATED {
        let s = dealt(n);
        found.push((
            store
                .find_access(&s.user, &s.access_hash)
                .await
                .expect("find"),
            store
                .find_refresh(&s.user, &s.refresh_hash)
                .await
                .expect("find"),
        ));
    }
    let rotated = store
        .find_rotated(&dealt(1).user, &dealt(1).refresh_hash)
        .await
        .expect("find_rotated");
    let mut last_active = Vec::new();
    for (user, listing) in USERS.iter().zip(&listings) {
        let ids: Vec<_> = listing.iter().map(Session::session_id).collect();
        last_active.push(store.last_active(user, &ids).await.expect("last_active"));
    }
    (
        SessionStore::count(store).await.expect("count"),
        listings,
        found,
        rotated,
        last_active,
    )
}

const CREATED: u32 = 600;

/// A store that has seen logins, logouts, use and a refresh, as a gateway's does: 600
/// sessions created one at a time, dealt round the users, every second revoked, every
/// third one's last use recorded, one rotated. Each change rewrites a bucket, so sled's
/// file holds many stale copies.
async fn churn(store: &SledStore) {
    for n in 0..CREATED {
        store.create(&dealt(n)).await.expect("create");
    }
    for n in (0..CREATED).step_by(2) {
        store
            .revoke(&dealt(n).user, dealt(n).session_id())
            .await
            .expect("revoke");
    }
    let touches: Vec<_> = (0..CREATED)
        .step_by(3)
        .map(|n| Touch {
            user: dealt(n).user,
            id: dealt(n).session_id(),
            at_ms: 5_000_000 + i64::from(n),
        })
        .collect();
    store.touch(&touches).await.expect("touch");
    let rotated = store
        .rotate(
            &dealt(1).user,
            dealt(1).session_id(),
            rotation(
                token_hash("access 1 rotated"),
                token_hash("refresh 1 rotated"),
                9_500_000,
                5_000,
            ),
        )
        .await
        .expect("rotate");
    assert!(rotated.is_some(), "session 1 exists");
}

/// A store in `sessions` of a new directory after [`churn`], and what it then holds.
async fn churned_store() -> (tempfile::TempDir, std::path::PathBuf, Observed) {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("sessions");
    let store = open(&dir);
    churn(&store).await;
    let observed = observe(&store).await;
    (parent, dir, observed)
}

#[tokio::test]
async fn compacting_in_place_keeps_everything_and_shrinks_the_store() {
    let (parent, dir, before) = churned_store().await;
    // The churn left what the checks below rely on.
    assert_eq!(before.0, 300);
    assert!(before.1.iter().all(|listing| listing.len() == 100));
    assert!(
        before.2[1].0.is_none(),
        "session 1's old token was rotated away"
    );
    assert!(before.2[2].0.is_none() && before.2[3].0.is_some());
    assert!(
        before.3.is_some(),
        "the rotated-away refresh token is remembered"
    );
    // Session 3 is live and was touched; session 1 live and not.
    let live_3 = before.1[0].iter().position(|s| s.id == dealt(3).id);
    assert_eq!(
        before.4[0][live_3.expect("session 3 listed")],
        Some(5_000_003)
    );
    let live_1 = before.1[1].iter().position(|s| s.id == dealt(1).id);
    assert_eq!(before.4[1][live_1.expect("session 1 listed")], None);

    // The store was just dropped; its flusher may hold the lock a moment longer.
    let compacted = compact_with_retry(|| compact_in_place(&dir)).expect("compacts");

    // 9 trees: sled's default one and the store's 8.
    assert_eq!(compacted.trees, 9);
    assert!(compacted.entries > 300 * 4, "{compacted:?}");
    assert!(
        compacted.bytes_after < compacted.bytes_before,
        "{compacted:?}"
    );
    assert_eq!(compacted.bytes_after, disk_bytes(&dir));
    let mut left: Vec<_> = std::fs::read_dir(parent.path())
        .expect("read the parent")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["sessions"], "the copy's working directory is gone");

    let store = open(&dir);
    assert_eq!(observe(&store).await, before);
    // And the compacted store takes changes as before.
    store
        .create(&session(CREATED, USERS[1]))
        .await
        .expect("create after compacting");
    assert_eq!(SessionStore::count(&store).await.expect("count"), 301);
}

#[tokio::test]
async fn compacting_into_a_directory_leaves_the_store_as_it_was() {
    let (parent, dir, before) = churned_store().await;
    let to = parent.path().join("copy");
    let files_before = disk_bytes(&dir);

    let compacted = compact_with_retry(|| compact_into(&dir, &to)).expect("compacts");

    assert_eq!(compacted.bytes_before, files_before);
    assert!(compacted.bytes_after < compacted.bytes_before);
    assert_eq!(observe(&open(&to)).await, before);
    assert_eq!(observe(&open(&dir)).await, before);
}

/// Runs a compaction of a store dropped just before, retrying while its lock is still held.
fn compact_with_retry(
    compact: impl Fn() -> Result<Compacted, CompactError>,
) -> Result<Compacted, CompactError> {
    for _ in 0..100 {
        match compact() {
            Err(CompactError::InUse(_)) => std::thread::sleep(Duration::from_millis(20)),
            done => return done,
        }
    }
    compact()
}

#[tokio::test]
async fn a_store_in_use_is_refused_and_left_alone() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("sessions");
    let store = open(&dir);
    store.create(&session(1, USERS[0])).await.expect("create");

    let error = compact_in_place(&dir).expect_err("the store is open");
    assert!(matches!(error, CompactError::InUse(_)), "{error}");
    assert!(error.to_string().contains("stop the gateway"), "{error}");
    let to = parent.path().join("copy");
    let error = compact_into(&dir, &to).expect_err("the store is open");
    assert!(matches!(error, CompactError::InUse(_)), "{error}");
    assert!(!to.exists(), "nothing was written");
    assert!(!parent.path().join("sessions.compacting").exists());
    assert_eq!(store.list_user(USERS[0]).await.expect("list").len(), 1);
}

#[test]
fn a_directory_without_a_store_is_refused_and_no_store_is_made() {
    let parent = tempfile::tempdir().expect("tempdir");
    let missing = parent.path().join("nothing-here");
    let error = compact_in_place(&missing).expect_err("no directory");
    assert!(matches!(error, CompactError::Io { .. }), "{error}");
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let error = compact_in_place(&empty).expect_err("no store");
    assert!(matches!(error, CompactError::NoStore(_)), "{error}");
    let error = compact_into(&empty, &parent.path().join("copy")).expect_err("no store");
    assert!(matches!(error, CompactError::NoStore(_)), "{error}");
    assert_eq!(
        std::fs::read_dir(&empty).expect("read").count(),
        0,
        "sled did not create a store"
    );
    assert!(!missing.exists() && !parent.path().join("copy").exists());
}

#[tokio::test]
async fn a_target_with_files_in_it_is_refused() {
    let parent = tempfile::tempdir().expect("tempdir");
    let (dir, to) = (parent.path().join("sessions"), parent.path().join("copy"));
    drop(open(&dir));
    std::fs::create_dir(&to).expect("mkdir");
    std::fs::write(to.join("keep.txt"), "mine").expect("write");

    let error = compact_with_retry(|| compact_into(&dir, &to)).expect_err("not empty");

    assert!(matches!(error, CompactError::NotEmpty(_)), "{error}");
    assert_eq!(
        std::fs::read_to_string(to.join("keep.txt")).expect("still there"),
        "mine"
    );
}

#[tokio::test]
async fn a_copy_left_by_an_interrupted_run_is_replaced() {
    let (parent, dir, before) = churned_store().await;
    // What a run stopped half-way through its copy leaves: a store with part of the data.
    let beside = parent.path().join("sessions.compacting");
    {
        let partial = open(&beside);
        partial
            .create(&session(CREATED + 1, USERS[2]))
            .await
            .expect("create");
    }

    compact_with_retry(|| compact_in_place(&dir)).expect("compacts");

    assert!(!beside.exists());
    assert_eq!(observe(&open(&dir)).await, before);
}

#[tokio::test]
async fn the_copy_gets_the_originals_owner_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("sessions");
    {
        let store = open(&dir);
        store.create(&session(1, USERS[0])).await.expect("create");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    // As root (as in CI), the store is given to another user first, as a service user's
    // store is; otherwise the owner is this process's user either way.
    let root = std::fs::metadata(parent.path()).expect("stat").uid() == 0;
    let owner = if root { (4321, 4322) } else { (0, 0) };
    if root {
        for path in [dir.clone()].into_iter().chain(
            std::fs::read_dir(&dir)
                .expect("read")
                .map(|entry| entry.expect("entry").path()),
        ) {
            std::os::unix::fs::lchown(&path, Some(owner.0), Some(owner.1)).expect("chown");
        }
    }
    let to = parent.path().join("copy");

    compact_with_retry(|| compact_into(&dir, &to)).expect("compacts into");
    compact_with_retry(|| compact_in_place(&dir)).expect("compacts in place");

    for copy in [&to, &dir] {
        let meta = std::fs::metadata(copy).expect("stat");
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o750,
            "{}",
            copy.display()
        );
        if root {
            assert_eq!((meta.uid(), meta.gid()), owner, "{}", copy.display());
            for entry in std::fs::read_dir(copy).expect("read") {
                let meta = entry.expect("entry").metadata().expect("stat");
                assert_eq!((meta.uid(), meta.gid()), owner);
            }
        }
    }
}

#[tokio::test]
async fn a_store_reached_through_a_symlink_is_compacted_where_it_lies() {
    // systemd's DynamicUser makes /var/lib/<name> a link to /var/lib/private/<name>.
    let (parent, real, before) = churned_store().await;
    let link = parent.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");

    compact_with_retry(|| compact_in_place(&link)).expect("compacts");

    assert_eq!(std::fs::read_link(&link).expect("still a link"), real);
    assert!(!parent.path().join("link.compacting").exists());
    assert!(!parent.path().join("sessions.compacting").exists());
    assert_eq!(observe(&open(&link)).await, before);
}
