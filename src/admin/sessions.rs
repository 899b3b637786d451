//! What operators do with sessions: list a user's, count them, revoke one by id, revoke all of
//! a user's. The admin listener's `/admin/...` routes ([`super::routes`]) and
//! `sessiongate sessions --direct` (a stopped gateway's store) both call [`SessionAdmin`], and
//! get the same JSON answers.
//!
//! Every revocation goes through one method, [`SessionAdmin::end_sessions_as_admin`]: it is
//! durable before it returns (the store's promise), counted `reason="admin"` when there are
//! metrics, and logged with the operator's request id (never a token).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::{live_sessions, views};
use crate::metrics::{Metrics, RevokeReason};
use crate::sessions::{Activity, Clock, Session, SessionId, SessionStore, StoreError};

/// The longest user id the admin routes and the command line take, in bytes.
pub const MAX_USER_BYTES: usize = 128;
/// What a user id must be, for error messages.
pub const USER_RULE: &str = "1 to 128 bytes of UTF-8, without control characters or '/'";
/// What a session id must be, for error messages.
pub const SESSION_ID_RULE: &str = "24 hexadecimal digits";
/// The longest request id kept from an operator's `X-Request-Id`.
pub const MAX_REQUEST_ID_LEN: usize = 64;
/// Most session ids named in one log line; the rest are counted.
const LOGGED_IDS: usize = 32;

/// A user id an operator gave, if it is one: non-empty, at most [`MAX_USER_BYTES`], without
/// control characters or `/` (user ids are the tokens' `sub`: the uploader's are 24 hex
/// digits).
pub fn parse_user(raw: &str) -> Option<&str> {
    let fits = !raw.is_empty() && raw.len() <= MAX_USER_BYTES;
    (fits && !raw.chars().any(|c| c.is_control() || c == '/')).then_some(raw)
}

