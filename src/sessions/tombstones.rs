//! A [`SessionStore`] wrapper that leaves a tombstone of every token an ending session held,
//! for as long as that token could be adopted (`sessions.adopt_issued_before`): a token of
//! an ended session is then never taken for one the uploader issued before the gateway.
//!
//! The tombstones are written *before* the session ends, so that no request sees the token
//! both unknown and untombstoned. A tombstone is a rotated-token entry
//! ([`SessionStore::retire`]): a later use of the token is refused like the reuse of a
//! replaced refresh token. Ending every session of a user leaves one mark for the user
//! instead ([`all_ended_mark`]): no token of theirs issued before it is adopted.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha512};

use super::store::{
    AccessGrant, RotatedEntry, RotatedToken, Rotation, SessionStore, StoreError, Touch,
};
use super::{Clock, Session, SessionId};
use crate::auth::TokenHash;

/// The key of the mark left when every session of `user` ends: the SHA-512 of a text no
/// token is (a JWT has two dots), so it is nobody's token hash.
pub fn all_ended_mark(user: &str) -> TokenHash {
    Sha512::digest(format!("sessiongate: every session of {user} ended").as_bytes()).into()
}

/// The refresh hash of a session adopted from its access token (`access_hash`), whose
/// refresh token is not known: the SHA-512 of the access token's hash, which no token has.
pub fn no_refresh_token(access_hash: &TokenHash) -> TokenHash {
    Sha512::digest(access_hash).into()
}

/// Whether `session` was adopted from its access token (its refresh token is not known).
pub fn adopted_from_access(session: &Session) -> bool {
    session.refresh_hash == no_refresh_token(&session.access_hash)
}

/// The key of the mark left when a session adopted from its access token ends: the refresh
/// token issued with that access token (Share issues the two together, with one `iat`,
/// here `issued_ms`), which the gateway never saw, is then not adopted either.
pub fn ended_pair_mark(user: &str, issued_ms: i64) -> TokenHash {
    Sha512::digest(
        format!("sessiongate: the session of {user}'s tokens issued at {issued_ms} ended")
            .as_bytes(),
    )
    .into()
}

/// The longest-lived access token adopted: Share's live 5 minutes, its API keys at least a
/// day. A tombstone of an access token is kept this long.
pub const MAX_ADOPTED_ACCESS_LIFETIME_MS: i64 = 60 * 60 * 1000;

/// The longest-lived refresh token adopted: Share's live 14 days.
pub const MAX_ADOPTED_REFRESH_LIFETIME_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// How far the uploader's clock may be behind the gateway's: a session whose tokens the
/// gateway learned later than this after the instant holds no token issued before it.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The store that ends sessions on behalf of the gateway or an operator's tool: `store`
/// itself, or, with adoption on (`adopt_before_ms`), `store` leaving tombstones, so that no
/// way of ending a session lets its pre-cut-over tokens be adopted again.
pub fn ending_sessions_through(
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    adopt_before_ms: Option<i64>,
) -> Arc<dyn SessionStore> {
    match adopt_before_ms {
        Some(before_ms) => Arc::new(Tombstoning::new(store, clock, before_ms)),
        None => store,
    }
}

/// Passes every call on to the inner store, tombstoning the tokens of ending sessions.
pub struct Tombstoning {
    inner: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    /// `sessions.adopt_issued_before`, ms since the epoch.
    before_ms: i64,
}

impl Tombstoning {
    /// Wraps `inner`, for adoption of the tokens issued before `before_ms`.
    pub fn new(inner: Arc<dyn SessionStore>, clock: Arc<dyn Clock>, before_ms: i64) -> Self {
        Tombstoning {
            inner,
            clock,
            before_ms,
        }
    }

    /// Whether a token issued before the instant, living at most `lifetime_ms`, may still
    /// be alive: once none can, nothing needs a tombstone, and the store is not read for one.
    fn adoptable_alive(&self, lifetime_ms: i64) -> bool {
        let until = self
            .before_ms
            .saturating_add(lifetime_ms)
            .saturating_add(CLOCK_SKEW_MS);
        self.clock.now_ms() <= until
    }

