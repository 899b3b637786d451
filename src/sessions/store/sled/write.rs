//! Writes: every change is one sled transaction over all trees, applied to the access
//! index's copy as it commits, and flushed to disk before the call returns (the group
//! commit), so a created or revoked session is durable before the response that reports it
//! is sent.

use std::cell::RefCell;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::SledStore;
use super::access_index::AccessChange;
use super::layout::*;
use crate::sessions::store::dump::RotatedEntry;
use crate::sessions::store::{AccessGrant, Rotation, StoreError};
use crate::sessions::{Session, SessionId};

/// Sessions written per batch by [`SledStore::import`].
const IMPORT_BATCH: usize = 10_000;

/// Group commit: one flush at a time, each covering every transaction committed before it
/// began.
///
/// sled 0.34's `flush_async` deadlocks when several run at once (sled issues #1241 and
/// #1308, fixed in sled's main branch but never released): with it, concurrent writers hung
/// the store in every run of the test `racing_writers_never_hang_the_store`. So a single
/// blocking `flush` at a time runs on tokio's blocking pool, and the writers that committed
/// while it ran share the next one.
#[derive(Default)]
pub(super) struct Durability {
    /// Transactions committed so far.
    committed: AtomicU64,
    /// How many of them are known to be on disk; held while flushing.
    flushed: tokio::sync::Mutex<u64>,
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

impl SledStore {
    /// Stores a new session ([`SessionStore::create`](crate::sessions::SessionStore::create)).
    pub(super) async fn insert(&self, session: Session) -> Result<Vec<SessionId>, StoreError> {
        self.write(move |trees| {
            let mut evicted = Vec::new();
            trees.put(&session, None, &mut evicted)?;
            Ok(evicted)
        })
        .await
    }

    /// Removes every session of a user
    /// ([`SessionStore::revoke_user`](crate::sessions::SessionStore::revoke_user)).
    pub(super) async fn remove_user(&self, user: &str) -> Result<usize, StoreError> {
        // The listing reads the user's buckets in parts, and leaves them in sled's cache.
        let ids: Vec<[u8; 12]> = self.list(user).await?.iter().map(|s| s.id).collect();
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

    /// Imports sessions in bulk: for seeding benchmarks, and for migrations (the uploader's
    /// existing sessions). Returns how many were imported; they are on disk when it returns.
    ///
    /// The result is what [`SessionStore::create`](crate::sessions::SessionStore::create) for each session in turn would give (a
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

    /// Runs `f` in one transaction over all trees (on the blocking pool), then flushes to disk.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&TransactionTrees<'_>) -> Result<T, ConflictableTransactionError<StoreError>>
        + Send
        + 'static,
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
    pub(super) fn transaction<T>(
        &self,
        f: impl Fn(&TransactionTrees<'_>) -> Result<T, ConflictableTransactionError<StoreError>>,
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
            &self.last_active,
        );
        let result = trees.transaction(
            |(
                sessions,
                by_access,
                by_refresh,
                by_user,
                by_expiry,
                rotated,
                rotated_by_expiry,
                last_active,
            )| {
                // sled may run `f` again after a conflict: only the last run's changes count.
                access_changes.borrow_mut().clear();
                f(&TransactionTrees {
                    sessions,
                    by_access,
                    by_refresh,
                    by_user,
                    by_expiry,
                    rotated,
                    rotated_by_expiry,
                    last_active,
                    access_changes: &access_changes,
                })
            },
        )?;
        self.access.apply(access_changes.into_inner());
        Ok(result)
    }
}

/// The trees inside a transaction.
pub(super) struct TransactionTrees<'a> {
    pub(super) sessions: &'a TransactionalTree,
    pub(super) by_access: &'a TransactionalTree,
    pub(super) by_refresh: &'a TransactionalTree,
    pub(super) by_user: &'a TransactionalTree,
    pub(super) by_expiry: &'a TransactionalTree,
    pub(super) rotated: &'a TransactionalTree,
    pub(super) rotated_by_expiry: &'a TransactionalTree,
    pub(super) last_active: &'a TransactionalTree,
    /// What this run of the transaction did to `by_access`, in order.
    pub(super) access_changes: &'a RefCell<Vec<AccessChange>>,
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl TransactionTrees<'_> {
    pub(super) fn get(&self, id: &[u8; 12]) -> TxResult<Option<Session>> {
        Ok(self.find(id)?.map(|(session, _)| session))
    }

    /// A session and where its record is.
    pub(super) fn find(&self, id: &[u8; 12]) -> TxResult<Option<(Session, RecordPlace)>> {
        let Some(record) = self.sessions.get(id)? else {
            return Ok(None);
        };
        // Inside a transaction the trees agree: a record missing from `by_user` is damage.
        let missing = || abort(corrupt("a session's record is missing from by_user"));
        let found = match decode_record(&record).map_err(abort)? {
            SessionsValue::Session(session) => (*session, RecordPlace::Own),
            SessionsValue::Own(key) => {
                let copy = self.by_user.get(key)?.ok_or_else(missing)?;
                (decode_indexed(&copy).map_err(abort)?, RecordPlace::Own)
            }
            SessionsValue::InBucket(key) => {
                let bucket = self.by_user.get(key)?.ok_or_else(missing)?;
                let session = find_in_bucket(&bucket, id)
                    .map_err(abort)?
                    .ok_or_else(missing)?;
                (session, RecordPlace::Bucket(key.to_vec()))
            }
        };
        Ok(Some(found))
    }

