//! The embedded store: sessions in a sled database in the gateway's own directory.
//!
//! Its parts, each in a file of its own:
//!
//! - [`layout`]: the trees, their keys and how their values are encoded;
//! - [`write`]: every change as one transaction over all trees, and the group commit that
//!   makes it durable before the call returns;
//! - [`read`]: finding a session by token or id, and listing a user's sessions;
//! - [`sweep`]: removing what has expired;
//! - [`access_index`]: the in-memory copy of the access-token index that the per-request
//!   check reads, so that no request waits for sled.
//!
//! Apart from that copy, every read and write runs on tokio's blocking pool
//! ([`SledStore::blocking`]), so that a wait for the disk never holds up a thread that serves
//! connections.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{AccessGrant, RotatedEntry, RotatedToken, Rotation, SessionStore, StoreError, Touch};
use crate::auth::TokenHash;
use crate::sessions::{Session, SessionId};

mod access_index;
mod dump;
mod layout;
mod read;
mod sweep;
mod write;

use access_index::AccessIndex;
use write::Durability;

/// sled's own default page cache size.
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// The sled-backed store. Clones share one database.
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
    last_active: sled::Tree,
    /// The copy of `by_access` that `find_access` reads.
    access: Arc<AccessIndex>,
    /// Held by each transaction until its changes are in `access`, so that the copy sees
    /// them in commit order (not held while flushing).
    writer: Arc<Mutex<()>>,
    durability: Arc<Durability>,
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
            last_active: db.open_tree("last_active")?,
            durability: Arc::default(),
            db,
        })
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
}

/// A store task on tokio's blocking pool that panicked or was cancelled.
fn task_failed(e: tokio::task::JoinError) -> StoreError {
    StoreError::Sled(sled::Error::Io(std::io::Error::other(e)))
}

/// sled keeps one index for all users: a session found by token or id is handed out only
/// when it is `user`'s, as every backend does.
#[async_trait]
impl SessionStore for SledStore {
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError> {
        self.insert(session.clone()).await
    }

    async fn find_access(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<AccessGrant>, StoreError> {
        Ok(self.access.get(hash).filter(|grant| grant.user == user))
    }

    fn find_access_now(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessGrant>, StoreError>> {
        Some(Ok(self.access.get(hash).filter(|grant| grant.user == user)))
    }

    async fn find_refresh(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        let found = self.by_refresh_hash(*hash).await?;
        Ok(found.filter(|session| session.user == user))
    }

    async fn rotate(
        &self,
        user: &str,
        id: SessionId,
        rotation: Rotation,
    ) -> Result<Option<Session>, StoreError> {
        let user = user.to_string();
        self.write(move |trees| trees.rotate(&user, id, rotation))
            .await
    }

    async fn find_rotated(
        &self,
        _user: &str,
        hash: &TokenHash,
    ) -> Result<Option<RotatedToken>, StoreError> {
        // Kept by hash alone: the session it names may be gone, and its user with it. The
        // hash is of a token signed for `user`, so it is theirs.
        self.rotated_away(*hash).await
    }

    async fn revoke(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        let user = user.to_string();
        self.write(move |trees| trees.remove_of(&user, &id.0)).await
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        self.remove_user(user).await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        self.list(user).await
    }

    async fn get(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        let found = self.blocking(move |store| store.read(id)).await?;
        Ok(found.filter(|session| session.user == user))
    }

    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.sweep(now_ms).await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.access.len())
    }

    async fn touch(&self, touches: &[Touch]) -> Result<(), StoreError> {
        let touches = touches.to_vec();
        self.write(move |trees| {
            for touch in &touches {
                trees.touch(&touch.user, &touch.id.0, touch.at_ms)?;
            }
            Ok(())
        })
        .await
    }

    async fn last_active(
        &self,
        user: &str,
        ids: &[SessionId],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let (user, ids) = (user.to_string(), ids.to_vec());
        self.blocking(move |store| store.recorded_uses(&user, &ids))
            .await
    }

    async fn find_by_id(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.blocking(move |store| store.read(id)).await
    }

    async fn retire(&self, tokens: &[RotatedEntry]) -> Result<(), StoreError> {
        let tokens = tokens.to_vec();
        self.write(move |trees| {
            for token in &tokens {
                trees.retire(token)?;
            }
            Ok(())
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sled"
    }
}

#[cfg(test)]
pub(crate) mod tests;
