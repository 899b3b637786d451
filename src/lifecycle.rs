//! Learning sessions from the uploader's own traffic: login and two-factor create them,
//! refresh rotates them, logout and a password change end them.
//!
//! Only these routes read bodies, and only up to `sessions.capture_limit_bytes`: the login
//! response (for its tokens) and the refresh request (for its `refresh_token`).

use http::header::{ACCEPT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, Response};
use serde::Deserialize;

use crate::auth::{Claims, TokenHash, TokenRejection, token_hash};
use crate::body::{Body, Captured, capture, full};
use crate::error::GatewayError;
use crate::gateway::{Caller, Exchange, Gateway, Target, store_failed};
use crate::metrics::RevokeReason;
use crate::sessions::{Device, Rotation, Session, SessionId};

/// The tokens in a login, two-factor or refresh response.
#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
    refresh_token: String,
}

/// Login and two-factor: forwards the request unchecked; a 2xx JSON response carrying both
/// tokens creates a session, durably, before the response is passed on unchanged.
pub async fn login(
    gateway: &Gateway,
    request: Request<Body>,
    target: Target,
    exchange: &mut Exchange,
) -> Result<Response<Body>, GatewayError> {
    let user_agent = request
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let location = gateway.location(request.headers());
    let (response, issued) = forward_for_tokens(gateway, request, target, exchange).await?;
    let Some(Issued {
        tokens,
        access,
        refresh,
        now,
    }) = issued
    else {
        return Ok(response);
    };
    let session = Session {
        id: SessionId::generate(now).0,
        user: access.sub,
        access_hash: token_hash(&tokens.access_token),
        refresh_hash: token_hash(&tokens.refresh_token),
        device: Device::from_user_agent(user_agent.as_deref()),
        location,
        created_at_ms: now,
        updated_at_ms: now,
        expire_at_ms: seconds_to_ms(refresh.exp),
    };
    let replaced = gateway.store.create(&session).await.map_err(store_failed)?;
    gateway.metrics.sessions_created.inc();
    exchange.caller = Some(Caller {
        user: session.user.clone(),
        session_id: session.session_id(),
    });
    tracing::info!(
        session = %session.session_id(),
        user = %session.user,
        replaced = replaced.len(),
        "session created"
    );
    Ok(response)
}

/// Refresh: the body's `refresh_token` must belong to a live session, else 401 and nothing is
/// forwarded. A 2xx response's new tokens replace the session's in place (same id, same
/// creation time).
pub async fn refresh(
    gateway: &Gateway,
    request: Request<Body>,
    target: Target,
    exchange: &mut Exchange,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = request.into_parts();
    let body = match capture(body, gateway.capture_limit).await {
        Ok(Captured::Whole(bytes)) => bytes,
        Ok(Captured::TooLarge(_)) => return Err(GatewayError::BodyTooLarge),
        Err(_) => return Err(GatewayError::BadBody),
    };
    let token = refresh_token_field(&parts.headers, &body).ok_or(TokenRejection::Missing)?;
    let now = gateway.clock.now_ms();
    let claims = gateway.verifier.verify(&token, now)?;
    let hash = token_hash(&token);
    let found = gateway
        .store
        .find_refresh(&claims.sub, &hash)
        .await
        .map_err(store_failed)?
        .filter(|s| s.expire_at_ms > now && s.user == claims.sub);
    let Some(session) = found else {
        detect_reuse(gateway, &claims.sub, &hash, now).await?;
        return Err(TokenRejection::UnknownSession.into());
    };
    exchange.caller = Some(Caller {
        user: session.user.clone(),
        session_id: session.session_id(),
    });
    let request = Request::from_parts(parts, full(body));
    let (response, issued) = forward_for_tokens(gateway, request, target, exchange).await?;
    let Some(Issued {
        tokens,
        access,
        refresh,
        now,
    }) = issued
    else {
        return Ok(response);
    };
    if access.sub != session.user {
        tracing::error!(session = %session.session_id(), "refresh answered with another user's tokens; not rotated");
        return Ok(response);
    }
    let rotation = Rotation {
        access_hash: token_hash(&tokens.access_token),
        refresh_hash: token_hash(&tokens.refresh_token),
        expire_at_ms: seconds_to_ms(refresh.exp),
        now_ms: now,
    };
    let rotated = gateway
        .store
        .rotate(&session.user, session.session_id(), rotation)
        .await
        .map_err(store_failed)?;
    match rotated {
        Some(_) => {
            tracing::info!(session = %session.session_id(), user = %session.user, "session rotated");
            Ok(response)
        }
        // Revoked while the uploader was answering: its new tokens must not reach the client.
        None => Err(TokenRejection::UnknownSession.into()),
    }
}

