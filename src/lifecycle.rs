//! Learning sessions from the uploader's own traffic: login and two-factor create them,
//! refresh rotates them, logout and a password change end them.
//!
//! A lifecycle route goes through [`Lifecycle::before_forward`], is forwarded, and its answer
//! through [`Lifecycle::after_response`]. Only these routes read bodies, and only up to
//! `sessions.capture_limit_bytes`: the login response (for its tokens) and the refresh
//! request (for its `refresh_token`).

use std::sync::Arc;

use http::header::{ACCEPT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use serde::Deserialize;

use crate::access_log::AccessLog;
use crate::adoption::{Adoption, TokenKind};
use crate::auth::{
    Authenticator, Caller, Claims, TokenHash, TokenRejection, TokenVerifier, seconds_to_ms,
    token_hash,
};
use crate::body::{Body, Captured, capture, full};
use crate::error::{GatewayError, store_failed};
use crate::metrics::{Metrics, Origin, RevokeReason};
use crate::routes::Route;
use crate::sessions::{Clock, Device, Rotation, Session, SessionId, SessionStore, device};

/// What the lifecycle routes need: the store, the verifier of the uploader's tokens, and the
/// settings of `[sessions]`.
pub struct Lifecycle {
    /// The store.
    pub store: Arc<dyn SessionStore>,
    /// Verifies the tokens the uploader issues.
    pub verifier: Arc<TokenVerifier>,
    /// The time of creations and rotations.
    pub clock: Arc<dyn Clock>,
    /// Counts creations and ends.
    pub metrics: Arc<Metrics>,
    /// `sessions.capture_limit_bytes`.
    pub capture_limit: usize,
    /// `sessions.refresh_reuse_grace_seconds`, in ms.
    pub reuse_grace_ms: i64,
    /// `sessions.location_header`.
    pub location_header: Option<HeaderName>,
    /// `sessions.adopt_issued_before`, when set.
    pub adoption: Option<Arc<Adoption>>,
}

/// What a lifecycle route's answer must still do, decided before it was forwarded.
pub enum Pending {
    /// A login or two-factor: create a session from the answer's tokens.
    Login {
        /// The login request's User-Agent.
        user_agent: Option<String>,
        /// Its location.
        location: String,
    },
    /// A refresh of this session: rotate it to the answer's tokens.
    Refresh(Box<Session>),
    /// A refresh with a token issued before the gateway: create its session from the answer.
    Adopt(Box<Adoptee>),
    /// A password change of this caller: end all their sessions on a 2xx answer.
    EndAllSessions(Caller),
    /// Nothing (a logout ended its session before it was forwarded).
    Nothing,
}

/// A refresh token to adopt, and the refresh request's client.
pub struct Adoptee {
    /// Its `sub`.
    user: String,
    /// Its `iat`, ms: the session's creation.
    issued_ms: i64,
    /// Its SHA-512, tombstoned once the session exists.
    hash: TokenHash,
    /// Its expiry, ms: the tombstone's.
    expire_at_ms: i64,
    user_agent: Option<String>,
    location: String,
}

/// What the refresh request's token is.
enum Refreshing {
    /// The refresh token of this live session.
    Known(Session),
    /// A token issued before the gateway, to adopt.
    Adopt(Adoptee),
}

/// The tokens in a login, two-factor or refresh response.
#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
}

impl Lifecycle {
    /// What must happen before a lifecycle route is forwarded. A refresh must name a live
    /// session (else 401, not forwarded); a logout and a password change need the caller
    /// (checked by `authenticator`), and a logout ends its session here, durably. The caller,
    /// once known, is written into `log`.
    pub async fn before_forward(
        &self,
        route: &Route,
        request: Request<Body>,
        authenticator: &Authenticator,
        log: &mut AccessLog,
    ) -> Result<(Request<Body>, Pending), GatewayError> {
        match route {
            Route::Login => {
                let user_agent = device::user_agent(request.headers()).map(str::to_string);
                let location = self.location(request.headers());
                let pending = Pending::Login {
                    user_agent,
                    location,
                };
                Ok((uncompressed(request), pending))
            }
            Route::Refresh => {
                let (request, refreshing) = self.refreshed_session(request).await?;
                let pending = match refreshing {
                    Refreshing::Known(session) => {
                        log.caller = Some(Caller::of(&session));
                        Pending::Refresh(Box::new(session))
                    }
                    Refreshing::Adopt(adoptee) => Pending::Adopt(Box::new(adoptee)),
                };
                Ok((uncompressed(request), pending))
            }
            Route::Logout => {
                let caller = authenticator.authenticate(request.headers(), None).await?;
                log.caller = Some(caller.clone());
                let ended = self
                    .store
                    .revoke(&caller.user, caller.session_id)
                    .await
                    .map_err(store_failed)?;
                self.metrics
                    .sessions_revoked(RevokeReason::Logout, usize::from(ended.is_some()));
                tracing::info!(session = %caller.session_id, user = %caller.user, "session ended by logout");
                Ok((request, Pending::Nothing))
            }
            Route::EndAllSessions => {
                let caller = authenticator.authenticate(request.headers(), None).await?;
                log.caller = Some(caller.clone());
                Ok((request, Pending::EndAllSessions(caller)))
            }
            _ => Ok((request, Pending::Nothing)),
        }
    }

