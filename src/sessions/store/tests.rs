use super::*;

use crate::auth::token_hash;
use crate::sessions::Device;

/// A session numbered `n`: id `[n; 12]`, tokens "access n" and "refresh n".
fn session(n: u8, user: &str, created_at_ms: i64, expire_at_ms: i64) -> Session {
    Session {
        id: [n; 12],
        user: user.into(),
        access_hash: token_hash(&format!("access {n}")),
        refresh_hash: token_hash(&format!("refresh {n}")),
        device: Device::from_user_agent(Some("ShareX/15.0.0")),
        location: "Berlin, Berlin DE".into(),
        created_at_ms,
        updated_at_ms: created_at_ms,
        expire_at_ms,
    }
}

/// Opens the store in `dir`, waiting a little while a store dropped just before lets go of
/// it: sled's flusher thread can hold the files' lock a moment after the last handle is
/// dropped (without the wait, about one run in five of these tests failed on a reopen).
pub(crate) fn open(dir: impl AsRef<std::path::Path>) -> SledStore {
    let mut attempts = 0;
    loop {
        match SledStore::open(dir.as_ref()) {
            Ok(store) => return store,
            Err(error)
                if attempts < 100 && error.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("the store opens: {error}"),
        }
    }
}

/// The ids of a user's sessions, in the order `list_user` gives them.
async fn listed(store: &SledStore, user: &str) -> Vec<[u8; 12]> {
    store
        .list_user(user)
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect()
}

/// How many sessions the store holds, through the trait.
async fn count(store: &SledStore) -> usize {
    SessionStore::count(store).await.expect("count")
}

fn grant(session: &Session) -> AccessGrant {
    AccessGrant::of(session)
}

#[tokio::test]
async fn created_session_is_found_by_access_and_refresh_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let s = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_000, 9_000);

    let evicted = store.create(&s).await.expect("create");
    assert!(evicted.is_empty());
    assert_eq!(count(&store).await, 1);

    let found = store
        .find_access(&s.access_hash)
        .await
        .expect("find_access");
    assert_eq!(
        found,
        Some(AccessGrant {
            session_id: SessionId([1; 12]),
            user: "5fc1d2e3a4b5c6d7e8f90a1b".into(),
            expire_at_ms: 9_000,
        })
    );
    let by_refresh = store
        .find_refresh(&s.refresh_hash)
        .await
        .expect("find_refresh");
    assert_eq!(by_refresh, Some(s.clone()));
    assert_eq!(
        store.get(s.session_id()).await.expect("get"),
        Some(s.clone())
    );

    // The access hash is not a refresh hash and the other way round.
    assert_eq!(
        store.find_refresh(&s.access_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_access(&s.refresh_hash).await.expect("find"),
        None
    );
    let unknown = token_hash("never issued");
    assert_eq!(store.find_access(&unknown).await.expect("find"), None);
    assert_eq!(store.find_refresh(&unknown).await.expect("find"), None);
    assert_eq!(store.get(SessionId([9; 12])).await.expect("get"), None);
}

#[tokio::test]
async fn list_user_gives_only_that_user_oldest_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    // Ids run against creation order, so an id-ordered listing would be caught.
    let newest = session(1, "ab", 3_000, 99_000);
    let oldest = session(2, "ab", 1_000, 99_000);
    let middle = session(3, "ab", 2_000, 99_000);
    let other = session(4, "abc", 500, 99_000);
    let another = session(5, "a", 1_500, 99_000);
    for s in [&newest, &other, &oldest, &another, &middle] {
        store.create(s).await.expect("create");
    }

    assert_eq!(listed(&store, "ab").await, [[2; 12], [3; 12], [1; 12]]);
    assert_eq!(listed(&store, "abc").await, [[4; 12]]);
    assert_eq!(listed(&store, "a").await, [[5; 12]]);
    assert!(listed(&store, "b").await.is_empty());
    assert!(listed(&store, "").await.is_empty());

    let full = store.list_user("ab").await.expect("list");
    assert_eq!(full, [oldest, middle, newest]);
}

#[tokio::test]
async fn rotate_replaces_hashes_and_expiry_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let older = session(1, "u", 1_000, 5_000);
    let younger = session(2, "u", 2_000, 6_000);
    store.create(&older).await.expect("create");
    store.create(&younger).await.expect("create");

    let new_access = token_hash("access 1 rotated");
    let new_refresh = token_hash("refresh 1 rotated");
    let rotated = store
        .rotate(older.session_id(), new_access, new_refresh, 50_000, 4_000)
        .await
        .expect("rotate")
        .expect("the session exists");

    let expected = Session {
        access_hash: new_access,
        refresh_hash: new_refresh,
        expire_at_ms: 50_000,
        updated_at_ms: 4_000,
        ..older.clone()
    };
    assert_eq!(rotated, expected);
    assert_eq!(rotated.id, older.id);
    assert_eq!(rotated.created_at_ms, 1_000);
    assert_eq!(
        store.get(older.session_id()).await.expect("get"),
        Some(expected.clone())
    );

    assert_eq!(
        store.find_access(&older.access_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_refresh(&older.refresh_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_access(&new_access).await.expect("find"),
        Some(grant(&expected))
    );
    assert_eq!(
        store.find_refresh(&new_refresh).await.expect("find"),
        Some(expected.clone())
    );

    // Still one record, still listed by creation time, the other session untouched.
    assert_eq!(count(&store).await, 2);
    assert_eq!(listed(&store, "u").await, [[1; 12], [2; 12]]);
    // The listing shows the rotated record, not the copy made at creation.
    assert_eq!(
        store.list_user("u").await.expect("list"),
        [expected.clone(), younger.clone()]
    );
    assert_eq!(
        store.find_access(&younger.access_hash).await.expect("find"),
        Some(grant(&younger))
    );
}

#[tokio::test]
async fn rotate_of_a_missing_session_is_none_and_indexes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let s = session(1, "u", 1_000, 5_000);
    store.create(&s).await.expect("create");

    let new_access = token_hash("a");
    let new_refresh = token_hash("r");
    let rotated = store
        .rotate(SessionId([7; 12]), new_access, new_refresh, 9_000, 2_000)
        .await
        .expect("rotate");
    assert_eq!(rotated, None);
    assert_eq!(store.find_access(&new_access).await.expect("find"), None);
    assert_eq!(store.find_refresh(&new_refresh).await.expect("find"), None);
    assert_eq!(count(&store).await, 1);

    // Revoked, then rotated: still gone.
    store.revoke(s.session_id()).await.expect("revoke");
    let rotated = store
        .rotate(s.session_id(), new_access, new_refresh, 9_000, 2_000)
        .await
        .expect("rotate");
    assert_eq!(rotated, None);
    assert_eq!(count(&store).await, 0);
    assert_eq!(store.find_access(&new_access).await.expect("find"), None);
}