/// A refresh token that no live session holds: if a rotation replaced it, it is being used a
/// second time. Past the grace window that means someone else holds a copy, and the whole
/// session is revoked at once, so both holders are refused from now on.
async fn detect_reuse(
    gateway: &Gateway,
    user: &str,
    hash: &TokenHash,
    now_ms: i64,
) -> Result<(), GatewayError> {
    let Some(rotated) = gateway
        .store
        .find_rotated(user, hash)
        .await
        .map_err(store_failed)?
    else {
        return Ok(());
    };
    let age_ms = now_ms - rotated.rotated_at_ms;
    if age_ms <= gateway.reuse_grace_ms {
        tracing::info!(session = %rotated.session_id, age_ms, "refresh with a just-replaced token (within the grace window): refused, session kept");
        return Ok(());
    }
    let revoked = gateway
        .store
        .revoke(user, rotated.session_id)
        .await
        .map_err(store_failed)?;
    if let Some(session) = revoked {
        gateway.metrics.sessions_revoked(RevokeReason::Reuse, 1);
        tracing::warn!(
            session = %rotated.session_id,
            user = %session.user,
            age_ms,
            "a replaced refresh token was used again: session revoked (presumed stolen)"
        );
    }
    Ok(())
}

/// Logout: ends the caller's session (durably) and forwards the request, so the uploader
/// ends its own record too.
pub async fn logout(
    gateway: &Gateway,
    request: Request<Body>,
    target: Target,
    exchange: &mut Exchange,
) -> Result<Response<Body>, GatewayError> {
    let caller = gateway.authenticate(request.headers(), exchange).await?;
    let ended = gateway
        .store
        .revoke(&caller.user, caller.session_id)
        .await
        .map_err(store_failed)?;
    gateway
        .metrics
        .sessions_revoked(RevokeReason::Logout, usize::from(ended.is_some()));
    tracing::info!(session = %caller.session_id, user = %caller.user, "session ended by logout");
    gateway.forward(request, target, exchange).await
}

/// Password change: forwarded for the caller; on a 2xx answer every session of the user ends
/// before the answer is passed on.
pub async fn end_all_sessions(
    gateway: &Gateway,
    request: Request<Body>,
    target: Target,
    exchange: &mut Exchange,
) -> Result<Response<Body>, GatewayError> {
    let caller = gateway.authenticate(request.headers(), exchange).await?;
    let response = gateway.forward(request, target, exchange).await?;
    if response.status().is_success() {
        let ended = gateway
            .store
            .revoke_user(&caller.user)
            .await
            .map_err(store_failed)?;
        gateway
            .metrics
            .sessions_revoked(RevokeReason::PasswordChange, ended);
        tracing::info!(user = %caller.user, ended, "all sessions ended by password change");
    }
    Ok(response)
}

/// A token pair the uploader issued, verified.
struct Issued {
    tokens: TokenPair,
    access: Claims,
    refresh: Claims,
    /// When they were verified, ms since the epoch.
    now: i64,
}

/// Forwards a login or refresh and reads its answer for a verified token pair. The response
/// comes back either way, with the same bytes.
async fn forward_for_tokens(
    gateway: &Gateway,
    mut request: Request<Body>,
    target: Target,
    exchange: &mut Exchange,
) -> Result<(Response<Body>, Option<Issued>), GatewayError> {
    // The tokens must be readable: ask for an uncompressed answer.
    request
        .headers_mut()
        .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    let response = gateway.forward(request, target, exchange).await?;
    let (response, tokens) = read_tokens(gateway, response).await?;
    let now = gateway.clock.now_ms();
    let issued = tokens.and_then(|tokens| {
        let (access, refresh) = verify_pair(gateway, &tokens, now)?;
        Some(Issued {
            tokens,
            access,
            refresh,
            now,
        })
    });
    Ok((response, issued))
}

/// Reads a 2xx response for a token pair. Returns the response (rebuilt from the same bytes,
/// or streamed on unchanged if it was too large to read) and the tokens, if it carries them
/// (it does not when two-factor is required, for instance).
async fn read_tokens(
    gateway: &Gateway,
    response: Response<Body>,
) -> Result<(Response<Body>, Option<TokenPair>), GatewayError> {
    if !response.status().is_success() {
        return Ok((response, None));
    }
    let (parts, body) = response.into_parts();
    match capture(body, gateway.capture_limit).await {
        Ok(Captured::Whole(bytes)) => {
            let tokens = serde_json::from_slice::<TokenPair>(&bytes).ok();
            Ok((Response::from_parts(parts, full(bytes)), tokens))
        }
        Ok(Captured::TooLarge(body)) => {
            tracing::warn!(
                limit = gateway.capture_limit,
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

/// Verifies both tokens of a pair (they come from the uploader, signed with the same secret).
/// A pair that does not verify is logged, and no session is recorded for it.
fn verify_pair(gateway: &Gateway, tokens: &TokenPair, now_ms: i64) -> Option<(Claims, Claims)> {
    let access = gateway.verifier.verify(&tokens.access_token, now_ms);
    let refresh = gateway.verifier.verify(&tokens.refresh_token, now_ms);
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

/// JWT seconds (possibly fractional) to whole milliseconds.
fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}
