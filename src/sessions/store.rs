//! The session store: the [`SessionStore`] interface, the types it answers in, and its
//! backends.
//!
//! [`SledStore`] (`store/sled.rs` and its parts) keeps sessions in an embedded sled database
//! in the gateway's own directory, the default. [`RedisStore`] (`store/redis.rs`) keeps them
//! in Redis or Redis Cluster, shared by several gateway replicas.
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
use compact_str::CompactString;

use super::{Session, SessionId};
use crate::auth::TokenHash;

#[cfg(test)]
pub(crate) mod contract;
pub mod dump;
pub(crate) mod redis;
pub(crate) mod sled;

pub use self::dump::RotatedEntry;
pub use self::redis::{RedisStore, RedisTarget};
pub use self::sled::{DEFAULT_CACHE_BYTES, SledStore};

/// A store failure. [`StoreError::Unavailable`] and [`StoreError::Timeout`] are answered 503
/// (the request may be retried); the others 500. Either way the cause is logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("session store: {0}")]
    Sled(#[from] ::sled::Error),
    /// A stored record could not be decoded.
    #[error("session store: corrupt record: {0}")]
    Corrupt(String),
    /// A store across the network cannot be reached or is not serving (connection refused
    /// or lost, loading, cluster down).
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A store across the network did not answer within the configured time.
    #[error("session store did not answer within {0} ms")]
    Timeout(u64),
    /// A store across the network refused a command (a script error, a wrong key type).
    #[error("session store refused a command: {0}")]
    Refused(String),
}

impl StoreError {
    /// The `kind` label of `sessiongate_store_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Sled(_) => "io",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::Refused(_) => "refused",
        }
    }

    /// Whether the store could not be reached in time (answered 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}

/// What the per-request check needs from the session holding an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The session.
    pub session_id: SessionId,
    /// Its user: inline up to 24 bytes (the uploader's ids are 24 hex digits), so that the
    /// per-request check does not allocate (tests/allocations.rs).
    pub user: CompactString,
    /// When it ends, ms since the epoch.
    pub expire_at_ms: i64,
}

impl AccessGrant {
    /// What the check needs from `session`.
    pub fn of(session: &Session) -> AccessGrant {
        AccessGrant {
            session_id: session.session_id(),
            user: session.user.as_str().into(),
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
///
/// Every lookup and change names the user whose session it is about: the caller always knows
/// it (the verified token's `sub`, or the caller of a session endpoint), and a store shared
/// by replicas keeps each user's sessions together (in Redis Cluster, in one hash slot), so
/// that a change to them is one atomic step. A session of another user is not found.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session. Returns the ids of older sessions it replaced because they held
    /// an identical token.
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError>;

    /// The session of `user` holding this access-token hash, if any (expired ones included:
    /// the caller compares `expire_at_ms` with its clock). The per-request check: it must be
    /// fast.
    async fn find_access(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<AccessGrant>, StoreError>;

    /// [`SessionStore::find_access`] answered at once, without a future, when the store can
    /// (its index is in memory); `None` when it must be asked with `find_access`. The
    /// per-request check tries this first: an `async` trait call boxes its future.
    fn find_access_now(
        &self,
        _user: &str,
        _hash: &TokenHash,
    ) -> Option<Result<Option<AccessGrant>, StoreError>> {
        None
    }

    /// The session of `user` holding this refresh-token hash, if any.
    async fn find_refresh(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError>;

    /// Replaces a session's token hashes and expiry in place (same id, same creation time),
    /// and remembers the replaced refresh token (see [`SessionStore::find_rotated`]).
    /// `None` if `user` has no such session.
    async fn rotate(
        &self,
        user: &str,
        id: SessionId,
        rotation: Rotation,
    ) -> Result<Option<Session>, StoreError>;

    /// The session a rotated-away refresh token of `user` belonged to, while that token has
    /// not expired.
    async fn find_rotated(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<RotatedToken>, StoreError>;

    /// Removes one session of `user`; returns it if it existed.
    async fn revoke(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// Removes every session of a user; returns how many there were.
    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError>;

    /// A user's sessions, oldest first (expired ones not yet swept included).
    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError>;

    /// One session of `user` by id.
    async fn get(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// Removes sessions whose expiry is at or before `now_ms`, and forgets rotated-away
    /// refresh tokens past theirs; returns how many sessions.
    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError>;

    /// How many sessions the store holds (may scan: for start-up, not per request).
    async fn count(&self) -> Result<usize, StoreError>;

    /// Records when sessions were last used (`lastActiveAt`): a later time than the one
    /// recorded wins; sessions that are gone are skipped. Called in batches, not per request.
    async fn touch(&self, touches: &[Touch]) -> Result<(), StoreError>;

    /// When each of these sessions of `user` was last used, as [`SessionStore::touch`]
    /// recorded it (`None`: never recorded).
    async fn last_active(
        &self,
        user: &str,
        ids: &[SessionId],
    ) -> Result<Vec<Option<i64>>, StoreError>;

    /// One session by its id alone, whoever holds it. May scan: for operators, never per
    /// request.
    async fn find_by_id(&self, id: SessionId) -> Result<Option<Session>, StoreError>;

    /// Remembers tokens as rotated away, until they expire: a token an ended session held is
    /// then known, and never taken for a token issued before the gateway (adoption).
    async fn retire(&self, tokens: &[RotatedEntry]) -> Result<(), StoreError>;

    /// Which backend this is, for metrics and logs: `sled` or `redis`.
    fn backend(&self) -> &'static str;

    /// Whether the store answers now (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A use of a session ([`SessionStore::touch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The session's user.
    pub user: String,
    /// The session.
    pub id: SessionId,
    /// When it was used, ms since the epoch.
    pub at_ms: i64,
}

/// A session's new tokens, from a refresh ([`SessionStore::rotate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// SHA-512 of the new access token.
    pub access_hash: TokenHash,
    /// SHA-512 of the new refresh token.
    pub refresh_hash: TokenHash,
    /// The new refresh token's expiry, ms since the epoch.
    pub expire_at_ms: i64,
    /// When the rotation happens, ms since the epoch.
    pub now_ms: i64,
}