#[tokio::test]
async fn revoke_removes_the_session_and_every_index_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let gone = session(1, "u", 1_000, 5_000);
    let kept = session(2, "u", 2_000, 5_000);
    store.create(&gone).await.expect("create");
    store.create(&kept).await.expect("create");

    let revoked = store.revoke(gone.session_id()).await.expect("revoke");
    assert_eq!(revoked, Some(gone.clone()));

    assert_eq!(
        store.find_access(&gone.access_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_refresh(&gone.refresh_hash).await.expect("find"),
        None
    );
    assert_eq!(store.get(gone.session_id()).await.expect("get"), None);
    assert_eq!(listed(&store, "u").await, [[2; 12]]);
    assert_eq!(count(&store).await, 1);

    assert_eq!(store.revoke(gone.session_id()).await.expect("revoke"), None);
    assert_eq!(count(&store).await, 1);
    assert_eq!(
        store.revoke(kept.session_id()).await.expect("revoke"),
        Some(kept)
    );
    assert_eq!(count(&store).await, 0);
}

#[tokio::test]
async fn revoke_leaves_other_sessions_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let gone = session(1, "u", 1_000, 5_000);
    let kept = session(2, "u", 2_000, 6_000);
    store.create(&gone).await.expect("create");
    store.create(&kept).await.expect("create");

    store.revoke(gone.session_id()).await.expect("revoke");
    assert_eq!(
        store.find_access(&kept.access_hash).await.expect("find"),
        Some(grant(&kept))
    );
    assert_eq!(
        store.find_refresh(&kept.refresh_hash).await.expect("find"),
        Some(kept.clone())
    );
    assert_eq!(store.get(kept.session_id()).await.expect("get"), Some(kept));
}

#[tokio::test]
async fn revoke_user_removes_only_that_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mine = [
        session(1, "ab", 1_000, 9_000),
        session(2, "ab", 2_000, 9_000),
        session(3, "ab", 3_000, 9_000),
    ];
    let theirs = [
        session(4, "abc", 1_500, 9_000),
        session(5, "a", 2_500, 9_000),
    ];
    for s in mine.iter().chain(&theirs) {
        store.create(s).await.expect("create");
    }

    assert_eq!(store.revoke_user("ab").await.expect("revoke_user"), 3);

    for s in &mine {
        assert_eq!(store.get(s.session_id()).await.expect("get"), None);
        assert_eq!(store.find_access(&s.access_hash).await.expect("find"), None);
        assert_eq!(
            store.find_refresh(&s.refresh_hash).await.expect("find"),
            None
        );
    }
    assert!(listed(&store, "ab").await.is_empty());
    for s in &theirs {
        assert_eq!(
            store.find_access(&s.access_hash).await.expect("find"),
            Some(grant(s))
        );
    }
    assert_eq!(listed(&store, "abc").await, [[4; 12]]);
    assert_eq!(listed(&store, "a").await, [[5; 12]]);
    assert_eq!(count(&store).await, 2);

    assert_eq!(store.revoke_user("ab").await.expect("revoke_user"), 0);
    assert_eq!(store.revoke_user("nobody").await.expect("revoke_user"), 0);
    assert_eq!(count(&store).await, 2);
}

#[tokio::test]
async fn sweep_removes_exactly_the_expired_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let early = session(1, "u", 100, 1_000);
    let due_now = session(2, "v", 100, 2_000);
    let later = session(3, "u", 100, 2_001);
    let much_later = session(4, "w", 100, 1_000_000);
    for s in [&much_later, &later, &early, &due_now] {
        store.create(s).await.expect("create");
    }

    assert_eq!(store.sweep_expired(999).await.expect("sweep"), 0);
    assert_eq!(count(&store).await, 4);

    assert_eq!(store.sweep_expired(2_000).await.expect("sweep"), 2);
    for s in [&early, &due_now] {
        assert_eq!(store.get(s.session_id()).await.expect("get"), None);
        assert_eq!(store.find_access(&s.access_hash).await.expect("find"), None);
        assert_eq!(
            store.find_refresh(&s.refresh_hash).await.expect("find"),
            None
        );
    }
    for s in [&later, &much_later] {
        assert_eq!(
            store.get(s.session_id()).await.expect("get").as_ref(),
            Some(s)
        );
        assert_eq!(
            store.find_access(&s.access_hash).await.expect("find"),
            Some(grant(s))
        );
    }
    assert_eq!(listed(&store, "u").await, [[3; 12]]);
    assert!(listed(&store, "v").await.is_empty());

    // Nothing left that is due: a second sweep at the same time removes nothing.
    assert_eq!(store.sweep_expired(2_000).await.expect("sweep"), 0);
    assert_eq!(count(&store).await, 2);
}

#[tokio::test]
async fn sweep_respects_an_expiry_extended_by_rotate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let extended = session(1, "u", 100, 1_000);
    let not_extended = session(2, "u", 200, 1_000);
    store.create(&extended).await.expect("create");
    store.create(&not_extended).await.expect("create");

    let access = token_hash("access 1 rotated");
    let refresh = token_hash("refresh 1 rotated");
    store
        .rotate(extended.session_id(), access, refresh, 10_000, 900)
        .await
        .expect("rotate")
        .expect("exists");

    assert_eq!(store.sweep_expired(5_000).await.expect("sweep"), 1);
    assert_eq!(
        store.get(not_extended.session_id()).await.expect("get"),
        None
    );
    let grant = store.find_access(&access).await.expect("find");
    assert_eq!(grant.map(|g| g.expire_at_ms), Some(10_000));
    assert_eq!(listed(&store, "u").await, [[1; 12]]);

    // At its new expiry it goes.
    assert_eq!(store.sweep_expired(9_999).await.expect("sweep"), 0);
    assert_eq!(store.sweep_expired(10_000).await.expect("sweep"), 1);
    assert_eq!(store.find_access(&access).await.expect("find"), None);
    assert_eq!(count(&store).await, 0);
}

