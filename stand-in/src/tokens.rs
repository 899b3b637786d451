//! Tokens as the uploader issues them (Node `jsonwebtoken`, HS256, no session id).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};

/// Lifetime of an access token, in seconds (`expiresIn: '5m'`).
const ACCESS_LIFETIME: i64 = 5 * 60;
/// Lifetime of a refresh token, in seconds (`expiresIn: '14d'`).
const REFRESH_LIFETIME: i64 = 14 * 24 * 3600;
/// Lifetime of an API key, in seconds (the shortest the uploader offers: 24 h).
const API_KEY_LIFETIME: i64 = 24 * 3600;
/// Lifetime of a two-factor challenge token, in seconds (the uploader's is 15 minutes).
const CHALLENGE_LIFETIME: i64 = 15 * 60;
/// What the uploader appends to its site title to make an API key's issuer.
const API_KEY_ISSUER_SUFFIX: &str = " 3rd-party API";

/// The two tokens a login or a refresh gives.
#[derive(Clone, Debug)]
pub struct TokenPair {
    /// The access token (5 minutes).
    pub access_token: String,
    /// The refresh token (14 days), same payload shape as the access token.
    pub refresh_token: String,
}

/// The payload of every token: `{"sub","iss"?,"iat","exp"}` in that order.
#[derive(Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The user id.
    pub sub: String,
    /// `WEB_URI`, the API key issuer, or absent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// Signs and verifies the uploader's tokens with its secret.
pub(crate) struct Tokens {
    /// The key for session tokens and API keys.
    key: Vec<u8>,
    /// A different key for two-factor challenges, so they never pass as session tokens.
    challenge_key: Vec<u8>,
    /// The `iss` of session tokens.
    issuer: Option<String>,
}

impl Tokens {
    /// Tokens signed with `secret`, carrying `issuer` as `iss` when it is set.
    pub fn new(secret: &str, issuer: Option<String>) -> Tokens {
        Tokens {
            key: secret.as_bytes().to_vec(),
            challenge_key: format!("{secret}\0two-factor").into_bytes(),
            issuer,
        }
    }

    /// The access and refresh tokens a login at `now` gives `user_id`.
    pub fn pair(&self, user_id: &str, now: i64) -> TokenPair {
        TokenPair {
            access_token: self.session_token(user_id, now, ACCESS_LIFETIME),
            refresh_token: self.session_token(user_id, now, REFRESH_LIFETIME),
        }
    }

    /// An API key for `user_id` on the site `site_title`, valid 24 h from `now`.
    pub fn api_key(&self, user_id: &str, site_title: &str, now: i64) -> String {
        let issuer = format!("{site_title}{API_KEY_ISSUER_SUFFIX}");
        sign(
            &self.key,
            claims(user_id, Some(issuer), now, API_KEY_LIFETIME),
        )
    }

    /// The opaque token a login with two-factor returns, valid 15 minutes from `now`.
    pub fn challenge(&self, user_id: &str, now: i64) -> String {
        sign(
            &self.challenge_key,
            claims(user_id, None, now, CHALLENGE_LIFETIME),
        )
    }

    /// The user id of a session token (access or refresh) that verifies and is unexpired at
    /// `now`. API keys are refused: the uploader has no session for them.
    pub fn verify_session(&self, token: &str, now: i64) -> Option<String> {
        let claims = verify(&self.key, token, now)?;
        let is_api_key = claims
            .iss
            .as_deref()
            .is_some_and(|iss| iss.ends_with(API_KEY_ISSUER_SUFFIX));
        (!is_api_key).then_some(claims.sub)
    }

    /// The user id of a two-factor challenge token that verifies and is unexpired at `now`.
    pub fn verify_challenge(&self, token: &str, now: i64) -> Option<String> {
        verify(&self.challenge_key, token, now).map(|claims| claims.sub)
    }

    /// A session token for `user_id` issued at `now`, living `lifetime` seconds.
    fn session_token(&self, user_id: &str, now: i64, lifetime: i64) -> String {
        sign(
            &self.key,
            claims(user_id, self.issuer.clone(), now, lifetime),
        )
    }
}

/// The payload for `sub` issued at `now`, living `lifetime` seconds.
fn claims(sub: &str, iss: Option<String>, now: i64, lifetime: i64) -> Claims {
    Claims {
        sub: sub.to_owned(),
        iss,
        iat: now,
        exp: now + lifetime,
    }
}

/// The header Node's `jsonwebtoken` writes, with its key order.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The HS256 JWT of `claims` signed with `key`, byte for byte what Node's `jsonwebtoken`
/// (v8) gives for the same payload, secret and time.
fn sign(key: &[u8], claims: Claims) -> String {
    let payload = serde_json::to_vec(&claims).expect("claims serialise to JSON");
    let message = format!("{}.{}", base64url(HEADER.as_bytes()), base64url(&payload));
    let key = EncodingKey::from_secret(key);
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
        .expect("HMAC signing cannot fail");
    format!("{message}.{signature}")
}

/// Unpadded base64url, the encoding of a JWT's parts.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, &byte)| {
            bits | u32::from(byte) << (16 - 8 * i)
        });
        // n bytes give n + 1 characters of 6 bits.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// The claims of `token` if it is an HS256 JWT signed with `key` and `now` is before its
/// `exp` (the stand-in's clock, no leeway, like Node's `jsonwebtoken`).
fn verify(key: &[u8], token: &str, now: i64) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key), &validation);
    data.ok()
        .map(|data| data.claims)
        .filter(|claims| now < claims.exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token in the uploader's own documentation (`sessions-api.md`): its header and
    /// payload are what Node's `jsonwebtoken` wrote; ours must be byte-identical.
    const DOCUMENTED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI1ZjRiZmYxMjEwMzdlNDI0YTE3YTNlYmMiLCJpYXQiOjE1OTkyNDE1OTMsImV4cCI6MTU5OTI0MzM5M30";

    #[test]
    fn tokens_are_encoded_like_node_jsonwebtoken() {
        let claims = claims("5f4bff121037e424a17a3ebc", None, 1_599_241_593, 1800);
        let token = sign(b"secret", claims);
        let (message, _signature) = token.rsplit_once('.').expect("three parts");
        assert_eq!(message, DOCUMENTED);
    }

    #[test]
    fn signed_tokens_verify_until_exp() {
        let tokens = Tokens::new("secret", Some("https://share.example".into()));
        let pair = tokens.pair("abc", 1_000);
        assert_eq!(
            tokens.verify_session(&pair.access_token, 1_299).as_deref(),
            Some("abc")
        );
        assert_eq!(tokens.verify_session(&pair.access_token, 1_300), None);
        assert_eq!(tokens.verify_challenge(&pair.access_token, 1_000), None);
        let challenge = tokens.challenge("abc", 1_000);
        assert_eq!(tokens.verify_session(&challenge, 1_000), None);
        assert_eq!(
            tokens.verify_challenge(&challenge, 1_000).as_deref(),
            Some("abc")
        );
        let api_key = tokens.api_key("abc", "Share", 1_000);
        assert_eq!(tokens.verify_session(&api_key, 1_000), None);
    }

    #[test]
    fn base64url_pads_nothing() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
