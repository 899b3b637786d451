//! The session store: the [`SessionStore`] interface and its sled implementation.
//!
//! Layout in sled, one tree per concern, so that no request scans the table:
//!
//! | tree         | key                                   | value                        |
//! |--------------|---------------------------------------|------------------------------|
//! | `sessions`   | session id (12 bytes)                 | where its record is: the `by_user` key of its bucket (`encode_bucket_ref`) |
//! | `by_access`  | SHA-512 of the access token           | id, expiry, user ([`AccessGrant`]) |
//! | `by_refresh` | SHA-512 of the refresh token          | session id                   |
//! | `by_user`    | user length (u16), user, bucket number (u32) | a bucket: up to `BUCKET_CAPACITY` of the user's sessions, compact (`Entries`) |
//! | `by_user`    | user length (u16), user               | the user's head (`Head`): the bucket new sessions go to, and how many the buckets hold |
//! | `by_expiry`  | expiry (ms, big-endian), id           | empty: what the sweeper removes |
//! | `rotated`    | SHA-512 of a rotated-away refresh token | id, rotation time, expiry ([`RotatedToken`]) |
//! | `rotated_by_expiry` | expiry, hash                   | empty: what the sweeper removes |
//!
//! A refresh token that was rotated away stays in `rotated` until it would have expired, so a
//! second use of it (a stolen copy) can be recognised.
//!
//! The per-request check reads an in-memory copy of `by_access` (`access_index`), kept
//! in step with the tree: its entries carry what the check needs, so no record is decoded and
//! no request waits for sled. The other [`SessionStore`] methods read and write sled on
//! tokio's blocking pool (`SledStore::blocking`), so that a wait for the disk never holds up
//! a thread that serves connections.
//!
//! The session records live in `by_user`, in a compact binary form,
//! a user's sessions together in buckets: a new session goes to the user's open bucket, and
//! to a new one once that is full; a rotated session stays where it is. Listing a user's
//! sessions reads one value per 8 sessions, not one per session: sled 0.34 splits a leaf
//! above 16 entries whatever their size, so 1,000 sessions under keys of their own lay in 60
//! or more leaves, each a separate read once out of sled's cache, and in buckets they lie in
//! 8 to 11 (benches/README.md). Out of the page cache each leaf is a read from disk, so a
//! large user's buckets are read in parts side by side (`list_user`). `sessions` only
//! says where each record is. Keeping each record once, not also as JSON in `sessions` as
//! earlier versions did, halves the data (1M sessions: 1,053 MB of keys and values before,
//! 534 MB after), so a store takes less disk and more of it fits in the OS's page cache.
//!
//! Stores written by earlier versions keep working. Their sessions have a `by_user` key of
//! their own (user, creation time, id), holding the compact record, an older form of it or
//! nothing; in the last two cases `sessions` holds the record as JSON. Such a session is
//! written in the current layout when it next changes.
//!
//! Every change touches all trees in one sled transaction and is
//! flushed to disk before the call returns, so a created or revoked session is durable before
//! the response that reports it is sent.
//!
//! A token hash belongs to at most one session. The uploader's tokens carry no unique id, so
//! two logins of one user in the same second get byte-identical tokens; the newer session
//! then takes the hash over and the older record is removed (it could never be told apart
//! from the newer one again, and revoking one must not leave the same token working).

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures_util::future::try_join_all;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::{Session, SessionId};
use crate::auth::TokenHash;

mod access_index;

use access_index::{AccessChange, AccessIndex};

/// Most sessions removed in one sweep transaction.
const SWEEP_BATCH: usize = 1000;

/// sled's own default page cache size.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// Sessions written per batch by [`SledStore::import`].
const IMPORT_BATCH: usize = 10_000;

/// A listing reads a user's buckets in parts of about this many, side by side, once there
/// are more than this: about one sled leaf's worth (sled 0.34 splits a leaf above 16
/// entries). Small in unit tests, so that their listings are read in parts.
const LIST_PART_BUCKETS: u64 = if cfg!(test) { 2 } else { 16 };

/// Most parts one listing is read in.
const LIST_PARTS_MAX: u64 = 8;

/// Removing many sessions at once first reads what its transaction will need in parts of at
/// least this many sessions, side by side (`SledStore::warm_for_removal`). Small in unit
/// tests, so that their removals go through it.
const WARM_PART_SESSIONS: usize = if cfg!(test) { 1 } else { 32 };

/// Most parts the entries of a removal are read in.
const WARM_PARTS_MAX: usize = 8;

/// Most sessions one `by_user` bucket holds. Larger buckets make listings read fewer values
/// but make every change rewrite more: sled rewrites a whole value to change it, and the
/// stale copies take disk until sled reclaims their segments. Filling a 3M store, 8 gave
/// listings about twice as fast as sessions under keys of their own, on 18 % more disk; 24
/// was a little faster still, on twice the disk (benches/README.md). Small in unit tests, so
/// that a few sessions fill several buckets.
const BUCKET_CAPACITY: usize = if cfg!(test) { 3 } else { 8 };

/// A store failure: the gateway answers 500 and logs it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("session store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("session store: corrupt record: {0}")]
    Corrupt(String),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

/// What the per-request check needs from the session holding an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The session.
    pub session_id: SessionId,
    /// Its user.
    pub user: String,
    /// When it ends, ms since the epoch.
    pub expire_at_ms: i64,
}

