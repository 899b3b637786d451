//! The token checks' tests. Here: the secret, the fixed "now" and the token builders every
//! part shares (tokens signed by `jsonwebtoken`, and hand-built ones for the malformed cases),
//! and the property that the one-pass verifier agrees with `jsonwebtoken::decode`. The rest,
//! by what is checked:
//!
//! - `bearer`: reading the token from the `Authorization` header;
//! - `token_hash`: the SHA-512 the store keys sessions by;
//! - `good_tokens`: what verifies, and the claims it yields;
//! - `signature`: another secret, an altered signature or payload, another algorithm;
//! - `time`: `exp` and `nbf` with the leeway, judged by the given now;
//! - `claims`: `exp` and `sub` required, of the right types;
//! - `malformed`: parts that do not decode, not three parts, too long;
//! - `issuer`: a configured issuer required and matched, or any accepted.

use super::*;

use http::HeaderValue;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

mod bearer;
mod claims;
mod good_tokens;
mod issuer;
mod malformed;
mod signature;
mod time;
mod token_hash;

const SECRET: &[u8] = b"the uploader's JWT_SECRET";
const USER: &str = "5fc1d2e3a4b5c6d7e8f90a1b";
/// A fixed "now": 2023-11-14T22:13:20Z.
const NOW_S: i64 = 1_700_000_000;
const NOW_MS: i64 = NOW_S * 1000;
const LEEWAY: i64 = 30;
const WEB_URI: &str = "https://share.example";

fn verifier() -> TokenVerifier {
    TokenVerifier::new(SECRET, Algorithm::HS256, LEEWAY as u64, None)
}

fn verifier_with_issuer(issuer: &str) -> TokenVerifier {
    TokenVerifier::new(SECRET, Algorithm::HS256, LEEWAY as u64, Some(issuer))
}

/// A token as the uploader signs it (HS256, its secret), with these claims.
fn token(claims: &Value) -> String {
    signed_with(Algorithm::HS256, SECRET, claims)
}

fn signed_with(algorithm: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("encodes")
}

/// The uploader's payload shape, live at `NOW_S`.
fn live_claims() -> Value {
    json!({ "sub": USER, "iat": NOW_S - 10, "exp": NOW_S + 300 })
}

/// Unpadded base64url (RFC 7515 section 2), written out so that malformed tokens are built
/// without the library under test.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// `header.payload` (both given as raw bytes) with a correct HS256 signature by `SECRET`
/// over exactly those bytes, whatever the header says.
fn hand_signed(header: &[u8], payload: &[u8]) -> String {
    hand_signed_parts(&b64(header), &b64(payload))
}

fn hand_signed_parts(header: &str, payload: &str) -> String {
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .expect("signs");
    format!("{message}.{signature}")
}

/// The header `jsonwebtoken` writes for HS256, byte for byte.
const HS256_HEADER: &[u8] = br#"{"typ":"JWT","alg":"HS256"}"#;

fn payload(claims: &Value) -> Vec<u8> {
    serde_json::to_vec(claims).expect("serialises")
}

fn headers(values: &[&'static str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(AUTHORIZATION, HeaderValue::from_static(value));
    }
    headers
}

// --- the one-pass verifier against jsonwebtoken::decode -------------------------------------
//
// Here rather than in a file of its own: proptest keeps the failures it found by the path of
// the file the properties are written in (`proptest-regressions/auth/tests.txt`) and replays
// them first.

/// The verdict of `jsonwebtoken::decode` with the validation the gateway asks for, followed
/// by the gateway's own `exp`/`nbf` checks: the reference `TokenVerifier::verify` must agree
/// with.
fn reference_verdict(token: &str, issuer: Option<&str>) -> Result<Claims, TokenRejection> {
    use jsonwebtoken::{DecodingKey, Validation};
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let claims =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(SECRET), &validation)
            .map_err(|_| TokenRejection::Invalid)?
            .claims;
    let now = NOW_S as f64;
    let leeway = LEEWAY as f64;
    if !claims.exp.is_finite() || claims.exp + leeway <= now {
        return Err(TokenRejection::Expired);
    }
    if claims
        .nbf
        .is_some_and(|nbf| !nbf.is_finite() || nbf > now + leeway)
    {
        return Err(TokenRejection::Invalid);
    }
    Ok(claims)
}

/// What a verdict says, comparable.
fn verdict_summary(
    verdict: Result<Claims, TokenRejection>,
) -> Result<(String, u64, Option<u64>), TokenRejection> {
    verdict.map(|c| (c.sub, c.exp.to_bits(), c.nbf.map(f64::to_bits)))
}

mod agrees_with_jsonwebtoken {
    use super::*;
    use proptest::prelude::*;

    /// Each claim: mostly its first (live, well-formed) value, else absent or one of the
    /// others, so that most tokens differ from a good one in one or two claims.
    fn claim(values: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
        let good = values[0].clone();
        prop_oneof![
            3 => Just(Some(good)),
            1 => Just(None),
            3 => prop::sample::select(values).prop_map(Some),
        ]
    }

