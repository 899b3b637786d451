//! The sessions endpoints, answered by the gateway itself (`sessions-api.md`), without the
//! uploader's flaws: a user sees and revokes only their own sessions, refresh-token hashes
//! are never shown, and a malformed id is a 404 like any other unknown id.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::auth::Caller;
use crate::body::Body;
use crate::error::{GatewayError, json_message, json_response, store_failed};
use crate::metrics::{Metrics, RevokeReason};
use crate::sessions::{Activity, Clock, Device, Session, SessionId, SessionStore, StoreError};

/// The sessions endpoints: the store they read and change, the clock that says which
/// sessions are live, and the revocation counters.
pub struct SessionsApi {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// Now, for expiry.
    pub clock: Arc<dyn Clock>,
    /// Counts revocations.
    pub metrics: Arc<Metrics>,
    /// The sessions' uses not yet in the store.
    pub activity: Arc<Activity>,
}

/// One entry of `GET /account/sessions`, in the uploader's field order.
#[derive(Serialize)]
pub(crate) struct SessionView<'a> {
    device: &'a Device,
    location: &'a str,
    #[serde(rename = "_id")]
    id: String,
    #[serde(rename = "expireAt")]
    expire_at: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    /// The time of the last request that used it, to a minute.
    #[serde(rename = "lastActiveAt")]
    last_active_at: String,
    /// SHA-512 of the session's access token: the web client marks its own device by it.
    #[serde(rename = "accessTokenHash")]
    access_token_hash: String,
    /// Whether this is the session making the request (absent in an operator's listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<bool>,
}

impl SessionsApi {
    /// `GET /account/sessions`: the caller's live sessions, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Response<Body>, GatewayError> {
        let live = live_sessions(
            self.store.as_ref(),
            &self.activity,
            &caller.user,
            self.clock.now_ms(),
        )
        .await
        .map_err(store_failed)?;
        let views = views(&live, Some(caller.session_id));
        let body = serde_json::json!({ "sessions": views, "total": views.len() });
        Ok(json_response(StatusCode::OK, &body))
    }

    /// `DELETE /account/sessions/:session_id`: revokes one of the caller's sessions (the
    /// current one included). Another user's, an unknown, an expired or a malformed id: 404.
    pub async fn revoke(
        &self,
        caller: &Caller,
        raw_id: &str,
    ) -> Result<Response<Body>, GatewayError> {
        let id = SessionId::parse(raw_id).ok_or(GatewayError::SessionNotFound)?;
        let now = self.clock.now_ms();
        let owned = self
            .store
            .get(&caller.user, id)
            .await
            .map_err(store_failed)?
            .is_some_and(|s| s.user == caller.user && s.expire_at_ms > now);
        if !owned {
            return Err(GatewayError::SessionNotFound);
        }
        let revoked = self
            .store
            .revoke(&caller.user, id)
            .await
            .map_err(store_failed)?;
        self.metrics
            .sessions_revoked(RevokeReason::User, usize::from(revoked.is_some()));
        tracing::info!(session = %id, user = %caller.user, "session revoked by its user");
        Ok(json_message(
            StatusCode::OK,
            "SESSION_REVOKED",
            "Session has been revoked.",
        ))
    }

    /// `DELETE /account/sessions`: revokes every session of the caller, the current one
    /// included.
    pub async fn revoke_all(&self, caller: &Caller) -> Result<Response<Body>, GatewayError> {
        let revoked = self
            .store
            .revoke_user(&caller.user)
            .await
            .map_err(store_failed)?;
        self.metrics.sessions_revoked(RevokeReason::All, revoked);
        tracing::info!(user = %caller.user, revoked, "all sessions revoked by their user");
        Ok(json_message(
            StatusCode::OK,
            "ALL_SESSIONS_REVOKE",
            "All Sessions has been revoked.",
        ))
    }
}

/// A user's live sessions at `now_ms`, oldest first, each with the time of its last use: the
/// latest of its login, the use written to the store and the use noted in `activity`. The
/// user's own listing and the operators' (`crate::admin`) both read sessions through this.
pub(crate) async fn live_sessions(
    store: &dyn SessionStore,
    activity: &Activity,
    user: &str,
    now_ms: i64,
) -> Result<Vec<(Session, i64)>, StoreError> {
    let mut sessions = store.list_user(user).await?;
    sessions.retain(|s| s.expire_at_ms > now_ms);
    let ids: Vec<SessionId> = sessions.iter().map(|s| s.session_id()).collect();
    let recorded = store.last_active(user, &ids).await?;
    Ok(sessions
        .into_iter()
        .zip(recorded)
        .map(|(s, recorded)| {
            let last_active = [
                Some(s.created_at_ms),
                recorded,
                activity.last_noted(s.session_id()),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(s.created_at_ms);
            (s, last_active)
        })
        .collect())
}

/// The listing's entries of `live` ([`live_sessions`]); `current`, the caller's session,
/// is marked as such (`None`: an operator's listing, without the `current` field).
pub(crate) fn views(live: &[(Session, i64)], current: Option<SessionId>) -> Vec<SessionView<'_>> {
    live.iter()
        .map(|(session, last_active_ms)| SessionView {
            device: &session.device,
            location: &session.location,
            id: session.session_id().to_string(),
            expire_at: iso_millis(session.expire_at_ms),
            created_at: iso_millis(session.created_at_ms),
            last_active_at: iso_millis(*last_active_ms),
            access_token_hash: hex::encode(session.access_hash),
            current: current.map(|current| session.session_id() == current),
        })
        .collect()
}

/// ISO-8601 UTC with milliseconds, as MongoDB dates serialise: `2021-01-04T02:23:36.377Z`.
pub fn iso_millis(ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}