/// The id of an operator's request, for the log lines it causes: the `X-Request-Id` it sent,
/// kept to letters, digits and `-_.:` and cut at [`MAX_REQUEST_ID_LEN`]; a fresh one when it
/// sent none (or nothing of it is left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The request id of a header value (`None`: no header).
    pub fn from_header(value: Option<&[u8]>) -> RequestId {
        let kept: String = value
            .unwrap_or_default()
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
            .take(MAX_REQUEST_ID_LEN)
            .map(|&b| char::from(b))
            .collect();
        if kept.is_empty() {
            RequestId::generate()
        } else {
            RequestId(kept)
        }
    }

    /// A fresh request id: 16 random hex digits.
    pub fn generate() -> RequestId {
        RequestId(format!("{:016x}", rand::random::<u64>()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which of a user's sessions an operator ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRevocation {
    /// This one.
    Session(SessionId),
    /// Every one ("this account is compromised").
    AllOfUser,
}

/// What an operator's revocation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// How many sessions ended.
    pub count: usize,
    /// The sessions: the one revoked, or those the user held just before all were revoked (one
    /// created in between ends too, and is counted, but not named).
    pub sessions: Vec<Session>,
}

/// The operators' session calls on a store.
pub struct SessionAdmin {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    activity: Arc<Activity>,
    metrics: Option<Arc<Metrics>>,
}

impl SessionAdmin {
    /// The calls on `store`. `activity` holds the uses not yet written (a running gateway's;
    /// an empty one for a stopped gateway's store); `metrics` counts the revocations (`None`:
    /// the command line, which keeps no metrics).
    pub fn new(
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        activity: Arc<Activity>,
        metrics: Option<Arc<Metrics>>,
    ) -> SessionAdmin {
        SessionAdmin {
            store,
            clock,
            activity,
            metrics,
        }
    }

    /// `{"user", "sessions", "total"}`: the user's live sessions, oldest first, in the user
    /// listing's form without `current` (refresh-token hashes are never shown).
    pub async fn list(&self, user: &str) -> Result<Value, StoreError> {
        let now = self.clock.now_ms();
        let live = live_sessions(self.store.as_ref(), &self.activity, user, now).await?;
        let views = views(&live, None);
        Ok(json!({ "user": user, "sessions": views, "total": views.len() }))
    }

    /// `{"sessions": N}`: how many sessions the store holds (expired ones not yet swept
    /// included; with Redis, every replica's).
    pub async fn count(&self) -> Result<Value, StoreError> {
        Ok(json!({ "sessions": self.store.count().await? }))
    }

    /// Revokes the live session `id`, whoever holds it: `{"code": "SESSION_REVOKED", ...}`,
    /// or `None` when no live session has this id.
    pub async fn revoke_session(
        &self,
        id: SessionId,
        request_id: &RequestId,
    ) -> Result<Option<Value>, StoreError> {
        let now = self.clock.now_ms();
        let Some(session) = self.store.find_by_id(id).await? else {
            return Ok(None);
        };
        if session.expire_at_ms <= now {
            return Ok(None);
        }
        let ended = self
            .end_sessions_as_admin(&session.user, AdminRevocation::Session(id), request_id)
            .await?;
        if ended.count == 0 {
            // Revoked by someone else since it was found.
            return Ok(None);
        }
        Ok(Some(json!({
            "code": "SESSION_REVOKED",
            "error": "Session has been revoked.",
            "session": id.to_string(),
            "user": session.user,
        })))
    }

    /// Revokes every session of `user`: `{"code": "ALL_SESSIONS_REVOKED", "revoked": N, ...}`
    /// (0 for a user without sessions).
    pub async fn revoke_user(
        &self,
        user: &str,
        request_id: &RequestId,
    ) -> Result<Value, StoreError> {
        let ended = self
            .end_sessions_as_admin(user, AdminRevocation::AllOfUser, request_id)
            .await?;
        Ok(json!({
            "code": "ALL_SESSIONS_REVOKED",
            "error": "All sessions of the user have been revoked.",
            "user": user,
            "revoked": ended.count,
        }))
    }

    /// Ends sessions of `user` for an operator. Every admin revocation, through the API or
    /// the command line, goes through here: the store's change is durable before this
    /// returns, it is counted (`sessiongate_sessions_revoked_total{reason="admin"}`) when
    /// there are metrics, and logged at info with the request id, the user and the session
    /// ids, never a token. What must happen to every session an operator ends belongs here.
    pub async fn end_sessions_as_admin(
        &self,
        user: &str,
        which: AdminRevocation,
        request_id: &RequestId,
    ) -> Result<Ended, StoreError> {
        let ended = match which {
            AdminRevocation::Session(id) => {
                let revoked = self.store.revoke(user, id).await?;
                Ended {
                    count: usize::from(revoked.is_some()),
                    sessions: revoked.into_iter().collect(),
                }
            }
            AdminRevocation::AllOfUser => {
                // Listed first only to name them in the log.
                let sessions = self.store.list_user(user).await?;
                let count = self.store.revoke_user(user).await?;
                Ended { count, sessions }
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.sessions_revoked(RevokeReason::Admin, ended.count);
        }
        tracing::info!(
            request_id = %request_id,
            user = %user,
            revoked = ended.count,
            sessions = %named_ids(&ended.sessions),
            "sessions revoked by an operator"
        );
        Ok(ended)
    }
}

/// The ids of `sessions`, comma-separated, the first [`LOGGED_IDS`] of them.
fn named_ids(sessions: &[Session]) -> String {
    let mut ids: Vec<String> = sessions
        .iter()
        .take(LOGGED_IDS)
        .map(|s| s.session_id().to_string())
        .collect();
    if sessions.len() > LOGGED_IDS {
        ids.push(format!("and {} more", sessions.len() - LOGGED_IDS));
    }
    ids.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_bounded_and_plain() {
        assert_eq!(
            parse_user("5f4bff121037e424a17a3ebc"),
            Some("5f4bff121037e424a17a3ebc")
        );
        assert_eq!(parse_user("alice@example.com"), Some("alice@example.com"));
        assert_eq!(parse_user(&"u".repeat(128)).map(str::len), Some(128));
        for bad in ["", "a/b", "a\nb", "a\u{0}b", "tab\there", "\u{7f}"] {
            assert_eq!(parse_user(bad), None, "{bad:?}");
        }
        assert_eq!(parse_user(&"u".repeat(129)), None);
        // 43 three-byte characters are 129 bytes.
        assert_eq!(parse_user(&"€".repeat(43)), None);
    }

    #[test]
    fn request_ids_are_kept_plain_and_short_or_made_up() {
        let kept = RequestId::from_header(Some(b"op-42.a:b_c"));
        assert_eq!(kept.as_str(), "op-42.a:b_c");
        let cleaned = RequestId::from_header(Some(b"x\r\ny \"z\"=1"));
        assert_eq!(cleaned.as_str(), "xyz1");
        let long = RequestId::from_header(Some("r".repeat(500).as_bytes()));
        assert_eq!(long.as_str().len(), MAX_REQUEST_ID_LEN);
        for none in [None, Some(&b""[..]), Some(&b" \t/"[..])] {
            let made = RequestId::from_header(none);
            assert_eq!(made.as_str().len(), 16, "{made}");
            assert!(made.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
