//! Token checks: reading the Bearer token and verifying it as a JWT.
//!
//! Verification pins the algorithm, checks the signature, requires `exp` and a string
//! `sub`, and checks `exp`/`nbf` against the gateway's [`Clock`](crate::sessions::Clock)
//! (not the system clock directly, so expiry is testable). Whether the token still belongs
//! to a live session is the session store's part, in [`crate::gateway`].

use http::HeaderMap;
use http::header::AUTHORIZATION;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha512};

/// Why a request's token was refused. Each maps to one 401 code (see [`crate::error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No `Authorization: Bearer` header (or an empty token).
    Missing,
    /// Malformed, badly signed, wrong algorithm, wrong issuer, bad claims, `nbf` ahead, or
    /// two `Authorization` headers.
    Invalid,
    /// `exp` has passed.
    Expired,
    /// The token verifies but no live session holds it (unknown, revoked or expired).
    UnknownSession,
}

/// The claims the gateway reads. `exp` is a number (JWT NumericDate, possibly fractional);
/// anything else fails deserialisation and the token is invalid.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: f64,
    /// Not-before, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<f64>,
}

/// The SHA-512 of a token, the key under which sessions are indexed (as the uploader does).
pub type TokenHash = [u8; 64];

/// SHA-512 of the token's bytes.
pub fn token_hash(token: &str) -> TokenHash {
    Sha512::digest(token.as_bytes()).into()
}

/// The Bearer token of a request. The scheme is case-insensitive (RFC 7235); exactly one
/// `Authorization` header is allowed. A token in the query string is never looked at.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenRejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(TokenRejection::Missing)?;
    if values.next().is_some() {
        return Err(TokenRejection::Invalid);
    }
    let value = value.to_str().map_err(|_| TokenRejection::Invalid)?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenRejection::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenRejection::Missing);
    }
    Ok(token)
}

/// Longest token verified; anything longer is refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies tokens signed with the uploader's secret.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    leeway: f64,
}

impl TokenVerifier {
    /// A verifier accepting only `algorithm`, with `leeway_seconds` of clock skew, and
    /// requiring `iss == issuer` when one is given.
    pub fn new(
        secret: &[u8],
        algorithm: Algorithm,
        leeway_seconds: u64,
        issuer: Option<&str>,
    ) -> TokenVerifier {
        let mut validation = Validation::new(algorithm);
        // exp and nbf are checked against the gateway's clock in `verify`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        TokenVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
            leeway: leeway_seconds as f64,
        }
    }

    /// Verifies a token at time `now_ms` (milliseconds since the epoch).
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenRejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenRejection::Invalid);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRejection::Expired,
                _ => TokenRejection::Invalid,
            })?
            .claims;
        let now = now_ms as f64 / 1000.0;
        if !claims.exp.is_finite() || claims.exp + self.leeway <= now {
            return Err(TokenRejection::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| !nbf.is_finite() || nbf > now + self.leeway)
        {
            return Err(TokenRejection::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
