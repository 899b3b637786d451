//! Token checks: reading the Bearer token and verifying it as a JWT.
//!
//! Verification pins the algorithm, checks the signature, requires `exp` and a string
//! `sub`, and checks `exp`/`nbf` against the gateway's [`Clock`](crate::sessions::Clock)
//! (not the system clock directly, so expiry is testable). Whether the token still belongs
//! to a live session of its `sub` is the [`Authenticator`]'s part, which asks the session
//! store.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use sha2::{Digest, Sha256, Sha384, Sha512};

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
    /// Issued-at, seconds since the epoch, when a finite number (set by the verifier, which
    /// reads a claim of another type as absent).
    #[serde(skip)]
    pub iat: Option<f64>,
    /// The token is one of Share's API keys (`iss` ending in ` 3rd-party API`), not a
    /// session's.
    #[serde(skip)]
    pub api_key: bool,
}

/// The SHA-512 of a token, the key under which sessions are indexed (as the uploader does).
pub type TokenHash = [u8; 64];

/// JWT seconds (possibly fractional) to whole milliseconds.
pub fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

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
    // The scheme ends at the first space, found byte by byte: it is a few bytes in.
    let space = value
        .bytes()
        .position(|b| b == b' ')
        .ok_or(TokenRejection::Missing)?;
    if !value[..space].eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Missing);
    }
    // Only spaces and tabs can be there to trim: the value is visible ASCII.
    let token = value[space + 1..].trim_ascii();
    if token.is_empty() {
        return Err(TokenRejection::Missing);
    }
    Ok(token)
}

/// Longest token verified; anything longer is refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies tokens signed with the uploader's secret.
///
/// The checks are those of `jsonwebtoken::decode` with the gateway's `Validation` (the
/// algorithm pinned, `exp` and `sub` required, `iss` when configured, any `aud` refused), done
/// in one pass: the HMAC key state is computed once here rather than on every call, and the
/// claims are parsed once. The unit tests hold the two to the same verdicts on generated
/// tokens, with `jsonwebtoken::decode` as the reference.
pub struct TokenVerifier {
    algorithm: Algorithm,
    /// The encoded headers JWT libraries write for the pinned algorithm (Node's jsonwebtoken,
    /// which the uploader uses: `{"alg":"HS256","typ":"JWT"}`; Rust's: `{"typ":"JWT",...}`).
    /// A token carrying one of these byte for byte needs no header parse.
    usual_headers: [String; 2],
    key: HmacKey,
    issuer: Option<String>,
    leeway: f64,
}

/// The HMAC of the pinned algorithm, keyed with the secret.
enum HmacKey {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl HmacKey {
    fn new(algorithm: Algorithm, secret: &[u8]) -> HmacKey {
        const ANY_LENGTH: &str = "HMAC takes a key of any length";
        match algorithm {
            Algorithm::HS384 => HmacKey::Hs384(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
            Algorithm::HS512 => HmacKey::Hs512(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
            // HS256, the uploader's; the config allows no algorithm but these three.
            _ => HmacKey::Hs256(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
        }
    }

    /// Whether `signature` is this key's HMAC of `message` (compared in constant time).
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        fn check<M: Mac + Clone>(mac: &M, message: &[u8], signature: &[u8]) -> bool {
            let mut mac = mac.clone();
            mac.update(message);
            mac.verify_slice(signature).is_ok()
        }
        match self {
            HmacKey::Hs256(mac) => check(mac, message, signature),
            HmacKey::Hs384(mac) => check(mac, message, signature),
            HmacKey::Hs512(mac) => check(mac, message, signature),
        }
    }
}

/// The JOSE header: only `alg` is read, but the whole header must parse as
/// `jsonwebtoken`'s does.
type JoseHeader = jsonwebtoken::Header;

/// Every claim the check looks at, read in one parse. Mirrors how `jsonwebtoken` reads them:
/// `sub` a string and `exp` a number (as [`Claims`] requires), and for its validation `exp`
/// coercible to a non-negative integer, `iss` and `aud` a string or a list of strings (other
/// types count as absent).
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    sub: Cow<'a, str>,
    exp: serde_json::Number,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Lenient<f64>,
    #[serde(default, borrow)]
    iss: Lenient<StringOrList<'a>>,
    #[serde(default, borrow)]
    aud: Lenient<StringOrList<'a>>,
}

/// A claim that may be absent (or null), or present with a type the check does not accept.
#[derive(Default)]
enum Lenient<T> {
    Present(T),
    WrongType,
    #[default]
    Absent,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer) {
            Ok(Some(value)) => Lenient::Present(value),
            Ok(None) => Lenient::Absent,
            Err(_) => Lenient::WrongType,
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(Vec<String>),
}

impl StringOrList<'_> {
    fn contains(&self, value: &str) -> bool {
        self.any(|v| v == value)
    }