#[tokio::test]
async fn sweep_at_the_end_of_time_removes_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store
        .create(&session(1, "u", 100, 1_000))
        .await
        .expect("create");
    store
        .create(&session(2, "u", 100, i64::MAX))
        .await
        .expect("create");

    assert_eq!(store.sweep_expired(i64::MAX).await.expect("sweep"), 2);
    assert_eq!(count(&store).await, 0);
}

#[tokio::test]
async fn identical_tokens_evict_the_older_session() {
    // Two logins of one user in the same second: byte-identical access and refresh tokens.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let first = session(1, "u", 1_000, 9_000);
    let second = Session {
        id: [2; 12],
        created_at_ms: 1_400,
        updated_at_ms: 1_400,
        expire_at_ms: 9_400,
        ..first.clone()
    };
    store.create(&first).await.expect("create");

    let evicted = store.create(&second).await.expect("create");
    assert_eq!(evicted, [first.session_id()]);
    assert_eq!(store.get(first.session_id()).await.expect("get"), None);
    assert_eq!(
        store.find_access(&first.access_hash).await.expect("find"),
        Some(grant(&second))
    );
    assert_eq!(
        store.find_refresh(&first.refresh_hash).await.expect("find"),
        Some(second.clone())
    );
    assert_eq!(listed(&store, "u").await, [[2; 12]]);
    assert_eq!(count(&store).await, 1);

    // Revoking the survivor must not leave the shared token working.
    assert_eq!(
        store.revoke(second.session_id()).await.expect("revoke"),
        Some(second.clone())
    );
    assert_eq!(
        store.find_access(&first.access_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_refresh(&first.refresh_hash).await.expect("find"),
        None
    );
    assert!(listed(&store, "u").await.is_empty());
    assert_eq!(count(&store).await, 0);
}

#[tokio::test]
async fn a_shared_access_hash_alone_evicts_the_older_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let first = session(1, "u", 1_000, 9_000);
    let second = Session {
        access_hash: first.access_hash,
        ..session(2, "u", 1_500, 9_500)
    };
    store.create(&first).await.expect("create");

    let evicted = store.create(&second).await.expect("create");
    assert_eq!(evicted, [first.session_id()]);
    assert_eq!(store.get(first.session_id()).await.expect("get"), None);
    assert_eq!(
        store.find_access(&first.access_hash).await.expect("find"),
        Some(grant(&second))
    );
    // The evicted session's own refresh token is gone with it.
    assert_eq!(
        store.find_refresh(&first.refresh_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&second.refresh_hash)
            .await
            .expect("find"),
        Some(second.clone())
    );
    assert_eq!(listed(&store, "u").await, [[2; 12]]);

    store.revoke(second.session_id()).await.expect("revoke");
    assert_eq!(
        store.find_access(&first.access_hash).await.expect("find"),
        None
    );
    assert_eq!(count(&store).await, 0);
}

#[tokio::test]
async fn reopening_the_directory_gives_back_the_same_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = session(1, "ab", 1_000, 9_000);
    let revoked = session(2, "ab", 2_000, 9_000);
    let rotated = session(3, "ab", 3_000, 9_000);
    let other_user = session(4, "abc", 500, 9_000);
    let new_access = token_hash("access 3 rotated");
    let new_refresh = token_hash("refresh 3 rotated");
    let rotated_now = Session {
        access_hash: new_access,
        refresh_hash: new_refresh,
        expire_at_ms: 20_000,
        updated_at_ms: 4_000,
        ..rotated.clone()
    };
    {
        let store = open(&dir);
        for s in [&kept, &revoked, &rotated, &other_user] {
            store.create(s).await.expect("create");
        }
        store.revoke(revoked.session_id()).await.expect("revoke");
        store
            .rotate(rotated.session_id(), new_access, new_refresh, 20_000, 4_000)
            .await
            .expect("rotate");
    }

    let store = open(&dir);
    assert_eq!(count(&store).await, 3);
    assert_eq!(
        store.list_user("ab").await.expect("list"),
        [kept.clone(), rotated_now.clone()]
    );
    assert_eq!(listed(&store, "abc").await, [[4; 12]]);

    assert_eq!(
        store.find_access(&kept.access_hash).await.expect("find"),
        Some(grant(&kept))
    );
    assert_eq!(
        store.find_refresh(&kept.refresh_hash).await.expect("find"),
        Some(kept.clone())
    );
    assert_eq!(
        store.find_access(&new_access).await.expect("find"),
        Some(grant(&rotated_now))
    );
    assert_eq!(
        store.find_access(&rotated.access_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&rotated.refresh_hash)
            .await
            .expect("find"),
        None
    );

    assert_eq!(store.get(revoked.session_id()).await.expect("get"), None);
    assert_eq!(
        store.find_access(&revoked.access_hash).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&revoked.refresh_hash)
            .await
            .expect("find"),
        None
    );

    // The expiry index came back too: the sweep sees the old expiries and the new one.
    assert_eq!(store.sweep_expired(9_000).await.expect("sweep"), 2);
    assert_eq!(listed(&store, "ab").await, [[3; 12]]);
    assert_eq!(store.sweep_expired(20_000).await.expect("sweep"), 1);
    assert_eq!(count(&store).await, 0);
}

