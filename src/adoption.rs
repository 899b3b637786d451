//! Adopting the sessions that existed before the gateway (`sessions.adopt_issued_before`):
//! put in front of a Share that already has logged-in users, the gateway takes a token the
//! uploader issued before that instant, which it has never seen, as a session of its own, so
//! that the cut-over logs nobody out.
//!
//! A refresh token is adopted when the uploader answers its refresh (the session is created
//! from the answer, as a login's would be); an access token on its first use, as a session
//! holding it until it expires. A token is never adopted if it was issued at or after the
//! instant, if it has a tombstone (it belonged to a session that ended, see
//! [`Tombstoning`](crate::sessions::tombstones::Tombstoning)), if every session of its user
//! ended after it was issued, or if it is an API key (Share's `iss` of `... 3rd-party API`,
//! which the uploader keeps apart from sessions) or lives longer than a session's token
//! would.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha512};

use crate::auth::{Claims, TokenHash, seconds_to_ms};
use crate::metrics::{Metrics, Origin};
use crate::sessions::store::StoreError;
use crate::sessions::tombstones::{
    adopted_from_access, all_ended_mark, ended_pair_mark, no_refresh_token,
};
use crate::sessions::{Device, RotatedEntry, Session, SessionId, SessionStore, device};

pub use crate::sessions::tombstones::{
    MAX_ADOPTED_ACCESS_LIFETIME_MS as MAX_ACCESS_LIFETIME_MS,
    MAX_ADOPTED_REFRESH_LIFETIME_MS as MAX_REFRESH_LIFETIME_MS,
};

/// The key of the mark that the tokens `user` was issued at `issued_ms` were adopted through
/// their refresh token: not a token's hash, as in [`all_ended_mark`].
fn pair_mark(user: &str, issued_ms: i64) -> TokenHash {
    Sha512::digest(
        format!("sessiongate: the tokens of {user} issued at {issued_ms} were adopted").as_bytes(),
    )
    .into()
}

/// Which of a session's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Sent as `Authorization: Bearer`.
    Access,
    /// Sent to the refresh route.
    Refresh,
}

impl TokenKind {
    fn max_lifetime_ms(self) -> i64 {
        match self {
            TokenKind::Access => MAX_ACCESS_LIFETIME_MS,
            TokenKind::Refresh => MAX_REFRESH_LIFETIME_MS,
        }
    }
}

/// Decides which unknown tokens are adopted.
pub struct Adoption {
    /// `sessions.adopt_issued_before`, ms since the epoch.
    before_ms: i64,
    store: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
    /// `sessions.location_header`.
    location_header: Option<HeaderName>,
}

impl Adoption {
    /// Adopts tokens issued before `before_ms` into `store` (where it also looks for
    /// tombstones), counting each in `metrics`.
    pub fn new(
        before_ms: i64,
        store: Arc<dyn SessionStore>,
        metrics: Arc<Metrics>,
        location_header: Option<HeaderName>,
    ) -> Adoption {
        Adoption {
            before_ms,
            store,
            metrics,
            location_header,
        }
    }

    /// Adopts a verified access token that no live session holds, if it is one to adopt:
    /// the session holds it until it expires, dated from its `iat`, its device and location
    /// from the request's `headers`. Its refresh token is not known; the session's refresh
    /// hash is one no token has (the SHA-512 of the access token's hash).
    pub async fn adopt_access(
        &self,
        claims: &Claims,
        hash: &TokenHash,
        headers: &HeaderMap,
        now_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        let Some(issued_ms) = self.adoptable(claims, hash, TokenKind::Access).await? else {
            return Ok(None);
        };
        let user_agent = device::user_agent(headers);
        let session = Session {
            id: SessionId::generate(now_ms).0,
            user: claims.sub.clone(),
            access_hash: *hash,
            refresh_hash: no_refresh_token(hash),
            device: Device::from_user_agent(user_agent),
            location: device::location(headers, self.location_header.as_ref()),
            created_at_ms: issued_ms,
            updated_at_ms: issued_ms,
            expire_at_ms: seconds_to_ms(claims.exp),
        };
        self.store.create(&session).await?;
        self.metrics.session_created(Origin::Adopted);
        tracing::info!(
            session = %session.session_id(),
            user = %session.user,
            "session adopted from an access token issued before the gateway"
        );
        Ok(Some(session))
    }

    /// When a verified token that no live session holds was issued (ms), if it is to be
    /// adopted as a session of its `sub`. `hash` is its SHA-512.
    pub async fn adoptable(
        &self,
        claims: &Claims,
        hash: &TokenHash,
        kind: TokenKind,
    ) -> Result<Option<i64>, StoreError> {
        let Some(issued_ms) = self.issued_before(claims, kind) else {
            return Ok(None);
        };
        if self.store.find_rotated(&claims.sub, hash).await?.is_some() {
            return Ok(None);
        }
        let mark = self
            .store
            .find_rotated(&claims.sub, &all_ended_mark(&claims.sub))
            .await?;
        if mark.is_some_and(|mark| issued_ms <= mark.rotated_at_ms) {
            return Ok(None);
        }
        // The other token of its pair: adopted already (an access token), or its session
        // ended (a refresh token).
        let pair = match kind {
            TokenKind::Access => pair_mark(&claims.sub, issued_ms),
            TokenKind::Refresh => ended_pair_mark(&claims.sub, issued_ms),
        };
        if self.store.find_rotated(&claims.sub, &pair).await?.is_some() {
            return Ok(None);
        }
        Ok(Some(issued_ms))
    }

    /// What adopting a refresh token issued at `issued_ms` as session `id` leaves behind,
    /// before the session is created: the old token tombstoned (as a rotation remembers the
    /// token it replaces, so that a second use of it is a reuse), the access token issued
    /// with it (Share issues the two together, with one `iat`) kept from being adopted on
    /// its own, and a session adopted from that access token before ended: the refresh's
    /// session takes its place.
    pub async fn replace_pair(
        &self,
        user: &str,
        issued_ms: i64,
        old_refresh: &TokenHash,
        old_refresh_expire_ms: i64,
        id: SessionId,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let entry = |hash, expire_at_ms| RotatedEntry {
            user: user.to_string(),
            hash,
            session_id: id,
            rotated_at_ms: now_ms,
            expire_at_ms,
        };
        self.store
            .retire(&[
                entry(*old_refresh, old_refresh_expire_ms),
                entry(
                    pair_mark(user, issued_ms),
                    issued_ms.saturating_add(MAX_ACCESS_LIFETIME_MS),
                ),
            ])
            .await?;
        for session in self.store.list_user(user).await? {
            if session.created_at_ms == issued_ms && adopted_from_access(&session) {
                self.store.revoke(user, session.session_id()).await?;
            }
        }
        Ok(())
    }

    /// The token's `iat` in ms, if it is before the instant and the token is a session's.
    fn issued_before(&self, claims: &Claims, kind: TokenKind) -> Option<i64> {
        if claims.api_key {
            return None;
        }
        let issued_ms = seconds_to_ms(claims.iat?.floor());
        let lifetime_ms = seconds_to_ms(claims.exp) - issued_ms;
        (issued_ms < self.before_ms && lifetime_ms <= kind.max_lifetime_ms()).then_some(issued_ms)
    }
}

#[cfg(test)]
mod tests;