    /// Writes a session and all its index entries, replacing any session with its id and
    /// evicting any other session that holds one of its token hashes. Its record goes to
    /// `bucket` if given (where a rotated session was), else to its user's open bucket.
    pub(super) fn put(
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
    pub(super) fn add_to_bucket(
        &self,
        session: &Session,
        bucket: Option<&[u8]>,
    ) -> TxResult<Vec<u8>> {
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
    pub(super) fn take_from_bucket(&self, key: &[u8], session: &Session) -> TxResult<()> {
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
    pub(super) fn head(&self, key: &[u8]) -> TxResult<Option<BucketsHead>> {
        match self.by_user.get(key)? {
            Some(value) => Ok(Some(BucketsHead::decode(&value).map_err(abort)?)),
            None => Ok(None),
        }
    }

    /// Gives a session of `user` new token hashes and expiry; remembers its old refresh
    /// token until the old expiry. `None` if `user` has no such session.
    pub(super) fn rotate(
        &self,
        user: &str,
        id: SessionId,
        rotation: Rotation,
    ) -> TxResult<Option<Session>> {
        if self.get(&id.0)?.is_none_or(|s| s.user != user) {
            return Ok(None);
        }
        // The last use stays with the session (taking it out forgets it).
        let last_active = self.last_active.get(last_active_key(user, &id.0))?;
        let Some((old, place)) = self.take(&id.0)? else {
            return Ok(None);
        };
        if let Some(value) = last_active {
            self.last_active
                .insert(last_active_key(user, &id.0), value)?;
        }
        if old.refresh_hash != rotation.refresh_hash {
            // The old refresh token lives until the old expiry: remember it until then.
            let value = encode_rotated(&old.id, rotation.now_ms, old.expire_at_ms);
            self.rotated.insert(&old.refresh_hash[..], value)?;
            self.rotated_by_expiry
                .insert(rotated_expiry_key(old.expire_at_ms, &old.refresh_hash), &[])?;
        }
        let session = Session {
            access_hash: rotation.access_hash,
            refresh_hash: rotation.refresh_hash,
            expire_at_ms: rotation.expire_at_ms,
            updated_at_ms: rotation.now_ms,
            ..old
        };
        // Back into the bucket it came from (it has room: it just left it), so the record
        // never moves under a reader; one written by an earlier version joins a bucket.
        let bucket = match &place {
            RecordPlace::Bucket(key) => Some(key.as_slice()),
            RecordPlace::Own => None,
        };
        self.put(&session, bucket, &mut Vec::new())?;
        Ok(Some(session))
    }

    /// Records that a session of `user` was used at `at_ms`, unless a later use is recorded
    /// or the session is gone.
    pub(super) fn touch(&self, user: &str, id: &[u8; 12], at_ms: i64) -> TxResult<()> {
        if self.get(id)?.is_none_or(|s| s.user != user) {
            return Ok(());
        }
        let key = last_active_key(user, id);
        let recorded = self.last_active.get(&key)?.map(|v| decode_ms(&v));
        if recorded.is_none_or(|recorded| recorded < at_ms) {
            self.last_active.insert(key, &at_ms.to_be_bytes())?;
        }
        Ok(())
    }

    /// Remembers a token as rotated away (see [`SessionStore::retire`]).
    ///
    /// [`SessionStore::retire`]: crate::sessions::SessionStore::retire
    pub(super) fn retire(&self, token: &RotatedEntry) -> TxResult<()> {
        let value = encode_rotated(&token.session_id.0, token.rotated_at_ms, token.expire_at_ms);
        self.rotated.insert(&token.hash[..], value)?;
        self.rotated_by_expiry
            .insert(rotated_expiry_key(token.expire_at_ms, &token.hash), &[])?;
        Ok(())
    }

    /// Removes a session of `user` and those index entries that still point at it.
    pub(super) fn remove_of(&self, user: &str, id: &[u8; 12]) -> TxResult<Option<Session>> {
        if self.get(id)?.is_none_or(|s| s.user != user) {
            return Ok(None);
        }
        self.remove(id)
    }

    /// Removes a session and those index entries that still point at it.
    pub(super) fn remove(&self, id: &[u8; 12]) -> TxResult<Option<Session>> {
        Ok(self.take(id)?.map(|(session, _)| session))
    }

    /// Removes a session and those index entries that still point at it; returns it and
    /// where its record was.
    pub(super) fn take(&self, id: &[u8; 12]) -> TxResult<Option<(Session, RecordPlace)>> {
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
            RecordPlace::Bucket(key) => self.take_from_bucket(key, &session)?,
            RecordPlace::Own => {
                self.by_user.remove(user_key(&session))?;
            }
        }
        self.by_expiry.remove(&expiry_key(&session)[..])?;
        self.last_active
            .remove(last_active_key(&session.user, &session.id))?;
        Ok(Some((session, place)))
    }
}

pub(super) fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}