    /// What a lifecycle route's answer does: a login's tokens create a session, a refresh's
    /// rotate it, a password change's 2xx ends every session of the user; each durably,
    /// before the answer is passed on (with the same bytes).
    pub async fn after_response(
        &self,
        pending: Pending,
        response: Response<Body>,
        log: &mut AccessLog,
    ) -> Result<Response<Body>, GatewayError> {
        match pending {
            Pending::Nothing => Ok(response),
            Pending::EndAllSessions(caller) => {
                if response.status().is_success() {
                    let ended = self
                        .store
                        .revoke_user(&caller.user)
                        .await
                        .map_err(store_failed)?;
                    self.metrics
                        .sessions_revoked(RevokeReason::PasswordChange, ended);
                    tracing::info!(user = %caller.user, ended, "all sessions ended by password change");
                }
                Ok(response)
            }
            Pending::Login {
                user_agent,
                location,
            } => {
                let (response, issued) = self.read_issued(response).await?;
                if let Some(issued) = issued {
                    let id = SessionId::generate(issued.now);
                    let created_at_ms = issued.now;
                    let born = Born {
                        id,
                        created_at_ms,
                        origin: Origin::Login,
                    };
                    let session = self
                        .create(issued, user_agent.as_deref(), location, born)
                        .await?;
                    log.caller = Some(Caller::of(&session));
                }
                Ok(response)
            }
            Pending::Adopt(adoptee) => {
                let (response, issued) = self.read_issued(response).await?;
                if let Some(issued) = issued {
                    let session = self.adopt(*adoptee, issued).await?;
                    log.caller = session.as_ref().map(Caller::of);
                }
                Ok(response)
            }
            Pending::Refresh(session) => {
                let (response, issued) = self.read_issued(response).await?;
                match issued {
                    Some(issued) => self.rotate(&session, issued).await.map(|()| response),
                    None => Ok(response),
                }
            }
        }
    }

    /// A new session for a login's tokens (or an adopted refresh token's answer).
    async fn create(
        &self,
        issued: Issued,
        user_agent: Option<&str>,
        location: String,
        born: Born,
    ) -> Result<Session, GatewayError> {
        let Issued {
            tokens,
            access,
            refresh,
            now,
        } = issued;
        let session = Session {
            id: born.id.0,
            user: access.sub,
            access_hash: token_hash(&tokens.access_token),
            refresh_hash: token_hash(&tokens.refresh_token),
            device: Device::from_user_agent(user_agent),
            location,
            created_at_ms: born.created_at_ms,
            updated_at_ms: now,
            expire_at_ms: seconds_to_ms(refresh.exp),
        };
        let replaced = self.store.create(&session).await.map_err(store_failed)?;
        self.metrics.session_created(born.origin);
        tracing::info!(
            session = %session.session_id(),
            user = %session.user,
            replaced = replaced.len(),
            origin = ?born.origin,
            "session created"
        );
        Ok(session)
    }

    /// The session of an adopted refresh token, from the uploader's answer: created as a
    /// login's would be, but dated from the old token's `iat`. What the old tokens leave is
    /// written first ([`Adoption::replace_pair`]), so that they are never adopted twice.
    async fn adopt(
        &self,
        adoptee: Adoptee,
        issued: Issued,
    ) -> Result<Option<Session>, GatewayError> {
        let Some(adoption) = &self.adoption else {
            return Ok(None);
        };
        if issued.access.sub != adoptee.user {
            tracing::error!(user = %adoptee.user, "refresh answered with another user's tokens; not adopted");
            return Ok(None);
        }
        let id = SessionId::generate(issued.now);
        adoption
            .replace_pair(
                &adoptee.user,
                adoptee.issued_ms,
                &adoptee.hash,
                adoptee.expire_at_ms,
                id,
                issued.now,
            )
            .await
            .map_err(store_failed)?;
        let born = Born {
            id,
            created_at_ms: adoptee.issued_ms,
            origin: Origin::Adopted,
        };
        let session = self
            .create(
                issued,
                adoptee.user_agent.as_deref(),
                adoptee.location,
                born,
            )
            .await?;
        Ok(Some(session))
    }

