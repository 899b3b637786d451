//! The per-request check: the Bearer token verifies and belongs to a live session of its
//! `sub` in the session store.

use std::sync::{Arc, Mutex, PoisonError};

use compact_str::CompactString;
use http::HeaderMap;

use super::{Claims, TokenHash, TokenRejection, TokenVerifier, bearer_token, token_hash};
use crate::adoption::Adoption;
use crate::error::{GatewayError, store_failed};
use crate::metrics::Metrics;
use crate::sessions::{Activity, Clock, Session, SessionId, SessionStore};

/// The caller of a request, once its token has been checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id (inline up to 24 bytes, as in [`crate::sessions::AccessGrant`]).
    pub user: CompactString,
    /// The session the token belongs to.
    pub session_id: SessionId,
}

impl Caller {
    /// The holder of `session`.
    pub fn of(session: &Session) -> Caller {
        Caller {
            user: session.user.as_str().into(),
            session_id: session.session_id(),
        }
    }
}

/// Checks tokens against the verifier and the store, counting every decision.
pub struct Authenticator {
    verifier: Arc<TokenVerifier>,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    activity: Arc<Activity>,
    adoption: Option<Arc<Adoption>>,
}

impl Authenticator {
    /// Checks with `verifier` against `store`, at `clock`'s time, noting each session's
    /// use in `activity`.
    pub fn new(
        verifier: Arc<TokenVerifier>,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        activity: Arc<Activity>,
    ) -> Authenticator {
        Authenticator {
            verifier,
            store,
            clock,
            metrics,
            activity,
            adoption: None,
        }
    }

    /// Also adopts the access tokens `adoption` takes (`sessions.adopt_issued_before`).
    pub fn adopting(mut self, adoption: Arc<Adoption>) -> Authenticator {
        self.adoption = Some(adoption);
        self
    }

    /// The caller of a request with these headers: its Bearer token must verify and belong
    /// to a live session of its `sub`. The decision is counted. `memo` is the connection's
    /// ([`TokenMemo`]), if it has one.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        memo: Option<&TokenMemo>,
    ) -> Result<Caller, GatewayError> {
        let outcome = self.check(headers, memo).await;
        match &outcome {
            Ok(_) => self.metrics.auth_decision(Ok(())),
            Err(GatewayError::Unauthorized(rejection)) => {
                self.metrics.auth_decision(Err(*rejection));
            }
            Err(_) => {}
        }
        outcome
    }

    async fn check(
        &self,
        headers: &HeaderMap,
        memo: Option<&TokenMemo>,
    ) -> Result<Caller, GatewayError> {
        let token = bearer_token(headers)?;
        let now = self.clock.now_ms();
        let verified = match memo.and_then(|memo| memo.recall(token)) {
            Some(verified) => {
                self.verifier.check_times(&verified.claims, now)?;
                verified
            }
            None => {
                let verified = Arc::new(Verified {
                    token: token.into(),
                    claims: self.verifier.verify(token, now)?,
                    hash: token_hash(token),
                });
                if let Some(memo) = memo {
                    memo.remember(verified.clone());
                }
                verified
            }
        };
        let claims = &verified.claims;
        let found = match self.store.find_access_now(&claims.sub, &verified.hash) {
            Some(found) => found,
            None => self.store.find_access(&claims.sub, &verified.hash).await,
        };
        let grant = found
            .map_err(store_failed)?
            .filter(|grant| grant.expire_at_ms > now && grant.user == claims.sub);
        let caller = match grant {
            Some(grant) => Caller {
                user: grant.user,
                session_id: grant.session_id,
            },
            None => self.adopt(claims, &verified.hash, headers, now).await?,
        };
        self.activity.note(&caller.user, caller.session_id, now);
        Ok(caller)
    }

    /// The caller of a token no live session holds: the session it is adopted as, if it is
    /// one to adopt ([`Adoption::adopt_access`]); else refused.
    async fn adopt(
        &self,
        claims: &Claims,
        hash: &TokenHash,
        headers: &HeaderMap,
        now: i64,
    ) -> Result<Caller, GatewayError> {
        let adoption = self
            .adoption
            .as_ref()
            .ok_or(TokenRejection::UnknownSession)?;
        let session = adoption
            .adopt_access(claims, hash, headers, now)
            .await
            .map_err(store_failed)?
            .ok_or(TokenRejection::UnknownSession)?;
        Ok(Caller::of(&session))
    }
}

/// The last token a client connection's requests carried, verified, and its SHA-512: a
/// keep-alive connection sends one token request after request (until it is refreshed), and
/// its signature and hash need not be computed again. Only the same bytes are recalled; the
/// times (`exp`, `nbf`) are checked again on every request, and the store is asked on every
/// request, so an expiry or a revocation is seen at once.
#[derive(Default)]
pub struct TokenMemo(Mutex<Option<Arc<Verified>>>);

/// A token that verified, with its claims and its SHA-512.
struct Verified {
    token: Box<str>,
    claims: Claims,
    hash: TokenHash,
}

impl TokenMemo {
    /// What is remembered of `token`, if it is the token remembered.
    fn recall(&self, token: &str) -> Option<Arc<Verified>> {
        let remembered = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        remembered
            .as_ref()
            .filter(|verified| &*verified.token == token)
            .cloned()
    }

    /// Remembers a token that verified, in place of the one before.
    fn remember(&self, verified: Arc<Verified>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(verified);
    }
}