#[tokio::test]
async fn import_gives_what_one_create_after_another_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let first = session(1, "u", 100, 1_000);
    // Same tokens as the first (a login in the same second): it replaces the first.
    let mut twin = session(2, "u", 200, 1_000);
    twin.access_hash = first.access_hash;
    twin.refresh_hash = first.refresh_hash;
    let other = session(3, "v", 300, 1_000);
    let imported = store
        .import(vec![first.clone(), twin.clone(), other.clone()])
        .expect("import");
    assert_eq!(imported, 3);
    assert_eq!(
        store.get(SessionId([1; 12])).await.expect("get"),
        None,
        "replaced"
    );
    let grant = store.find_access(&twin.access_hash).await.expect("find");
    assert_eq!(grant.map(|g| g.session_id), Some(SessionId([2; 12])));
    assert_eq!(store.count(), 2);
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.count(), 2, "on disk");
}

/// How earlier versions kept a session's record.
#[derive(Debug, Clone, Copy)]
enum Earlier {
    /// The previous version: compact, under a `by_user` key of its own that `sessions`
    /// points at.
    OwnKey,
    /// Before that: as JSON in `sessions`, with an empty `by_user` entry.
    Json,
    /// As JSON in `sessions`, with a JSON copy in `by_user` that is not read (the record is).
    JsonWithCopy,
}

/// `sessions` value of the previous version: [`RECORD_REF_FORMAT`], then the session's own
/// `by_user` key.
fn encode_record_ref(own_key: &[u8]) -> Vec<u8> {
    let mut value = vec![RECORD_REF_FORMAT];
    value.extend_from_slice(own_key);
    value
}

/// Moves a session's record out of its bucket to where an earlier version kept it; its
/// index entries stay as they are.
fn write_as_earlier_version(store: &SledStore, session: &Session, form: Earlier) {
    let json = |s: &Session| serde_json::to_vec(s).expect("json");
    let (record, copy) = match form {
        Earlier::OwnKey => (
            encode_record_ref(&user_key(session)),
            encode_copy(session).expect("encodes"),
        ),
        Earlier::Json => (json(session), Vec::new()),
        Earlier::JsonWithCopy => {
            let mut stale = session.clone();
            stale.location = "stale copy".into();
            (json(session), json(&stale))
        }
    };
    store
        .transaction(|trees| {
            let Some((_, Place::Bucket(key))) = trees.find(&session.id)? else {
                return Err(abort(corrupt("the session is not in a bucket")));
            };
            trees.take_from_bucket(&key, session)?;
            trees.sessions.insert(&session.id, record.as_slice())?;
            trees.by_user.insert(user_key(session), copy.as_slice())?;
            Ok(())
        })
        .expect("rewritten");
}

/// A user's `by_user` entries: the head, if any, and how many buckets there are.
fn user_layout(store: &SledStore, user: &str) -> (Option<Head>, usize) {
    let prefix = user_prefix(user);
    let head = store
        .by_user
        .get(&prefix)
        .expect("read")
        .map(|v| Head::decode(&v).expect("a head"));
    let buckets = store
        .by_user
        .scan_prefix(&prefix)
        .keys()
        .filter(|k| k.as_ref().expect("read").len() == prefix.len() + BUCKET_NUMBER_LEN)
        .count();
    (head, buckets)
}

/// Where `sessions` says a session's record is.
fn pointer(store: &SledStore, session: &Session) -> Vec<u8> {
    store
        .sessions
        .get(session.id)
        .expect("read")
        .expect("present")
        .to_vec()
}

#[tokio::test]
async fn a_users_sessions_fill_buckets_in_turn_and_empty_ones_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    assert_eq!(BUCKET_CAPACITY, 3, "the unit tests' capacity");
    // Created newest first, so that the listing's order comes from sorting, not from the
    // order of the buckets.
    let sessions: Vec<Session> = (1..=7)
        .map(|n| session(n, "u", 10_000 - i64::from(n) * 1_000, 99_000))
        .collect();
    for s in &sessions {
        store.create(s).await.expect("create");
    }
    let other = session(20, "v", 1, 99_000);
    store.create(&other).await.expect("create");
    let prefix = user_prefix("u");

    assert_eq!(
        user_layout(&store, "u"),
        (
            Some(Head {
                open: 2,
                sessions: 7
            }),
            3
        )
    );
    let oldest_first: Vec<[u8; 12]> = sessions.iter().rev().map(|s| s.id).collect();
    assert_eq!(listed(&store, "u").await, oldest_first);
    assert_eq!(
        pointer(&store, &sessions[4]),
        encode_bucket_ref(&bucket_key(&prefix, 1))
    );

    // Emptying the middle bucket removes it; the others keep their sessions.
    for s in &sessions[3..6] {
        store.revoke(s.session_id()).await.expect("revoke");
    }
    assert_eq!(
        user_layout(&store, "u"),
        (
            Some(Head {
                open: 2,
                sessions: 4
            }),
            2
        )
    );
    assert_eq!(
        listed(&store, "u").await,
        [[7; 12], [3; 12], [2; 12], [1; 12]]
    );
    // A new session goes to the open bucket while it has room.
    let late = session(8, "u", 20_000, 99_000);
    store.create(&late).await.expect("create");
    assert_eq!(
        pointer(&store, &late),
        encode_bucket_ref(&bucket_key(&prefix, 2))
    );

    // With no sessions left the user leaves nothing behind; other users keep theirs.
    assert_eq!(store.revoke_user("u").await.expect("revoke_user"), 5);
    assert_eq!(store.by_user.scan_prefix(&prefix).count(), 0);
    assert_eq!(listed(&store, "v").await, [[20; 12]]);
    drop(store);
    let reopened = open(&dir);
    assert_eq!(
        reopened.get(other.session_id()).await.expect("get"),
        Some(other)
    );
    assert!(listed(&reopened, "u").await.is_empty());
}

#[tokio::test]
async fn a_rotated_session_stays_in_its_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let sessions: Vec<Session> = (1..=4)
        .map(|n| session(n, "u", i64::from(n), 9_000))
        .collect();
    for s in &sessions {
        store.create(s).await.expect("create");
    }
    let before = pointer(&store, &sessions[1]);
    let rotated = store
        .rotate(
            sessions[1].session_id(),
            token_hash("a2"),
            token_hash("r2"),
            60_000,
            5,
        )
        .await
        .expect("rotate")
        .expect("exists");
    // Bucket 0 was full; the session went back into it, not to the open bucket 1.
    assert_eq!(pointer(&store, &sessions[1]), before);
    assert_eq!(before, encode_bucket_ref(&bucket_key(&user_prefix("u"), 0)));
    assert_eq!(
        store.get(rotated.session_id()).await.expect("get"),
        Some(rotated.clone())
    );
    let listing = store.list_user("u").await.expect("list");
    assert_eq!(
        listing,
        [
            sessions[0].clone(),
            rotated,
            sessions[2].clone(),
            sessions[3].clone()
        ]
    );
    assert_eq!(user_layout(&store, "u").0.map(|h| h.sessions), Some(4));
}