impl AccessGrant {
    /// What the check needs from `session`.
    pub fn of(session: &Session) -> AccessGrant {
        AccessGrant {
            session_id: session.session_id(),
            user: session.user.clone(),
            expire_at_ms: session.expire_at_ms,
        }
    }
}

/// A refresh token that a rotation replaced: kept to recognise its reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedToken {
    /// The session it belonged to.
    pub session_id: SessionId,
    /// When it was rotated away, ms since the epoch.
    pub rotated_at_ms: i64,
}

/// Where sessions live. Every method that changes something returns once the change is
/// durable. The interface is async so that a store shared by several gateway replicas can
/// implement it too.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session. Returns the ids of older sessions it replaced because they held
    /// an identical token.
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError>;

    /// The session holding this access-token hash, if any (expired ones included: the
    /// caller compares `expire_at_ms` with its clock).
    async fn find_access(&self, hash: &TokenHash) -> Result<Option<AccessGrant>, StoreError>;

    /// The session holding this refresh-token hash, if any.
    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError>;

    /// Replaces a session's token hashes and expiry in place (same id, same creation time),
    /// and remembers the replaced refresh token (see [`SessionStore::find_rotated`]).
    /// `None` if the session no longer exists.
    async fn rotate(
        &self,
        id: SessionId,
        access_hash: TokenHash,
        refresh_hash: TokenHash,
        expire_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Session>, StoreError>;

    /// The session a rotated-away refresh token belonged to, while that token has not expired.
    async fn find_rotated(&self, hash: &TokenHash) -> Result<Option<RotatedToken>, StoreError>;

    /// Removes one session; returns it if it existed.
    async fn revoke(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// Removes every session of a user; returns how many there were.
    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError>;

    /// A user's sessions, oldest first.
    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError>;

    /// One session by id.
    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// Removes sessions whose expiry is at or before `now_ms`; returns how many.
    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError>;

    /// How many sessions the store holds (may scan: for start-up, not per request).
    async fn count(&self) -> Result<usize, StoreError>;
}

/// The sled-backed store.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    sessions: sled::Tree,
    by_access: sled::Tree,
    by_refresh: sled::Tree,
    by_user: sled::Tree,
    by_expiry: sled::Tree,
    rotated: sled::Tree,
    rotated_by_expiry: sled::Tree,
    /// The copy of `by_access` that `find_access` reads.
    access: Arc<AccessIndex>,
    /// Held by each transaction until its changes are in `access`, so that the copy sees
    /// them in commit order (not held while flushing).
    writer: Arc<Mutex<()>>,
    durability: Arc<Durability>,
}