    fn any(&self, test: impl Fn(&str) -> bool) -> bool {
        match self {
            StringOrList::One(one) => test(one),
            StringOrList::Many(many) => many.iter().any(|v| test(v)),
        }
    }
}

/// How Share's API keys' `iss` ends (`"<SITE_TITLE> 3rd-party API"`).
const API_KEY_ISSUER_SUFFIX: &str = " 3rd-party API";

impl TokenVerifier {
    /// A verifier accepting only `algorithm` (an HMAC: HS256, HS384 or HS512), with
    /// `leeway_seconds` of clock skew, and requiring `iss == issuer` when one is given.
    pub fn new(
        secret: &[u8],
        algorithm: Algorithm,
        leeway_seconds: u64,
        issuer: Option<&str>,
    ) -> TokenVerifier {
        // `"HS256"`, quotes included.
        let alg = serde_json::to_string(&algorithm).expect("an algorithm serialises");
        let usual_header = |json: String| URL_SAFE_NO_PAD.encode(json);
        TokenVerifier {
            algorithm,
            usual_headers: [
                usual_header(format!(r#"{{"alg":{alg},"typ":"JWT"}}"#)),
                usual_header(format!(r#"{{"typ":"JWT","alg":{alg}}}"#)),
            ],
            key: HmacKey::new(algorithm, secret),
            issuer: issuer.map(str::to_string),
            leeway: leeway_seconds as f64,
        }
    }

    /// Verifies a token at time `now_ms` (milliseconds since the epoch).
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Claims, TokenRejection> {
        use TokenRejection::Invalid;
        if token.len() > MAX_TOKEN_LEN {
            return Err(Invalid);
        }
        // `header.payload.signature`, split from the right as jsonwebtoken does.
        let (message, signature) = token.rsplit_once('.').ok_or(Invalid)?;
        let (header, payload) = message.rsplit_once('.').ok_or(Invalid)?;
        if !self.usual_headers.iter().any(|usual| usual == header) {
            let header = b64_decode(header)?;
            let header: JoseHeader = serde_json::from_slice(&header).map_err(|_| Invalid)?;
            if header.alg != self.algorithm {
                return Err(Invalid);
            }
        }
        // The longest HMAC (SHA-512) is 64 bytes; a longer signature matches none.
        let mut signature_bytes = [0u8; 64];
        let length = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut signature_bytes)
            .map_err(|_| Invalid)?;
        if !self
            .key
            .verifies(message.as_bytes(), &signature_bytes[..length])
        {
            return Err(Invalid);
        }
        let payload = b64_decode(payload)?;
        let claims: Payload = serde_json::from_slice(&payload).map_err(|_| Invalid)?;
        // jsonwebtoken's reading of `exp`: an integer, or a finite non-negative number below
        // 2^64 (so a negative integer is not one).
        let exp = claims.exp.as_f64().ok_or(Invalid)?;
        if !(claims.exp.is_u64() || (exp.is_finite() && exp >= 0.0 && exp < u64::MAX as f64)) {
            return Err(Invalid);
        }
        if let Some(issuer) = &self.issuer
            && !matches!(&claims.iss, Lenient::Present(iss) if iss.contains(issuer))
        {
            return Err(Invalid);
        }
        // No audience is configured: a token meant for some audience is not for the gateway.
        if matches!(claims.aud, Lenient::Present(_)) {
            return Err(Invalid);
        }
        let api_key = matches!(&claims.iss, Lenient::Present(iss) if iss.any(|iss| iss.ends_with(API_KEY_ISSUER_SUFFIX)));
        let claims = Claims {
            sub: claims.sub.into_owned(),
            exp,
            nbf: claims.nbf,
            iat: match claims.iat {
                Lenient::Present(iat) if iat.is_finite() => Some(iat),
                _ => None,
            },
            api_key,
        };
        self.check_times(&claims, now_ms)?;
        Ok(claims)
    }

    /// The time checks of [`TokenVerifier::verify`] alone, at `now_ms`: `exp` has not
    /// passed and `nbf` has come, within the leeway. For claims this verifier verified
    /// before (the other checks do not depend on the time).
    pub fn check_times(&self, claims: &Claims, now_ms: i64) -> Result<(), TokenRejection> {
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
        Ok(())
    }
}

/// Unpadded base64url (RFC 7515 section 2), strict about trailing bits as jsonwebtoken is.
fn b64_decode(part: &str) -> Result<Vec<u8>, TokenRejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenRejection::Invalid)
}

mod authenticator;

pub use authenticator::{Authenticator, Caller, TokenMemo};

#[cfg(test)]
mod tests;