    /// The refresh request, read whole (and given back), and the live session its
    /// `refresh_token` belongs to. A token rotated away before is a reuse ([`Self::detect_reuse`]);
    /// one no session holds may be one to adopt ([`Adoption`]).
    async fn refreshed_session(
        &self,
        request: Request<Body>,
    ) -> Result<(Request<Body>, Refreshing), GatewayError> {
        let (parts, body) = request.into_parts();
        let body = match capture(body, self.capture_limit).await {
            Ok(Captured::Whole(bytes)) => bytes,
            Ok(Captured::TooLarge(_)) => return Err(GatewayError::BodyTooLarge),
            Err(_) => return Err(GatewayError::BadBody),
        };
        let token = refresh_token_field(&parts.headers, &body).ok_or(TokenRejection::Missing)?;
        let now = self.clock.now_ms();
        let claims = self.verifier.verify(&token, now)?;
        let hash = token_hash(&token);
        let found = self
            .store
            .find_refresh(&claims.sub, &hash)
            .await
            .map_err(store_failed)?
            .filter(|s| s.expire_at_ms > now && s.user == claims.sub);
        let refreshing = match found {
            Some(session) => Refreshing::Known(session),
            None => {
                self.detect_reuse(&claims.sub, &hash, now).await?;
                match self.adoptee(&parts.headers, claims, hash).await? {
                    Some(adoptee) => Refreshing::Adopt(adoptee),
                    None => return Err(TokenRejection::UnknownSession.into()),
                }
            }
        };
        Ok((Request::from_parts(parts, full(body)), refreshing))
    }

    /// The refresh token to adopt, if adoption is on and it is one to adopt.
    async fn adoptee(
        &self,
        headers: &HeaderMap,
        claims: Claims,
        hash: TokenHash,
    ) -> Result<Option<Adoptee>, GatewayError> {
        let Some(adoption) = &self.adoption else {
            return Ok(None);
        };
        let issued_ms = adoption
            .adoptable(&claims, &hash, TokenKind::Refresh)
            .await
            .map_err(store_failed)?;
        Ok(issued_ms.map(|issued_ms| Adoptee {
            user: claims.sub,
            issued_ms,
            hash,
            expire_at_ms: seconds_to_ms(claims.exp),
            user_agent: device::user_agent(headers).map(str::to_string),
            location: self.location(headers),
        }))
    }

    /// Rotates `session` to a refresh answer's tokens. A session revoked while the uploader
    /// was answering is not brought back: its new tokens must not reach the client (401).
    async fn rotate(&self, session: &Session, issued: Issued) -> Result<(), GatewayError> {
        if issued.access.sub != session.user {
            tracing::error!(session = %session.session_id(), "refresh answered with another user's tokens; not rotated");
            return Ok(());
        }
        let rotation = Rotation {
            access_hash: token_hash(&issued.tokens.access_token),
            refresh_hash: token_hash(&issued.tokens.refresh_token),
            expire_at_ms: seconds_to_ms(issued.refresh.exp),
            now_ms: issued.now,
        };
        let rotated = self
            .store
            .rotate(&session.user, session.session_id(), rotation)
            .await
            .map_err(store_failed)?;
        match rotated {
            Some(_) => {
                tracing::info!(session = %session.session_id(), user = %session.user, "session rotated");
                Ok(())
            }
            None => Err(TokenRejection::UnknownSession.into()),
        }
    }