/// Group commit: one flush at a time, each covering every transaction committed before it
/// began.
///
/// sled 0.34's `flush_async` deadlocks when several run at once (sled issues #1241 and
/// #1308, fixed in sled's main branch but never released): with it, concurrent writers hung
/// the store in every run of the test `racing_writers_never_hang_the_store`. So a single
/// blocking `flush` at a time runs on tokio's blocking pool, and the writers that committed
/// while it ran share the next one.
#[derive(Default)]
struct Durability {
    /// Transactions committed so far.
    committed: AtomicU64,
    /// How many of them are known to be on disk; held while flushing.
    flushed: tokio::sync::Mutex<u64>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, with sled's default page cache (1 GiB).
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store in `dir`, keeping at most about `cache_bytes` of sled's
    /// pages in memory (the copy of the access index comes on top). Reads the whole access
    /// index, so a large store takes a while to open.
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()?;
        let by_access = db.open_tree("by_access")?;
        Ok(SledStore {
            access: Arc::new(AccessIndex::load(&by_access)?),
            writer: Arc::new(Mutex::new(())),
            sessions: db.open_tree("sessions")?,
            by_access,
            by_refresh: db.open_tree("by_refresh")?,
            by_user: db.open_tree("by_user")?,
            by_expiry: db.open_tree("by_expiry")?,
            rotated: db.open_tree("rotated")?,
            rotated_by_expiry: db.open_tree("rotated_by_expiry")?,
            durability: Arc::default(),
            db,
        })
    }

    /// Forgets rotated-away refresh tokens that have expired (keys before `end`).
    async fn sweep_rotated(&self, now_ms: i64) -> Result<(), StoreError> {
        let keys = self
            .blocking(move |store| {
                Ok(expired_keys(&store.rotated_by_expiry, now_ms)
                    .keys()
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        for batch in keys.chunks(SWEEP_BATCH).map(<[_]>::to_vec) {
            self.write(move |trees| {
                for key in &batch {
                    trees.rotated.remove(&key[8..])?;
                    trees.rotated_by_expiry.remove(key.as_ref())?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Those of a user's `by_user` entries (its head left out) whose keys lie from bucket
    /// number `from` up to, not including, bucket number `to`. `None` for `from` is the start
    /// of the user's keys, for `to` their end, so parts split at bucket numbers cover every
    /// key once, including keys of the previous version's layout.
    fn user_entries_between(
        &self,
        prefix: Vec<u8>,
        from: Option<u32>,
        to: Option<u32>,
    ) -> impl Iterator<Item = Result<UserEntry, StoreError>> {
        let prefix_len = prefix.len();
        let start = from.map_or_else(|| prefix.clone(), |n| bucket_key(&prefix, n));
        let end = match to {
            Some(n) => Some(bucket_key(&prefix, n)),
            None => prefix_end(&prefix),
        };
        let range = match end {
            Some(end) => self.by_user.range(start..end),
            None => self.by_user.range(start..),
        };
        range.filter_map(move |entry| match entry {
            Err(e) => Some(Err(e.into())),
            Ok((key, value)) => match key.len() - prefix_len {
                0 => None,
                BUCKET_NUMBER_LEN => Some(Ok(UserEntry::Bucket(value))),
                _ => Some(Ok(UserEntry::Own(key, value))),
            },
        })
    }

    /// One session by id ([`SessionStore::get`]).
    fn read(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        // Read outside a transaction, so a writer may move or remove the record between
        // reading where it is and reading it. A record that has gone from where `sessions`
        // said is looked for again, a few times: a session that has been removed is gone
        // from `sessions` too.
        for _ in 0..3 {
            let Some(record) = self.sessions.get(id.0)? else {
                return Ok(None);
            };
            let found = match decode_record(&record)? {
                Record::Session(session) => Some(*session),
                Record::Own(key) => self
                    .by_user
                    .get(key)?
                    .map(|copy| decode_indexed(&copy))
                    .transpose()?,
                Record::InBucket(key) => match self.by_user.get(key)? {
                    Some(bucket) => find_in_bucket(&bucket, &id.0)?,
                    None => None,
                },
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The sessions in a part of a user's `by_user` entries
    /// ([`SledStore::user_entries_between`]), in no particular order.
    fn list_part(
        &self,
        prefix: Vec<u8>,
        from: Option<u32>,
        to: Option<u32>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        for entry in self.user_entries_between(prefix, from, to) {
            match entry? {
                UserEntry::Bucket(bucket) => {
                    for entry in entries(&bucket)? {
                        sessions.push(decode_entry(entry?.1)?);
                    }
                }
                UserEntry::Own(key, copy) => {
                    if let Some(session) = decode_copy(&copy)? {
                        sessions.push(session);
                    } else if let Some(record) = self.sessions.get(key_id(&key))? {
                        // Indexed by an earlier version, with its JSON record in `sessions`.
                        match decode_record(&record)? {
                            Record::Session(session) => sessions.push(*session),
                            Record::Own(_) | Record::InBucket(_) => return Err(unreadable_copy()),
                        }
                    }
                }
            }
        }
        Ok(sessions)
    }

    /// Imports sessions in bulk: for seeding benchmarks, and for migrations (the uploader's
    /// existing sessions). Returns how many were imported; they are on disk when it returns.
    ///
    /// The result is what [`SessionStore::create`] for each session in turn would give (a
    /// session holding a token hash that an earlier one holds evicts it), but faster: one
    /// transaction per batch of 10,000 sessions and a single flush at the end instead of one
    /// per session. Each batch is atomic; a crash part-way keeps the batches before it.
    pub fn import(&self, sessions: impl IntoIterator<Item = Session>) -> Result<usize, StoreError> {
        let mut imported = 0;
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        let mut sessions = sessions.into_iter().peekable();
        while sessions.peek().is_some() {
            batch.clear();
            batch.extend(sessions.by_ref().take(IMPORT_BATCH));
            // One transaction a batch: `put` sees the batch's own earlier writes, so identical
            // tokens replace earlier holders exactly as one `create` after another would.
            self.transaction(|trees| {
                for session in &batch {
                    trees.put(session, None, &mut Vec::new())?;
                }
                Ok(())
            })?;
            imported += batch.len();
        }
        self.db.flush()?;
        Ok(imported)
    }

    /// Number of stored sessions (each holds one access-token hash).
    pub fn count(&self) -> usize {
        self.access.len()
    }

    /// Starts `f` on tokio's blocking pool at once, and returns what it returns.
    ///
    /// Every sled read and write of the async methods runs here, never on the thread that
    /// called: a page out of sled's cache and the OS's is a wait for the disk, and the
    /// caller's thread also serves other connections (with one worker, all of them). Out of
    /// the page cache, removing a user's 1,000 sessions held that thread for 0.4–3 s, and a
    /// login for 5–30 ms (benches/README.md). Only the access index's copy in memory is
    /// read in place. A hand-off costs about 35 µs, which a flush to disk dwarfs.
    fn blocking<T, F>(&self, f: F) -> impl Future<Output = Result<T, StoreError>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&SledStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        let task = tokio::task::spawn_blocking(move || f(&store));
        async move { task.await.map_err(task_failed)? }
    }

    /// Reads into sled's cache, side by side, what removing the sessions `ids` will read (each
    /// session's record and its entries in `by_access`, `by_refresh` and `by_expiry`), so that
    /// the transaction finds it there. Out of the page cache those lie in leaves of their own,
    /// and the transaction would read them from disk one after another while every other
    /// write waits for the writers' lock. For 1,000 sessions of one user out of the page cache
    /// that transaction took 0.16–0.71 s, and 0.08–0.20 s after this, which took 0.08–0.29 s
    /// itself (benches/README.md). A few sessions are left to the transaction.
    async fn warm_for_removal(&self, ids: &[[u8; 12]]) -> Result<(), StoreError> {
        let parts = ids.len() / WARM_PART_SESSIONS;
        if parts < 2 {
            return Ok(());
        }
        let per_part = ids.len().div_ceil(parts.min(WARM_PARTS_MAX));
        try_join_all(ids.chunks(per_part).map(|part| {
            let part = part.to_vec();
            self.blocking(move |store| {
                for id in part {
                    if let Some(session) = store.read(SessionId(id))? {
                        store.by_access.get(session.access_hash)?;
                        store.by_refresh.get(session.refresh_hash)?;
                        store.by_expiry.get(expiry_key(&session))?;
                    }
                }
                Ok(())
            })
        }))
        .await?;
        Ok(())
    }

    /// Runs `f` in one transaction over all trees (on the blocking pool), then flushes to disk.
    async fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&Trees<'_>) -> Result<T, ConflictableTransactionError<StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let result = self
            .blocking(move |store| {
                let result = store.transaction(f)?;
                store.durability.committed.fetch_add(1, Ordering::SeqCst);
                Ok(result)
            })
            .await?;
        self.flush_committed().await?;
        Ok(result)
    }

    /// Returns once every transaction committed so far is on disk.
    async fn flush_committed(&self) -> Result<(), StoreError> {
        let durability = &self.durability;
        let needed = durability.committed.load(Ordering::SeqCst);
        let mut flushed = durability.flushed.lock().await;
        if *flushed >= needed {
            // A flush that began after this caller's commit has covered it.
            return Ok(());
        }
        let covered = durability.committed.load(Ordering::SeqCst);
        self.blocking(|store| Ok(store.db.flush()?)).await?;
        *flushed = covered;
        Ok(())
    }

    /// Runs `f` in one sled transaction over all trees, then applies its changes to the
    /// access index's copy. One at a time: see [`access_index`].
    fn transaction<T>(
        &self,
        f: impl Fn(&Trees<'_>) -> Result<T, ConflictableTransactionError<StoreError>>,
    ) -> Result<T, StoreError> {
        // Nothing panics while the lock is held once sled has committed, so a poisoned lock
        // only means that an earlier `f` panicked, and its transaction was not committed.
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let access_changes = RefCell::new(Vec::new());
        let trees = (
            &self.sessions,
            &self.by_access,
            &self.by_refresh,
            &self.by_user,
            &self.by_expiry,
            &self.rotated,
            &self.rotated_by_expiry,
        );
        let result = trees.transaction(
            |(sessions, by_access, by_refresh, by_user, by_expiry, rotated, rotated_by_expiry)| {
                // sled may run `f` again after a conflict: only the last run's changes count.
                access_changes.borrow_mut().clear();
                f(&Trees {
                    sessions,
                    by_access,
                    by_refresh,
                    by_user,
                    by_expiry,
                    rotated,
                    rotated_by_expiry,
                    access_changes: &access_changes,
                })
            },
        )?;
        self.access.apply(access_changes.into_inner());
        Ok(result)
    }
}

/// The trees inside a transaction.
struct Trees<'a> {
    sessions: &'a TransactionalTree,
    by_access: &'a TransactionalTree,
    by_refresh: &'a TransactionalTree,
    by_user: &'a TransactionalTree,
    by_expiry: &'a TransactionalTree,
    rotated: &'a TransactionalTree,
    rotated_by_expiry: &'a TransactionalTree,
    /// What this run of the transaction did to `by_access`, in order.
    access_changes: &'a RefCell<Vec<AccessChange>>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Trees<'_> {
    fn get(&self, id: &[u8; 12]) -> TxResult<Option<Session>> {
        Ok(self.find(id)?.map(|(session, _)| session))
    }

    /// A session and where its record is.
    fn find(&self, id: &[u8; 12]) -> TxResult<Option<(Session, Place)>> {
        let Some(record) = self.sessions.get(id)? else {
            return Ok(None);
        };
        // Inside a transaction the trees agree: a record missing from `by_user` is damage.
        let missing = || abort(corrupt("a session's record is missing from by_user"));
        let found = match decode_record(&record).map_err(abort)? {
            Record::Session(session) => (*session, Place::Own),
            Record::Own(key) => {
                let copy = self.by_user.get(key)?.ok_or_else(missing)?;
                (decode_indexed(&copy).map_err(abort)?, Place::Own)
            }
            Record::InBucket(key) => {
                let bucket = self.by_user.get(key)?.ok_or_else(missing)?;
                let session = find_in_bucket(&bucket, id)
                    .map_err(abort)?
                    .ok_or_else(missing)?;
                (session, Place::Bucket(key.to_vec()))
            }
        };
        Ok(Some(found))
    }

    /// Writes a session and all its index entries, replacing any session with its id and
    /// evicting any other session that holds one of its token hashes. Its record goes to
    /// `bucket` if given (where a rotated session was), else to its user's open bucket.
    fn put(
        &self,
        session: &Session,
        bucket: Option<&[u8]>,
        evicted: &mut Vec<SessionId>,
    ) -> TxResult<()> {
        // A session written twice (an import run again) is kept once.
        self.remove(&session.id)?;
        for holder in [
            self.by_access
                .get(&session.access_hash[..])?
                .map(|v| grant_id(&v)),
            self.by_refresh
                .get(&session.refresh_hash[..])?
                .map(|v| grant_id(&v)),
        ]
        .into_iter()
        .flatten()
        {
            if self.remove(&holder)?.is_some() {
                evicted.push(SessionId(holder));
            }
        }
        let key = self.add_to_bucket(session, bucket)?;
        self.sessions.insert(&session.id, encode_bucket_ref(&key))?;
        self.by_access
            .insert(&session.access_hash[..], encode_grant(session))?;
        self.access_changes.borrow_mut().push(AccessChange::Put(
            session.access_hash,
            AccessGrant::of(session),
        ));
        self.by_refresh
            .insert(&session.refresh_hash[..], &session.id)?;
        self.by_expiry.insert(&expiry_key(session)[..], &[])?;
        Ok(())
    }

    /// Adds a session's record to `bucket` if given, else to its user's open bucket, or to a
    /// new one once that is full. Returns the bucket's key.
    fn add_to_bucket(&self, session: &Session, bucket: Option<&[u8]>) -> TxResult<Vec<u8>> {
        let head_key = user_prefix(&session.user);
        let mut head = self.head(&head_key)?.unwrap_or_default();
        let (key, value) = match bucket {
            Some(key) => (key.to_vec(), self.by_user.get(key)?),
            None => loop {
                let key = bucket_key(&head_key, head.open);
                match self.by_user.get(&key)? {
                    Some(full) if entries(&full).map_err(abort)?.count() >= BUCKET_CAPACITY => {
                        head.open = head.open.checked_add(1).ok_or_else(|| {
                            abort(corrupt("a user's bucket numbers have run out"))
                        })?;
                    }
                    value => break (key, value),
                }
            },
        };
        let mut value = value.map_or_else(|| vec![BUCKET_FORMAT], |v| v.to_vec());
        push_entry(&mut value, session).map_err(abort)?;
        self.by_user.insert(key.as_slice(), value)?;
        head.sessions += 1;
        self.by_user.insert(head_key, &head.encode())?;
        Ok(key)
    }

    /// Takes a session's record out of its bucket. A bucket left empty is removed, and so is
    /// the user's head once the user has no sessions in buckets.
    fn take_from_bucket(&self, key: &[u8], session: &Session) -> TxResult<()> {
        let damaged = |what: &str| abort(corrupt(format!("a bucket's {what} is missing")));
        let bucket = self.by_user.get(key)?.ok_or_else(|| damaged("value"))?;
        let rest = without_entry(&bucket, &session.id).map_err(abort)?;
        if rest != [BUCKET_FORMAT] {
            self.by_user.insert(key, rest)?;
        } else {
            self.by_user.remove(key)?;
        }
        let head_key = user_prefix(&session.user);
        let mut head = self.head(&head_key)?.ok_or_else(|| damaged("head"))?;
        head.sessions = head.sessions.saturating_sub(1);
        if head.sessions > 0 {
            self.by_user.insert(head_key, &head.encode())?;
        } else {
            self.by_user.remove(head_key)?;
        }
        Ok(())
    }

    /// A user's head, by its key ([`user_prefix`]).
    fn head(&self, key: &[u8]) -> TxResult<Option<Head>> {
        match self.by_user.get(key)? {
            Some(value) => Ok(Some(Head::decode(&value).map_err(abort)?)),
            None => Ok(None),
        }
    }

    /// Gives a session new token hashes and expiry; remembers its old refresh token until
    /// the old expiry. `None` if there is no such session.
    fn rotate(
        &self,
        id: SessionId,
        access_hash: TokenHash,
        refresh_hash: TokenHash,
        expire_at_ms: i64,
        now_ms: i64,
    ) -> TxResult<Option<Session>> {
        let Some((old, place)) = self.take(&id.0)? else {
            return Ok(None);
        };
        if old.refresh_hash != refresh_hash {
            // The old refresh token lives until the old expiry: remember it until then.
            let mut value = Vec::with_capacity(28);
            value.extend_from_slice(&old.id);
            value.extend_from_slice(&now_ms.to_be_bytes());
            value.extend_from_slice(&old.expire_at_ms.to_be_bytes());
            self.rotated.insert(&old.refresh_hash[..], value)?;
            self.rotated_by_expiry
                .insert(rotated_expiry_key(old.expire_at_ms, &old.refresh_hash), &[])?;
        }
        let session = Session {
            access_hash,
            refresh_hash,
            expire_at_ms,
            updated_at_ms: now_ms,
            ..old
        };
        // Back into the bucket it came from (it has room: it just left it), so the record
        // never moves under a reader; one written by an earlier version joins a bucket.
        let bucket = match &place {
            Place::Bucket(key) => Some(key.as_slice()),
            Place::Own => None,
        };
        self.put(&session, bucket, &mut Vec::new())?;
        Ok(Some(session))
    }

    /// Removes a session and those index entries that still point at it.
    fn remove(&self, id: &[u8; 12]) -> TxResult<Option<Session>> {
        Ok(self.take(id)?.map(|(session, _)| session))
    }

    /// Removes a session and those index entries that still point at it; returns it and
    /// where its record was.
    fn take(&self, id: &[u8; 12]) -> TxResult<Option<(Session, Place)>> {
        let Some((session, place)) = self.find(id)? else {
            return Ok(None);
        };
        self.sessions.remove(id)?;
        if self
            .by_access
            .get(&session.access_hash[..])?
            .is_some_and(|v| &grant_id(&v) == id)
        {
            self.by_access.remove(&session.access_hash[..])?;
            self.access_changes
                .borrow_mut()
                .push(AccessChange::Remove(session.access_hash));
        }
        if self
            .by_refresh
            .get(&session.refresh_hash[..])?
            .is_some_and(|v| &grant_id(&v) == id)
        {
            self.by_refresh.remove(&session.refresh_hash[..])?;
        }
        match &place {
            Place::Bucket(key) => self.take_from_bucket(key, &session)?,
            Place::Own => {
                self.by_user.remove(user_key(&session))?;
            }
        }
        self.by_expiry.remove(&expiry_key(&session)[..])?;
        Ok(Some((session, place)))
    }
}

/// One of a user's `by_user` entries.
enum UserEntry {
    /// A bucket.
    Bucket(sled::IVec),
    /// A session under a key of its own, as the previous version wrote: the key and value.
    Own(sled::IVec, sled::IVec),
}

/// Where a session's record is kept.
enum Place {
    /// In a bucket: the bucket's `by_user` key.
    Bucket(Vec<u8>),
    /// Where earlier versions kept it: under a `by_user` key of its own ([`user_key`]), or
    /// as JSON in `sessions`.
    Own,
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

/// A store task on tokio's blocking pool that panicked or was cancelled.
fn task_failed(e: tokio::task::JoinError) -> StoreError {
    StoreError::Sled(sled::Error::Io(std::io::Error::other(e)))
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The first byte of a `sessions` value written by the previous version: the session's own
/// `by_user` key follows. (A JSON record, as earlier versions wrote, starts with `{`.)
const RECORD_REF_FORMAT: u8 = 2;

/// The first byte of a `sessions` value that names the bucket holding the session.
const BUCKET_REF_FORMAT: u8 = 3;

/// `sessions` value: [`BUCKET_REF_FORMAT`], then the `by_user` key of the session's bucket.
fn encode_bucket_ref(bucket_key: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + bucket_key.len());
    value.push(BUCKET_REF_FORMAT);
    value.extend_from_slice(bucket_key);
    value
}

/// What a `sessions` value holds.
enum Record<'a> {
    /// The session itself, as JSON (written by an earlier version).
    Session(Box<Session>),
    /// The session's own `by_user` key (written by the previous version).
    Own(&'a [u8]),
    /// The `by_user` key of the bucket holding the session.
    InBucket(&'a [u8]),
}

fn decode_record(value: &[u8]) -> Result<Record<'_>, StoreError> {
    match value.split_first() {
        Some((&BUCKET_REF_FORMAT, key)) => Ok(Record::InBucket(key)),
        Some((&RECORD_REF_FORMAT, key)) => Ok(Record::Own(key)),
        Some((b'{', _)) => serde_json::from_slice(value)
            .map(|session| Record::Session(Box::new(session)))
            .map_err(corrupt),
        _ => Err(corrupt("unknown session record format")),
    }
}

/// A user's head in `by_user`: which bucket takes the user's new sessions, and how many
/// sessions the user's buckets hold (the head goes when they hold none).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// The number of the bucket that new sessions go to while it has room.
    open: u32,
    /// Sessions in the user's buckets (not those still kept as an earlier version did).
    sessions: u32,
}

impl Head {
    /// Both numbers, big-endian.
    fn encode(self) -> [u8; 8] {
        let mut value = [0u8; 8];
        value[..4].copy_from_slice(&self.open.to_be_bytes());
        value[4..].copy_from_slice(&self.sessions.to_be_bytes());
        value
    }

    fn decode(value: &[u8]) -> Result<Head, StoreError> {
        let value: [u8; 8] = value
            .try_into()
            .map_err(|_| corrupt("a user's head is not 8 bytes"))?;
        let number = |at: usize| {
            u32::from_be_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]])
        };
        Ok(Head {
            open: number(0),
            sessions: number(4),
        })
    }
}

/// Bytes a bucket number takes at the end of its `by_user` key.
const BUCKET_NUMBER_LEN: usize = 4;

/// `by_user` key of a user's bucket: the user's prefix, then the bucket number.
fn bucket_key(user_prefix: &[u8], number: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(user_prefix.len() + BUCKET_NUMBER_LEN);
    key.extend_from_slice(user_prefix);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// The first byte of a bucket: the format of the rest ([`Entries`]).
const BUCKET_FORMAT: u8 = 3;

/// The entries of a bucket, in the order they were added. Each is the session id (12 bytes),
/// the record's length (u32, big-endian), then the session in postcard (binary serde: the
/// hashes as raw bytes, no field names). The id comes first so that finding or removing one
/// session decodes no other.
struct Entries<'a>(&'a [u8]);

fn entries(bucket: &[u8]) -> Result<Entries<'_>, StoreError> {
    match bucket.split_first() {
        Some((&BUCKET_FORMAT, rest)) => Ok(Entries(rest)),
        _ => Err(corrupt("a bucket in no known form")),
    }
}

impl<'a> Iterator for Entries<'a> {
    /// The session id and its record.
    type Item = Result<([u8; 12], &'a [u8]), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let entry = (|| {
            let (id, rest) = self.0.split_first_chunk::<12>()?;
            let (len, rest) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            let (record, rest) = rest.split_at_checked(len)?;
            Some((*id, record, rest))
        })();
        match entry {
            Some((id, record, rest)) => {
                self.0 = rest;
                Some(Ok((id, record)))
            }
            None => {
                self.0 = &[];
                Some(Err(corrupt("a bucket entry is cut short")))
            }
        }
    }
}

/// Appends a session to a bucket's value.
fn push_entry(bucket: &mut Vec<u8>, session: &Session) -> Result<(), StoreError> {
    bucket.extend_from_slice(&session.id);
    let at = bucket.len();
    bucket.extend_from_slice(&[0; 4]);
    postcard::to_io(session, &mut *bucket).map_err(corrupt)?;
    let len = u32::try_from(bucket.len() - at - 4).map_err(corrupt)?;
    bucket[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A session in a bucket entry.
fn decode_entry(record: &[u8]) -> Result<Session, StoreError> {
    postcard::from_bytes(record).map_err(corrupt)
}

/// The session with this id in a bucket, if it is there.
fn find_in_bucket(bucket: &[u8], id: &[u8; 12]) -> Result<Option<Session>, StoreError> {
    for entry in entries(bucket)? {
        let (entry_id, record) = entry?;
        if &entry_id == id {
            return decode_entry(record).map(Some);
        }
    }
    Ok(None)
}

/// A bucket's value without the entry of this id.
fn without_entry(bucket: &[u8], id: &[u8; 12]) -> Result<Vec<u8>, StoreError> {
    let mut rest = Vec::with_capacity(bucket.len());
    rest.push(BUCKET_FORMAT);
    for entry in entries(bucket)? {
        let (entry_id, record) = entry?;
        if &entry_id != id {
            rest.extend_from_slice(&entry_id);
            rest.extend_from_slice(&u32::try_from(record.len()).map_err(corrupt)?.to_be_bytes());
            rest.extend_from_slice(record);
        }
    }
    Ok(rest)
}

/// The session a `by_user` key of its own holds, from the previous version: it must hold one.
fn decode_indexed(value: &[u8]) -> Result<Session, StoreError> {
    decode_copy(value)?.ok_or_else(unreadable_copy)
}

fn unreadable_copy() -> StoreError {
    corrupt("a session's record in by_user is in no known form")
}

/// The first byte of a `by_user` value of the previous version's layout, under a session's
/// own key: the format of the rest.
const COPY_FORMAT: u8 = 1;

/// `by_user` value of the previous version's layout: [`COPY_FORMAT`], then the session in
/// postcard. Written now only by tests, as that version did.
#[cfg(test)]
fn encode_copy(session: &Session) -> Result<Vec<u8>, StoreError> {
    let mut copy = vec![COPY_FORMAT];
    postcard::to_io(session, &mut copy).map_err(corrupt)?;
    Ok(copy)
}

/// The session in a `by_user` value under a session's own key, or `None` if it holds no copy
/// in the previous version's format (empty, or an older form): then the record in `sessions`
/// is read instead.
fn decode_copy(value: &[u8]) -> Result<Option<Session>, StoreError> {
    match value.split_first() {
        Some((&COPY_FORMAT, rest)) => postcard::from_bytes(rest).map(Some).map_err(corrupt),
        _ => Ok(None),
    }
}

/// `by_access` value: id (12), expiry (8, big-endian), user (rest).
fn encode_grant(session: &Session) -> Vec<u8> {
    let mut value = Vec::with_capacity(20 + session.user.len());
    value.extend_from_slice(&session.id);
    value.extend_from_slice(&session.expire_at_ms.to_be_bytes());
    value.extend_from_slice(session.user.as_bytes());
    value
}

/// The session id at the start of a `by_access` or `by_refresh` value.
fn grant_id(value: &[u8]) -> [u8; 12] {
    let mut id = [0u8; 12];
    id.copy_from_slice(&value[..12]);
    id
}

fn decode_grant(value: &[u8]) -> Result<AccessGrant, StoreError> {
    if value.len() < 20 {
        return Err(corrupt("short access index entry"));
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&value[12..20]);
    Ok(AccessGrant {
        session_id: SessionId(grant_id(value)),
        expire_at_ms: i64::from_be_bytes(expiry),
        user: String::from_utf8(value[20..].to_vec()).map_err(corrupt)?,
    })
}

/// `by_user` prefix of a user: length-prefixed so that "ab" never matches "abc".
fn user_prefix(user: &str) -> Vec<u8> {
    let len = u16::try_from(user.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + user.len() + 20);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(user.as_bytes());
    key
}

/// The first key after every key that starts with `prefix` (`None`: there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A session's own `by_user` key, in the previous version's layout: the user's prefix, the
/// creation time, the id.
fn user_key(session: &Session) -> Vec<u8> {
    let mut key = user_prefix(&session.user);
    key.extend_from_slice(&session.created_at_ms.to_be_bytes());
    key.extend_from_slice(&session.id);
    key
}

fn expiry_key(session: &Session) -> [u8; 20] {
    let mut key = [0u8; 20];
    // Expiries are positive, so big-endian bytes sort in time order.
    key[..8].copy_from_slice(&session.expire_at_ms.max(0).to_be_bytes());
    key[8..].copy_from_slice(&session.id);
    key
}

/// The entries of an expiry-keyed tree whose expiry is at or before `now_ms`.
fn expired_keys(tree: &sled::Tree, now_ms: i64) -> sled::Iter {
    match now_ms.max(0).checked_add(1) {
        Some(end) => tree.range(..end.to_be_bytes().as_slice()),
        None => tree.iter(),
    }
}

/// `rotated_by_expiry` key: expiry (big-endian), then the token hash.
fn rotated_expiry_key(expire_at_ms: i64, hash: &TokenHash) -> Vec<u8> {
    let mut key = Vec::with_capacity(72);
    key.extend_from_slice(&expire_at_ms.max(0).to_be_bytes());
    key.extend_from_slice(hash);
    key
}

/// The session id at the end of a session's own `by_user` key or a `by_expiry` key.
fn key_id(key: &[u8]) -> [u8; 12] {
    let mut id = [0u8; 12];
    id.copy_from_slice(&key[key.len() - 12..]);
    id
}

#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError> {
        let session = session.clone();
        self.write(move |trees| {
            let mut evicted = Vec::new();
            trees.put(&session, None, &mut evicted)?;
            Ok(evicted)
        })
        .await
    }

    async fn find_access(&self, hash: &TokenHash) -> Result<Option<AccessGrant>, StoreError> {
        Ok(self.access.get(hash))
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let hash = *hash;
        self.blocking(move |store| match store.by_refresh.get(hash)? {
            Some(id) => store.read(SessionId(grant_id(&id))),
            None => Ok(None),
        })
        .await
    }

    async fn rotate(
        &self,
        id: SessionId,
        access_hash: TokenHash,
        refresh_hash: TokenHash,
        expire_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        self.write(move |trees| trees.rotate(id, access_hash, refresh_hash, expire_at_ms, now_ms))
            .await
    }

    async fn find_rotated(&self, hash: &TokenHash) -> Result<Option<RotatedToken>, StoreError> {
        let hash = *hash;
        let Some(value) = self
            .blocking(move |store| Ok(store.rotated.get(hash)?))
            .await?
        else {
            return Ok(None);
        };
        if value.len() != 28 {
            return Err(corrupt("short rotated-token entry"));
        }
        let number = |range: std::ops::Range<usize>| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&value[range]);
            i64::from_be_bytes(bytes)
        };
        Ok(Some(RotatedToken {
            session_id: SessionId(grant_id(&value)),
            rotated_at_ms: number(12..20),
        }))
    }

    async fn revoke(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.write(move |trees| trees.remove(&id.0)).await
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        // The listing reads the user's buckets in parts, and leaves them in sled's cache.
        let ids: Vec<[u8; 12]> = self.list_user(user).await?.iter().map(|s| s.id).collect();
        self.warm_for_removal(&ids).await?;
        self.write(move |trees| {
            let mut removed = 0;
            for id in &ids {
                removed += usize::from(trees.remove(id)?.is_some());
            }
            Ok(removed)
        })
        .await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let prefix = user_prefix(user);
        // Every bucket is numbered at most `open`: new ones are opened in turn, and a rotated
        // session goes back to the bucket it was in. The count only balances the parts: the
        // last runs to the end of the user's keys, so nothing beyond it is missed. A user
        // with few buckets is listed at once, by the task that read its head.
        let (buckets, listed) = {
            let prefix = prefix.clone();
            self.blocking(move |store| {
                let buckets = match store.by_user.get(&prefix)? {
                    Some(head) => u64::from(Head::decode(&head)?.open) + 1,
                    None => 0,
                };
                let listed = (buckets <= LIST_PART_BUCKETS)
                    .then(|| store.list_part(prefix, None, None))
                    .transpose()?;
                Ok((buckets, listed))
            })
            .await?
        };
        let mut sessions = match listed {
            Some(sessions) => sessions,
            None => {
                // Out of the page cache, each of a large user's leaves is a read from disk,
                // and a disk answers several reads at once about as fast as one: so the parts
                // are read side by side.
                // Parts meet at bucket numbers; the first starts at the user's first key and
                // the last runs to its end (`None`).
                let parts = buckets.div_ceil(LIST_PART_BUCKETS).min(LIST_PARTS_MAX);
                let per_part = buckets.div_ceil(parts);
                let split = |part: u64| {
                    (0 < part && part < parts)
                        .then(|| u32::try_from(part * per_part).ok())
                        .flatten()
                };
                let readers = (0..parts).map(|part| {
                    let (prefix, from, to) = (prefix.clone(), split(part), split(part + 1));
                    self.blocking(move |store| store.list_part(prefix, from, to))
                });
                try_join_all(readers).await?.concat()
            }
        };
        // Buckets keep no order. A session moving into a bucket while this read ran could
        // be seen in both places; it is listed once.
        sessions.sort_unstable_by_key(|s| (s.created_at_ms, s.id));
        sessions.dedup_by_key(|s| s.id);
        Ok(sessions)
    }

    async fn get(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.blocking(move |store| store.read(id)).await
    }

    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        let ids = self
            .blocking(move |store| {
                Ok(expired_keys(&store.by_expiry, now_ms)
                    .keys()
                    .map(|k| k.map(|k| key_id(&k)))
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let mut removed = 0;
        // In bounded batches, so a large backlog never makes one huge transaction.
        for batch in ids.chunks(SWEEP_BATCH).map(<[_]>::to_vec) {
            self.warm_for_removal(&batch).await?;
            removed += self
                .write(move |trees| {
                    let mut removed = 0;
                    for id in &batch {
                        // Re-checked inside the transaction: a refresh may have extended it.
                        if trees.get(id)?.is_some_and(|s| s.expire_at_ms <= now_ms) {
                            trees.remove(id)?;
                            removed += 1;
                        }
                    }
                    Ok(removed)
                })
                .await?;
        }
        self.sweep_rotated(now_ms).await?;
        Ok(removed)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.access.len())
    }
}

#[cfg(test)]
pub(crate) mod tests;