    fn claims() -> impl Strategy<Value = Value> {
        let sub = claim(vec![
            json!(USER),
            json!(""),
            json!(7),
            Value::Null,
            json!(["a"]),
            json!("caf\u{e9} \"q\""),
        ]);
        let exp = claim(vec![
            json!(NOW_S + 300),
            json!(NOW_S - 300),
            json!(NOW_S - LEEWAY),
            json!(NOW_S - LEEWAY + 1),
            json!(NOW_S as f64 + 300.5),
            json!(NOW_S as f64 - 0.5),
            json!(-5),
            json!(-5.5),
            json!(-0.5),
            json!(0),
            json!(u64::MAX),
            json!(1e300),
            json!("1700000300"),
            Value::Null,
            json!(true),
        ]);
        let nbf = claim(vec![
            json!(NOW_S - 10),
            json!(NOW_S + LEEWAY),
            json!(NOW_S + LEEWAY + 1),
            json!(NOW_S as f64 + 1.5),
            json!(-1),
            json!("soon"),
            Value::Null,
        ]);
        let iss = claim(vec![
            json!(WEB_URI),
            json!("https://evil.example"),
            json!([WEB_URI, "other"]),
            json!(["other"]),
            json!([]),
            json!([7]),
            json!(7),
            Value::Null,
        ]);
        let aud = claim(vec![
            Value::Null,
            json!("share"),
            json!(["share"]),
            json!([]),
            json!(7),
            json!([7]),
        ]);
        (sub, exp, nbf, iss, aud).prop_map(|(sub, exp, nbf, iss, aud)| {
            let mut claims = serde_json::Map::new();
            claims.insert("iat".into(), json!(NOW_S - 10));
            for (name, value) in [
                ("sub", sub),
                ("exp", exp),
                ("nbf", nbf),
                ("iss", iss),
                ("aud", aud),
            ] {
                if let Some(value) = value {
                    claims.insert(name.into(), value);
                }
            }
            Value::Object(claims)
        })
    }

    fn header() -> impl Strategy<Value = &'static [u8]> {
        let others = prop::sample::select(vec![
            HS256_HEADER,
            br#"{"alg":"HS256","typ":"JWT"}"#.as_slice(),
            br#"{"alg":"HS256","typ":"JWT"} "#.as_slice(),
            br#"{"alg":"HS256"}"#.as_slice(),
            br#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#.as_slice(),
            br#"{"alg":"HS256","kid":5}"#.as_slice(),
            br#"{"alg":"HS256","x":{"y":[1,2]}}"#.as_slice(),
            br#"{"alg":"HS384","typ":"JWT"}"#.as_slice(),
            br#"{"alg":"none"}"#.as_slice(),
            br#"{"alg":"RS256"}"#.as_slice(),
            br#"{"typ":"JWT"}"#.as_slice(),
            br#"{"alg":"hs256"}"#.as_slice(),
            br#"[]"#.as_slice(),
        ]);
        prop_oneof![
            1 => Just(HS256_HEADER),
            1 => Just(br#"{"alg":"HS256","typ":"JWT"}"#.as_slice()),
            1 => others,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn on_generated_tokens(header in header(), claims in claims(), with_issuer in any::<bool>()) {
            let token = hand_signed(header, &payload(&claims));
            let issuer = with_issuer.then_some(WEB_URI);
            let verifier = match issuer {
                Some(issuer) => verifier_with_issuer(issuer),
                None => verifier(),
            };
            prop_assert_eq!(
                verdict_summary(verifier.verify(&token, NOW_MS)),
                verdict_summary(reference_verdict(&token, issuer)),
                "token claims {}", claims
            );
        }

        #[test]
        fn on_raw_payloads(text in prop::sample::select(vec![
            r#"{"sub":"a","exp":1700000300,"sub":"b"}"#,
            r#"{"sub":"a","exp":1700000300,"exp":1}"#,
            r#"{"sub":"a","exp":1700000300} "#,
            r#"{"sub":"a","exp":1700000300}x"#,
            r#"{"sub":"a","exp":1700000300.0e0}"#,
            r#"{"sub":"a","exp":17000003e2}"#,
            r#"{"sub":"\u0061","exp":1700000300}"#,
            r#"{"sub":"a","exp":1700000300,"nbf":null,"aud":null,"iss":null}"#,
            r#"{"sub":"a","exp":-0}"#,
            r#"{"sub":"a","exp":1e400}"#,
            r#"{"sub":"a","exp":99999999999999999999999}"#,
            "[]",
            "",
            "null",
        ])) {
            let token = hand_signed(HS256_HEADER, text.as_bytes());
            prop_assert_eq!(
                verdict_summary(verifier().verify(&token, NOW_MS)),
                verdict_summary(reference_verdict(&token, None)),
                "payload {}", text
            );
        }
    }
}
