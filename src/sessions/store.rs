//! The session store: the [`SessionStore`] interface, the types it answers in, and its
//! backends.
//!
//! [`SledStore`] (`store/sled.rs` and its parts) keeps sessions in an embedded sled database
//! in the gateway's own directory.
//!
//! Every backend keeps the same promises, held by one suite of tests run against each
//! (`store/contract.rs`): a change is durable before the call that made it returns, a token
//! hash belongs to at most one session, and a revoked session is gone for every later call.
//!
//! A token hash belongs to at most one session. The uploader's tokens carry no unique id, so
//! two logins of one user in the same second get byte-identical tokens; the newer session
//! then takes the hash over and the older record is removed (it could never be told apart
//! from the newer one again, and revoking one must not leave the same token working).

use async_trait::async_trait;

use super::{Session, SessionId};
use crate::auth::TokenHash;

#[cfg(test)]
pub(crate) mod contract;
pub(crate) mod sled;

pub use self::sled::{DEFAULT_CACHE_BYTES, SledStore};

/// A store failure: the gateway answers 500 and logs it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("session store: {0}")]
    Sled(#[from] ::sled::Error),
    /// A stored record could not be decoded.
    #[error("session store: corrupt record: {0}")]
    Corrupt(String),
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