    /// Tombstones of a session's access and refresh tokens, if they may have been issued
    /// before the instant (else they can never be adopted, and need none): the access
    /// token's for as long as an adoptable access token lives, the refresh token's until
    /// the session would have expired. A session adopted from its access token holds no
    /// known refresh token: an [`ended_pair_mark`] stands for the one issued with it, until
    /// that one has expired.
    fn tombstones(&self, session: &Session, now_ms: i64) -> Option<[RotatedEntry; 2]> {
        if session.updated_at_ms > self.before_ms.saturating_add(CLOCK_SKEW_MS) {
            return None;
        }
        let entry = |hash, expire_at_ms| RotatedEntry {
            user: session.user.clone(),
            hash,
            session_id: session.session_id(),
            rotated_at_ms: now_ms,
            expire_at_ms,
        };
        let access_until = session
            .expire_at_ms
            .min(now_ms.saturating_add(MAX_ADOPTED_ACCESS_LIFETIME_MS));
        let refresh = if adopted_from_access(session) {
            let until = session
                .created_at_ms
                .saturating_add(MAX_ADOPTED_REFRESH_LIFETIME_MS)
                .max(now_ms + 1);
            entry(ended_pair_mark(&session.user, session.created_at_ms), until)
        } else {
            entry(session.refresh_hash, session.expire_at_ms)
        };
        Some([entry(session.access_hash, access_until), refresh])
    }
}

#[async_trait]
impl SessionStore for Tombstoning {
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError> {
        self.inner.create(session).await
    }

    async fn find_access(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<AccessGrant>, StoreError> {
        self.inner.find_access(user, hash).await
    }

    fn find_access_now(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Option<Result<Option<AccessGrant>, StoreError>> {
        self.inner.find_access_now(user, hash)
    }

    async fn find_refresh(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.find_refresh(user, hash).await
    }

    /// The replaced access token is tombstoned (the store remembers the replaced refresh
    /// token itself).
    async fn rotate(
        &self,
        user: &str,
        id: SessionId,
        rotation: Rotation,
    ) -> Result<Option<Session>, StoreError> {
        if self.adoptable_alive(MAX_ADOPTED_ACCESS_LIFETIME_MS) {
            let session = self.inner.get(user, id).await?;
            if let Some([access, _]) =
                session.and_then(|s| self.tombstones(&s, self.clock.now_ms()))
            {
                self.inner.retire(&[access]).await?;
            }
        }
        self.inner.rotate(user, id, rotation).await
    }

    async fn find_rotated(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<RotatedToken>, StoreError> {
        self.inner.find_rotated(user, hash).await
    }

    async fn revoke(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        if self.adoptable_alive(MAX_ADOPTED_REFRESH_LIFETIME_MS) {
            let session = self.inner.get(user, id).await?;
            if let Some(tombstones) = session.and_then(|s| self.tombstones(&s, self.clock.now_ms()))
            {
                self.inner.retire(&tombstones).await?;
            }
        }
        self.inner.revoke(user, id).await
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        if !self.adoptable_alive(MAX_ADOPTED_REFRESH_LIFETIME_MS) {
            return self.inner.revoke_user(user).await;
        }
        let now_ms = self.clock.now_ms();
        let mark = RotatedEntry {
            user: user.to_string(),
            hash: all_ended_mark(user),
            session_id: SessionId([0; 12]),
            rotated_at_ms: now_ms,
            // Every token adoptable was issued before the instant, and has expired by then.
            expire_at_ms: self
                .before_ms
                .saturating_add(MAX_ADOPTED_REFRESH_LIFETIME_MS)
                .max(now_ms + 1),
        };
        self.inner.retire(&[mark]).await?;
        self.inner.revoke_user(user).await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        self.inner.list_user(user).await
    }

    async fn get(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.inner.get(user, id).await
    }

    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.inner.sweep_expired(now_ms).await
    }

    async fn count(&self) -> Result<usize, StoreError> {
        self.inner.count().await
    }

    async fn touch(&self, touches: &[Touch]) -> Result<(), StoreError> {
        self.inner.touch(touches).await
    }

    async fn last_active(
        &self,
        user: &str,
        ids: &[SessionId],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.inner.last_active(user, ids).await
    }

    async fn find_by_id(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        self.inner.find_by_id(id).await
    }

    async fn retire(&self, tokens: &[RotatedEntry]) -> Result<(), StoreError> {
        self.inner.retire(tokens).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
