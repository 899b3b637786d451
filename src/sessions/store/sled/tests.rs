//! The sled store's own tests: the contract every store keeps ([`contract_tests!`]), then what
//! is sled's alone (the buckets, the layouts of earlier versions, the access index's copy,
//! writers racing).

use super::layout::*;
use super::read::LIST_PART_BUCKETS;
use super::write::abort;
use super::*;
use crate::auth::token_hash;
use crate::sessions::store::contract::{Fixture, contract_tests, grant, listed, rotation, session};

mod access_copy;
mod buckets;
mod concurrency;
mod earlier_versions;
mod encoding;

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

/// A store in a temporary directory; a restart drops it and opens the directory again.
pub(crate) struct SledFixture {
    dir: tempfile::TempDir,
    store: Option<SledStore>,
}

#[async_trait]
impl Fixture for SledFixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Some(open(&dir));
        SledFixture { dir, store }
    }

    fn store(&self) -> &dyn SessionStore {
        self.store.as_ref().expect("open")
    }

    async fn restart(&mut self) {
        self.store = None;
        self.store = Some(open(&self.dir));
    }
}

contract_tests!(SledFixture);

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
        store.get("u", SessionId([1; 12])).await.expect("get"),
        None,
        "replaced"
    );
    let grant = store
        .find_access(&twin.user, &twin.access_hash)
        .await
        .expect("find");
    assert_eq!(grant.map(|g| g.session_id), Some(SessionId([2; 12])));
    assert_eq!(store.count(), 2);
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.count(), 2, "on disk");
}

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
            let Some((_, RecordPlace::Bucket(key))) = trees.find(&session.id)? else {
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
fn user_layout(store: &SledStore, user: &str) -> (Option<BucketsHead>, usize) {
    let prefix = user_prefix(user);
    let head = store
        .by_user
        .get(&prefix)
        .expect("read")
        .map(|v| BucketsHead::decode(&v).expect("a head"));
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