#[tokio::test]
async fn importing_the_same_sessions_again_keeps_each_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let sessions: Vec<Session> = (1..=5)
        .map(|n| session(n, "u", i64::from(n), 9_000))
        .collect();
    assert_eq!(store.import(sessions.clone()).expect("import"), 5);
    assert_eq!(store.import(sessions.clone()).expect("import"), 5);
    assert_eq!(store.list_user("u").await.expect("list"), sessions);
    // Again with other tokens: the same ids, so the same sessions, replaced.
    let renewed: Vec<Session> = sessions
        .iter()
        .map(|s| Session {
            access_hash: token_hash(&format!("access again {}", s.id[0])),
            refresh_hash: token_hash(&format!("refresh again {}", s.id[0])),
            ..s.clone()
        })
        .collect();
    assert_eq!(store.import(renewed.clone()).expect("import"), 5);
    assert_eq!(store.list_user("u").await.expect("list"), renewed);
    assert_eq!(store.count(), 5);
    assert_eq!(user_layout(&store, "u").0.map(|h| h.sessions), Some(5));
    access_copy::assert_copy_matches_tree(&store).await;
    access_copy::assert_buckets_match(&store);
}

#[tokio::test]
async fn each_record_is_kept_once_and_sessions_only_points_at_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut kept = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_000, 50_000);
    kept.location = "Zürich, ZH CH".into();
    store.create(&kept).await.expect("create");
    let bucket = bucket_key(&user_prefix(&kept.user), 0);
    let pointer = pointer(&store, &kept);
    let record = store.by_user.get(&bucket).expect("read").expect("present");
    // The pointer is the bucket's key and a format byte: far smaller than any record.
    assert_eq!(pointer, encode_bucket_ref(&bucket));
    assert!(
        record.len() > 2 * pointer.len(),
        "{} vs {}",
        record.len(),
        pointer.len()
    );
    assert_eq!(
        store.get(kept.session_id()).await.expect("get"),
        Some(kept.clone())
    );
    drop(store);
    let reopened = open(&dir);
    assert_eq!(
        reopened.get(kept.session_id()).await.expect("get"),
        Some(kept.clone())
    );
    assert_eq!(
        reopened
            .find_refresh(&kept.refresh_hash)
            .await
            .expect("find"),
        Some(kept)
    );
}

#[tokio::test]
async fn a_store_written_by_earlier_versions_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let own_key = session(1, "u", 1_000, 50_000);
    let json = session(2, "u", 2_000, 9_000);
    let json_with_copy = session(3, "u", 3_000, 50_000);
    let current = session(4, "u", 2_500, 50_000);
    for s in [&own_key, &json, &json_with_copy, &current] {
        store.create(s).await.expect("create");
    }
    write_as_earlier_version(&store, &own_key, Earlier::OwnKey);
    write_as_earlier_version(&store, &json, Earlier::Json);
    write_as_earlier_version(&store, &json_with_copy, Earlier::JsonWithCopy);
    drop(store);
    let store = open(&dir);
    for s in [&own_key, &json, &json_with_copy, &current] {
        assert_eq!(
            store.get(s.session_id()).await.expect("get").as_ref(),
            Some(s)
        );
        assert_eq!(
            store
                .find_refresh(&s.refresh_hash)
                .await
                .expect("find")
                .as_ref(),
            Some(s)
        );
    }
    // Listed together, oldest first, whichever way each is kept.
    assert_eq!(
        store.list_user("u").await.expect("list"),
        [
            own_key.clone(),
            json.clone(),
            current.clone(),
            json_with_copy.clone()
        ]
    );

    // Revoking and sweeping remove the old records with all their index entries.
    assert_eq!(
        store.revoke(own_key.session_id()).await.expect("revoke"),
        Some(own_key.clone())
    );
    assert!(
        store
            .by_user
            .get(user_key(&own_key))
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .find_access(&own_key.access_hash)
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(store.sweep_expired(10_000).await.expect("sweep"), 1);
    assert_eq!(store.get(json.session_id()).await.expect("get"), None);
    assert!(store.by_user.get(user_key(&json)).expect("read").is_none());

    // A rotation moves the session into a bucket.
    let rotated = store
        .rotate(
            json_with_copy.session_id(),
            token_hash("a2"),
            token_hash("r2"),
            60_000,
            4_000,
        )
        .await
        .expect("rotate")
        .expect("exists");
    assert_eq!(pointer(&store, &rotated)[0], BUCKET_REF_FORMAT);
    assert!(
        store
            .by_user
            .get(user_key(&json_with_copy))
            .expect("read")
            .is_none()
    );
    assert_eq!(
        store.list_user("u").await.expect("list"),
        [current.clone(), rotated.clone()]
    );
    assert_eq!(
        store.get(rotated.session_id()).await.expect("get"),
        Some(rotated)
    );
    assert_eq!(store.count(), 2);
    assert_eq!(store.by_expiry.len(), 2);
    access_copy::assert_buckets_match(&store);

    // Revoking a user removes sessions kept either way.
    let mut older = session(5, "u", 500, 50_000);
    older.access_hash = token_hash("a5");
    store.create(&older).await.expect("create");
    write_as_earlier_version(&store, &older, Earlier::OwnKey);
    assert_eq!(store.revoke_user("u").await.expect("revoke_user"), 3);
    assert_eq!(store.by_user.len(), 0);
    assert_eq!(store.sessions.len(), 0);
    assert_eq!(store.count(), 0);
}

