//! The per-request check: the Bearer token verifies and belongs to a live session of its
//! `sub` in the session store.

use std::sync::Arc;

use http::HeaderMap;

use super::{TokenRejection, TokenVerifier, bearer_token, token_hash};
use crate::error::{GatewayError, store_failed};
use crate::metrics::Metrics;
use crate::sessions::{Clock, Session, SessionId, SessionStore};

/// The caller of a request, once its token has been checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id.
    pub user: String,
    /// The session the token belongs to.
    pub session_id: SessionId,
}

impl Caller {
    /// The holder of `session`.
    pub fn of(session: &Session) -> Caller {
        Caller {
            user: session.user.clone(),
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
}

impl Authenticator {
    /// Checks with `verifier` against `store`, at `clock`'s time.
    pub fn new(
        verifier: Arc<TokenVerifier>,
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Authenticator {
        Authenticator {
            verifier,
            store,
            clock,
            metrics,
        }
    }

    /// The caller of a request with these headers: its Bearer token must verify and belong
    /// to a live session of its `sub`. The decision is counted.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let outcome = self.check(headers).await;
        match &outcome {
            Ok(_) => self.metrics.auth_decision(Ok(())),
            Err(GatewayError::Unauthorized(rejection)) => {
                self.metrics.auth_decision(Err(*rejection));
            }
            Err(_) => {}
        }
        outcome
    }

    async fn check(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let token = bearer_token(headers)?;
        let now = self.clock.now_ms();
        let claims = self.verifier.verify(token, now)?;
        let grant = self
            .store
            .find_access(&claims.sub, &token_hash(token))
            .await
            .map_err(store_failed)?
            .filter(|grant| grant.expire_at_ms > now && grant.user == claims.sub)
            .ok_or(TokenRejection::UnknownSession)?;
        Ok(Caller {
            user: grant.user,
            session_id: grant.session_id,
        })
    }
}