    /// A refresh token that no live session holds: if a rotation replaced it, it is being
    /// used a second time. Past the grace window that means someone else holds a copy, and the
    /// whole session is revoked at once, so both holders are refused from now on.
    async fn detect_reuse(
        &self,
        user: &str,
        hash: &TokenHash,
        now_ms: i64,
    ) -> Result<(), GatewayError> {
        let Some(rotated) = self
            .store
            .find_rotated(user, hash)
            .await
            .map_err(store_failed)?
        else {
            return Ok(());
        };
        let age_ms = now_ms - rotated.rotated_at_ms;
        if age_ms <= self.reuse_grace_ms {
            tracing::info!(session = %rotated.session_id, age_ms, "refresh with a just-replaced token (within the grace window): refused, session kept");
            return Ok(());
        }
        let revoked = self
            .store
            .revoke(user, rotated.session_id)
            .await
            .map_err(store_failed)?;
        if let Some(session) = revoked {
            self.metrics.sessions_revoked(RevokeReason::Reuse, 1);
            tracing::warn!(
                session = %rotated.session_id,
                user = %session.user,
                age_ms,
                "a replaced refresh token was used again: session revoked (presumed stolen)"
            );
        }
        Ok(())
    }

    /// Reads a login or refresh answer for a verified token pair. The answer comes back
    /// either way, with the same bytes.
    async fn read_issued(
        &self,
        response: Response<Body>,
    ) -> Result<(Response<Body>, Option<Issued>), GatewayError> {
        let (response, tokens) = self.read_tokens(response).await?;
        let now = self.clock.now_ms();
        let issued = tokens.and_then(|tokens| {
            let (access, refresh) = self.verify_pair(&tokens, now)?;
            Some(Issued {
                tokens,
                access,
                refresh,
                now,
            })
        });
        Ok((response, issued))
    }

    /// Reads a 2xx response for a token pair. Returns the response (rebuilt from the same
    /// bytes, or streamed on unchanged if it was too large to read) and the tokens, if it
    /// carries them (it does not when two-factor is required, for instance).
    async fn read_tokens(
        &self,
        response: Response<Body>,
    ) -> Result<(Response<Body>, Option<TokenPair>), GatewayError> {
        if !response.status().is_success() {
            return Ok((response, None));
        }
        let (parts, body) = response.into_parts();
        match capture(body, self.capture_limit).await {
            Ok(Captured::Whole(bytes)) => {
                let tokens = serde_json::from_slice::<TokenPair>(&bytes).ok();
                Ok((Response::from_parts(parts, full(bytes)), tokens))
            }
            Ok(Captured::TooLarge(body)) => {
                tracing::warn!(
                    limit = self.capture_limit,
                    "token response over sessions.capture_limit_bytes passed through: no session recorded"
                );
                Ok((Response::from_parts(parts, body), None))
            }
            Err(error) => {
                tracing::warn!(%error, "upstream token response broke off");
                Err(GatewayError::UpstreamUnavailable)
            }
        }
    }

    /// Verifies both tokens of a pair (they come from the uploader, signed with the same
    /// secret). A pair that does not verify is logged, and no session is recorded for it.
    fn verify_pair(&self, tokens: &TokenPair, now_ms: i64) -> Option<(Claims, Claims)> {
        let access = self.verifier.verify(&tokens.access_token, now_ms);
        let refresh = self.verifier.verify(&tokens.refresh_token, now_ms);
        match (access, refresh) {
            (Ok(access), Ok(refresh)) if access.sub == refresh.sub => Some((access, refresh)),
            (access, refresh) => {
                tracing::error!(
                    access = ?access.err(),
                    refresh = ?refresh.err(),
                    "the upstream issued tokens the gateway cannot verify (is the secret the uploader's?): no session recorded"
                );
                None
            }
        }
    }

    /// The client's location from the configured header, else "unknown".
    fn location(&self, headers: &HeaderMap) -> String {
        device::location(headers, self.location_header.as_ref())
    }
}

/// A new session's id, creation time and origin.
struct Born {
    id: SessionId,
    created_at_ms: i64,
    origin: Origin,
}

/// A token pair the uploader issued, verified.
struct Issued {
    tokens: TokenPair,
    access: Claims,
    refresh: Claims,
    /// When they were verified, ms since the epoch.
    now: i64,
}

/// The request, asking for an uncompressed answer: its tokens must be readable.
fn uncompressed(mut request: Request<Body>) -> Request<Body> {
    request
        .headers_mut()
        .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    request
}

/// The `refresh_token` field of a JSON or form body (by `Content-Type`; JSON is tried when
/// the type is missing).
fn refresh_token_field(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form_urlencoded::parse(body)
            .find(|(key, _)| key == "refresh_token")
            .map(|(_, value)| value.into_owned());
    }
    #[derive(Deserialize)]
    struct RefreshBody {
        refresh_token: String,
    }
    serde_json::from_slice::<RefreshBody>(body)
        .ok()
        .map(|b| b.refresh_token)
}