#[tokio::test]
async fn a_large_users_listing_is_read_in_parts_and_misses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    // A realistic creation time: keys of the previous version's layout then sort after
    // every bucket number in use, so only a last part that runs to the user's end finds them.
    let t0 = 1_700_000_000_000;
    let mut expected = Vec::new();
    for n in 1..=30 {
        let s = session(n, "u", t0 + i64::from(n) * 1_000, i64::MAX);
        store.create(&s).await.expect("create");
        expected.push(s);
    }
    // Neighbours on both sides of the user's keys, whose sessions must not be listed.
    for (n, user) in [(101, "t"), (102, "v"), (103, "uu")] {
        store
            .create(&session(n, user, t0, i64::MAX))
            .await
            .expect("create");
    }
    // Gaps: two emptied buckets and a part of a third.
    for n in [4, 5, 6, 13, 14, 15, 20] {
        store.revoke(SessionId([n; 12])).await.expect("revoke");
    }
    expected.retain(|s| ![4, 5, 6, 13, 14, 15, 20].contains(&s.id[0]));
    // Sessions kept as earlier versions did: one created long ago, one at about the same
    // time as the rest.
    for (n, created_at_ms) in [(31, 1_000), (32, t0 + 15_500)] {
        let s = session(n, "u", created_at_ms, i64::MAX);
        store.create(&s).await.expect("create");
        write_as_earlier_version(&store, &s, Earlier::OwnKey);
        expected.push(s);
    }
    let mut json = session(33, "u", t0 + 40_000, i64::MAX);
    json.access_hash = token_hash("a33");
    store.create(&json).await.expect("create");
    write_as_earlier_version(&store, &json, Earlier::Json);
    expected.push(json);
    expected.sort_by_key(|s| s.created_at_ms);

    let (head, _) = user_layout(&store, "u");
    let buckets = u64::from(head.expect("a head").open) + 1;
    assert!(
        buckets > 2 * LIST_PART_BUCKETS,
        "the listing must be read in several parts ({buckets} buckets)"
    );
    assert_eq!(store.list_user("u").await.expect("list"), expected);
    assert_eq!(listed(&store, "t").await, [[101; 12]]);
    assert_eq!(listed(&store, "v").await, [[102; 12]]);
    assert_eq!(listed(&store, "uu").await, [[103; 12]]);
}

