//! Reading a whole store out and writing it into another: what `sessiongate migrate` copies
//! between sled and Redis. Each backend gives its entries a page at a time, in an order of
//! its own, and takes them back as they were (ids, times, tokens unchanged).

use async_trait::async_trait;

use super::{RotatedToken, SessionStore, StoreError};
use crate::auth::TokenHash;
use crate::sessions::{Session, SessionId};

/// One thing a store holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A session.
    Session(Session),
    /// A refresh token a rotation replaced, remembered to recognise its reuse.
    Rotated(RotatedEntry),
}

/// A remembered rotated-away refresh token, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedEntry {
    /// The user of the session it belonged to.
    pub user: String,
    /// The token's SHA-512.
    pub hash: TokenHash,
    /// The session it belonged to.
    pub session_id: SessionId,
    /// When it was rotated away, ms since the epoch.
    pub rotated_at_ms: i64,
    /// When it expires (and is forgotten), ms since the epoch.
    pub expire_at_ms: i64,
}

/// A page of a store's entries.
#[derive(Debug, Default)]
pub struct Page {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Where the next page starts; `None` after the last.
    pub next: Option<Vec<u8>>,
    /// Rotated-away tokens left out because their session (and so their user) is gone:
    /// they can do nothing any more (a reuse of one finds no session to revoke).
    pub orphans: usize,
}

/// A store that can be read out whole and written into.
#[async_trait]
pub trait Dump: SessionStore {
    /// About `limit` entries from `cursor` on (empty: the start).
    async fn dump(&self, cursor: &[u8], limit: usize) -> Result<Page, StoreError>;

    /// Writes entries as they are: sessions first, then rotated-away tokens.
    async fn load(&self, entries: &[Entry]) -> Result<(), StoreError>;
}

/// Whether `store` holds `entry` exactly: the session whole and found by both its tokens, or
/// the rotated-away token with its session and time.
pub async fn holds(store: &dyn SessionStore, entry: &Entry) -> Result<bool, StoreError> {
    Ok(match entry {
        Entry::Session(session) => {
            let user = &session.user;
            let id = session.session_id();
            let stored = store.get(user, id).await?;
            let by_access = store.find_access(user, &session.access_hash).await?;
            let by_refresh = store.find_refresh(user, &session.refresh_hash).await?;
            stored.as_ref() == Some(session)
                && by_access.is_some_and(|grant| grant.session_id == id)
                && by_refresh.as_ref() == Some(session)
        }
        Entry::Rotated(rotated) => {
            let found = store.find_rotated(&rotated.user, &rotated.hash).await?;
            found
                == Some(RotatedToken {
                    session_id: rotated.session_id,
                    rotated_at_ms: rotated.rotated_at_ms,
                })
        }
    })
}