#[tokio::test]
async fn a_record_in_no_known_form_is_an_error_not_a_missing_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let kept = session(1, "u", 1_000, 50_000);
    store.create(&kept).await.expect("create");
    let bucket = bucket_key(&user_prefix("u"), 0);
    store.sessions.insert(kept.id, &[9, 9, 9]).expect("damage");
    assert!(matches!(
        store.get(kept.session_id()).await,
        Err(StoreError::Corrupt(_))
    ));
    // The pointer is sound but the bucket it names is cut short.
    store
        .sessions
        .insert(kept.id, encode_bucket_ref(&bucket))
        .expect("repair");
    let whole = store.by_user.get(&bucket).expect("read").expect("present");
    store
        .by_user
        .insert(&bucket, &whole[..whole.len() - 5])
        .expect("damage");
    assert!(matches!(
        store.get(kept.session_id()).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_user("u").await,
        Err(StoreError::Corrupt(_))
    ));
    // The bucket is sound but no longer holds the session.
    store
        .by_user
        .insert(&bucket, &[BUCKET_FORMAT])
        .expect("damage");
    assert!(matches!(
        store.revoke(kept.session_id()).await,
        Err(StoreError::Corrupt(_))
    ));
    // A bucket in no known form.
    store.by_user.insert(&bucket, &[7, 7]).expect("damage");
    assert!(matches!(
        store.list_user("u").await,
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_bucket_gives_back_its_sessions_exactly() {
    let mut first = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_700_000_000_123, i64::MAX);
    first.location = "Zürich, ZH CH \"quoted\"".into();
    let second = session(2, "5fc1d2e3a4b5c6d7e8f90a1b", 5, 6);
    let mut bucket = vec![BUCKET_FORMAT];
    push_entry(&mut bucket, &first).expect("encodes");
    push_entry(&mut bucket, &second).expect("encodes");
    let decoded: Vec<([u8; 12], Session)> = entries(&bucket)
        .expect("a bucket")
        .map(|e| {
            let (id, record) = e.expect("an entry");
            (id, decode_entry(record).expect("decodes"))
        })
        .collect();
    assert_eq!(
        decoded,
        [(first.id, first.clone()), (second.id, second.clone())]
    );
    assert_eq!(
        find_in_bucket(&bucket, &second.id).expect("reads"),
        Some(second.clone())
    );
    assert_eq!(find_in_bucket(&bucket, &[9; 12]).expect("reads"), None);

    let rest = without_entry(&bucket, &first.id).expect("reads");
    assert_eq!(find_in_bucket(&rest, &first.id).expect("reads"), None);
    assert_eq!(
        find_in_bucket(&rest, &second.id).expect("reads"),
        Some(second)
    );
    assert_eq!(
        without_entry(&rest, &[2; 12]).expect("reads"),
        [BUCKET_FORMAT]
    );
    // Any cut is an error, never a shorter list or a wrong session.
    for cut in 1..bucket.len() {
        let cut = &bucket[..cut];
        let last = entries(cut).expect("a bucket").last();
        let ends_between_entries = cut.len() == 1 || cut.len() == bucket.len() - (rest.len() - 1);
        if !ends_between_entries {
            assert!(matches!(last, Some(Err(_))), "cut at {}", cut.len());
        }
    }
}

#[test]
fn the_compact_copy_gives_back_the_session_exactly() {
    let mut original = session(7, "5fc1d2e3a4b5c6d7e8f90a1b", 1_700_000_000_123, i64::MAX);
    original.location = "Zürich, ZH CH \"quoted\"".into();
    let copy = encode_copy(&original).expect("encodes");
    assert_eq!(copy[0], COPY_FORMAT);
    // Much smaller than the JSON record (the hashes are raw bytes, not hex).
    let json = serde_json::to_vec(&original).expect("json");
    assert!(
        copy.len() * 2 < json.len(),
        "{} vs {}",
        copy.len(),
        json.len()
    );
    assert_eq!(decode_copy(&copy).expect("decodes"), Some(original));
    // A cut copy is an error, not a wrong session.
    assert!(decode_copy(&copy[..copy.len() - 3]).is_err());
}

/// Writers racing on the same sessions from several threads, each flushing: every write
/// returns (with sled 0.34's `flush_async` called concurrently, this hung in six runs of six),
/// and the store ends consistent.
#[test]
fn racing_writers_never_hang_the_store() {
    // A hung store blocks the runtime's threads, so the deadline is kept by this thread.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(race_writers());
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("every write returns within a minute");
}

async fn race_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let sessions: Vec<Session> = (0..8).map(|n| session(n, "u", 0, 9_000)).collect();
    for s in &sessions {
        store.create(s).await.expect("create");
    }
    let mut writers = tokio::task::JoinSet::new();
    for worker in 0u8..8 {
        let store = store.clone();
        let ids: Vec<SessionId> = sessions.iter().map(Session::session_id).collect();
        writers.spawn(async move {
            for round in 0u8..40 {
                let id = ids[usize::from(worker.wrapping_add(round)) % ids.len()];
                let access = token_hash(&format!("access {worker} {round}"));
                let refresh = token_hash(&format!("refresh {worker} {round}"));
                if (worker + round) % 5 == 0 {
                    store.revoke(id).await.expect("revoke");
                } else {
                    store
                        .rotate(id, access, refresh, 9_000, 0)
                        .await
                        .expect("rotate");
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer finished");
    }
    // Every session that is left holds its latest tokens, and nothing else is indexed.
    let left = store.list_user("u").await.expect("list");
    assert_eq!(store.by_access.len(), left.len());
    for s in &left {
        assert_eq!(
            store.find_access(&s.access_hash).await.expect("find"),
            Some(grant(s))
        );
    }
    // The copy of the access index ends equal to the tree.
    access_copy::assert_copy_matches_tree(&store).await;
}

/// The in-memory copy of `by_access` against the tree itself.
mod access_copy {
    use super::*;
    use proptest::prelude::*;

    /// Token hashes are drawn from small pools, so that sessions share them and evict each
    /// other; users and expiries too, so that user revocations and sweeps hit several.
    #[derive(Debug, Clone)]
    enum Op {
        Create {
            access: u8,
            refresh: u8,
            user: u8,
            expire: i64,
        },
        Rotate {
            nth: u8,
            access: u8,
            refresh: u8,
            expire: i64,
        },
        Revoke {
            nth: u8,
        },
        RevokeUser {
            user: u8,
        },
        Sweep {
            now: i64,
        },
        Import {
            count: u8,
            access: u8,
            user: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let access = 0u8..6;
        let expire = (1i64..6).prop_map(|k| k * 1_000);
        prop_oneof![
            4 => (access.clone(), 0u8..6, 0u8..3, expire.clone())
                .prop_map(|(access, refresh, user, expire)| Op::Create { access, refresh, user, expire }),
            2 => (any::<u8>(), access.clone(), 0u8..6, expire)
                .prop_map(|(nth, access, refresh, expire)| Op::Rotate { nth, access, refresh, expire }),
            1 => any::<u8>().prop_map(|nth| Op::Revoke { nth }),
            1 => (0u8..3).prop_map(|user| Op::RevokeUser { user }),
            1 => (0i64..7).prop_map(|k| Op::Sweep { now: k * 1_000 }),
            1 => (1u8..4, access, 0u8..3)
                .prop_map(|(count, access, user)| Op::Import { count, access, user }),
        ]
    }

    fn hash(kind: &str, n: u8) -> TokenHash {
        token_hash(&format!("{kind} {n}"))
    }

    /// A session with a fresh id (the `n`th created).
    fn fresh(n: usize, access: u8, refresh: u8, user: u8, expire_at_ms: i64) -> Session {
        let mut s = session(0, &format!("user {user}"), 0, expire_at_ms);
        s.id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        s.access_hash = hash("access", access);
        s.refresh_hash = hash("refresh", refresh);
        s
    }

    /// Runs the operations; the copy must give what the tree holds, every step of the way.
    async fn run(store: &SledStore, ops: &[Op]) {
        let mut created = Vec::new();
        for op in ops {
            match *op {
                Op::Create {
                    access,
                    refresh,
                    user,
                    expire,
                } => {
                    let s = fresh(created.len(), access, refresh, user, expire);
                    store.create(&s).await.expect("create");
                    created.push(s.session_id());
                }
                Op::Rotate {
                    nth,
                    access,
                    refresh,
                    expire,
                } if !created.is_empty() => {
                    let id = created[usize::from(nth) % created.len()];
                    store
                        .rotate(
                            id,
                            hash("access", access),
                            hash("refresh", refresh),
                            expire,
                            0,
                        )
                        .await
                        .expect("rotate");
                }
                Op::Revoke { nth } if !created.is_empty() => {
                    let id = created[usize::from(nth) % created.len()];
                    store.revoke(id).await.expect("revoke");
                }
                Op::RevokeUser { user } => {
                    store
                        .revoke_user(&format!("user {user}"))
                        .await
                        .expect("revoke_user");
                }
                Op::Sweep { now } => {
                    store.sweep_expired(now).await.expect("sweep");
                }
                Op::Import {
                    count,
                    access,
                    user,
                } => {
                    let batch: Vec<Session> = (0..count)
                        .map(|k| fresh(created.len() + usize::from(k), access + k, k, user, 9_000))
                        .collect();
                    created.extend(batch.iter().map(Session::session_id));
                    store.import(batch).expect("import");
                }
                Op::Rotate { .. } | Op::Revoke { .. } => {}
            }
            assert_copy_matches_tree(store).await;
            assert_buckets_match(store);
        }
    }

    /// `by_user` agrees with `sessions`: each session is in the bucket its pointer names,
    /// exactly once; each user's head counts the sessions in the user's buckets; no bucket is
    /// empty or over capacity.
    pub(super) fn assert_buckets_match(store: &SledStore) {
        let mut bucket_of = std::collections::HashMap::new();
        let mut counted = std::collections::HashMap::<Vec<u8>, u32>::new();
        let mut heads = std::collections::HashMap::new();
        for entry in store.by_user.iter() {
            let (key, value) = entry.expect("read by_user");
            let user_len = usize::from(u16::from_be_bytes([key[0], key[1]]));
            let (prefix, rest) = key.split_at(2 + user_len);
            match rest.len() {
                0 => {
                    heads.insert(prefix.to_vec(), Head::decode(&value).expect("a head"));
                }
                BUCKET_NUMBER_LEN => {
                    let ids: Vec<[u8; 12]> = entries(&value)
                        .expect("a bucket")
                        .map(|e| e.expect("an entry").0)
                        .collect();
                    assert!(
                        (1..=BUCKET_CAPACITY).contains(&ids.len()),
                        "a bucket of {}",
                        ids.len()
                    );
                    *counted.entry(prefix.to_vec()).or_default() +=
                        u32::try_from(ids.len()).expect("small");
                    for id in ids {
                        let twice = bucket_of.insert(id, key.to_vec());
                        assert!(twice.is_none(), "a session in two buckets");
                    }
                }
                other => panic!("a key {other} bytes past its user's prefix"),
            }
        }
        let heads: std::collections::HashMap<Vec<u8>, u32> =
            heads.into_iter().map(|(k, h)| (k, h.sessions)).collect();
        assert_eq!(heads, counted, "each head counts its user's sessions");
        for entry in store.sessions.iter() {
            let (id, pointer) = entry.expect("read sessions");
            let id: [u8; 12] = id.as_ref().try_into().expect("a 12-byte id");
            let bucket = bucket_of.get(&id).expect("every session is in a bucket");
            assert_eq!(pointer.as_ref(), encode_bucket_ref(bucket));
        }
        assert_eq!(
            store.sessions.len(),
            bucket_of.len(),
            "every bucket entry is a session"
        );
    }

    /// Every entry of `by_access` is in the copy with the same grant, the copy holds nothing
    /// else, and there is one entry per session.
    pub(super) async fn assert_copy_matches_tree(store: &SledStore) {
        let mut entries = 0;
        for entry in store.by_access.iter() {
            let (key, value) = entry.expect("read by_access");
            let hash: TokenHash = key.as_ref().try_into().expect("a 64-byte key");
            let in_tree = decode_grant(&value).expect("decodes");
            assert_eq!(store.find_access(&hash).await.expect("find"), Some(in_tree));
            entries += 1;
        }
        assert_eq!(
            store.count(),
            entries,
            "the copy holds exactly the tree's entries"
        );
        assert_eq!(store.sessions.len(), entries, "one access hash a session");
        // Hashes from the pools that the tree does not hold are not in the copy either.
        for n in 0..9 {
            let absent = hash("access", n);
            if store.by_access.get(absent).expect("get").is_none() {
                assert_eq!(store.find_access(&absent).await.expect("find"), None);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Applying each transaction's changes keeps the copy equal to the tree, and a copy
        /// loaded from the tree at start-up is equal to it too.
        #[test]
        fn the_copy_follows_the_tree_and_reloads_from_it(ops in proptest::collection::vec(op(), 1..40)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            rt.block_on(async {
                let dir = tempfile::tempdir().expect("tempdir");
                {
                    let store = open(&dir);
                    run(&store, &ops).await;
                }
                let reopened = open(&dir);
                assert_copy_matches_tree(&reopened).await;
                assert_buckets_match(&reopened);
            });
        }
    }
}

/// Transactions from several threads at once, without the flushes in between that make
/// writers take turns: the copy still ends equal to the tree. Without the writers' lock in
/// [`SledStore::transaction`], a rotation could commit after another and apply its changes
/// to the copy before it, leaving a rotated-away access token in the copy for good: with the
/// lock taken out, this failed 8 runs of 8 on an otherwise idle 2-core machine.
#[test]
fn transactions_racing_on_threads_leave_the_copy_equal_to_the_tree() {
    /// Each thread's; about a second in all in a debug build.
    const ROTATIONS: u32 = 2_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let ids: Vec<SessionId> = (0..2)
        .map(|n| {
            let s = session(n, "u", 0, 9_000);
            store
                .transaction(|trees| trees.put(&s, None, &mut Vec::new()))
                .expect("create");
            s.session_id()
        })
        .collect();
    std::thread::scope(|scope| {
        for worker in 0u32..4 {
            let (store, ids) = (&store, &ids);
            scope.spawn(move || {
                for round in 0u32..ROTATIONS {
                    let id = ids[(round as usize) % ids.len()];
                    let access = token_hash(&format!("access {worker} {round}"));
                    let refresh = token_hash(&format!("refresh {worker} {round}"));
                    store
                        .transaction(|trees| trees.rotate(id, access, refresh, 9_000, 0))
                        .expect("rotate")
                        .expect("the session exists");
                }
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(access_copy::assert_copy_matches_tree(&store));
}

/// A write waits for the store on tokio's blocking pool, not on the thread that called it,
/// which meanwhile serves its other tasks (in the gateway, other connections). The writers'
/// lock, held here by the test, stands in for a slow disk. With the transaction run on the
/// caller's thread, the runtime's only thread waited on the lock and the other task never ran.
#[test]
fn a_write_waiting_for_the_store_leaves_the_callers_thread_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let s = session(1, "u", 0, 9_000);
    let held = store.writer.lock().expect("the writers' lock");
    let (ran, other_task_ran) = std::sync::mpsc::channel();
    let runtime_thread = {
        let (store, s) = (store.clone(), s.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let write = tokio::spawn(async move { store.create(&s).await });
                // Long enough for the write to have started and reached the lock.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let _ = ran.send(());
                write.await.expect("the write's task")
            })
        })
    };
    let freed = other_task_ran.recv_timeout(std::time::Duration::from_secs(10));
    drop(held);
    let created = runtime_thread.join().expect("the runtime's thread");
    assert!(
        freed.is_ok(),
        "another task ran while the write waited for the store"
    );
    assert_eq!(created.expect("create"), Vec::<SessionId>::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(
        rt.block_on(store.get(s.session_id())).expect("get"),
        Some(s)
    );
}
