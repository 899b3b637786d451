use super::*;

use http::HeaderValue;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

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

// --- bearer_token -----------------------------------------------------------------------

#[test]
fn bearer_token_is_read_from_the_authorization_header() {
    assert_eq!(
        bearer_token(&headers(&["Bearer abc.def.ghi"])),
        Ok("abc.def.ghi")
    );
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    for value in ["bearer tok", "BEARER tok", "BeArEr tok", "Bearer tok"] {
        assert_eq!(bearer_token(&headers(&[value])), Ok("tok"), "{value}");
    }
}

#[test]
fn surrounding_spaces_of_the_token_are_ignored() {
    assert_eq!(bearer_token(&headers(&["Bearer   tok  "])), Ok("tok"));
}

#[test]
fn no_authorization_header_is_missing() {
    assert_eq!(
        bearer_token(&HeaderMap::new()),
        Err(TokenRejection::Missing)
    );
    let mut other = HeaderMap::new();
    other.insert("x-access-token", HeaderValue::from_static("tok"));
    assert_eq!(bearer_token(&other), Err(TokenRejection::Missing));
}

#[test]
fn other_schemes_are_missing() {
    for value in [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token tok",
        "Bearertok",
        "tok",
    ] {
        assert_eq!(
            bearer_token(&headers(&[value])),
            Err(TokenRejection::Missing),
            "{value}"
        );
    }
}

#[test]
fn an_empty_token_is_missing() {
    for value in ["Bearer", "Bearer ", "Bearer    ", ""] {
        assert_eq!(
            bearer_token(&headers(&[value])),
            Err(TokenRejection::Missing),
            "{value:?}"
        );
    }
}

#[test]
fn two_authorization_headers_are_invalid() {
    assert_eq!(
        bearer_token(&headers(&["Bearer one", "Bearer two"])),
        Err(TokenRejection::Invalid)
    );
    assert_eq!(
        bearer_token(&headers(&["Bearer same", "Bearer same"])),
        Err(TokenRejection::Invalid)
    );
    assert_eq!(
        bearer_token(&headers(&["Basic dXNlcjpwYXNz", "Bearer tok"])),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn a_non_ascii_header_value_is_invalid() {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer tok\xff").expect("obs-text is a valid value"),
    );
    assert_eq!(bearer_token(&headers), Err(TokenRejection::Invalid));
}

// --- token_hash -------------------------------------------------------------------------

#[test]
fn token_hash_is_sha512() {
    assert_eq!(
        hex::encode(token_hash("abc")),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
    assert_eq!(
        hex::encode(token_hash("")),
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
         47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    );
}

// --- TokenVerifier: good tokens ---------------------------------------------------------

#[test]
fn a_good_token_verifies_and_yields_its_claims() {
    let claims = verifier()
        .verify(&token(&live_claims()), NOW_MS)
        .expect("verifies");
    assert_eq!(claims.sub, USER);
    assert_eq!(claims.exp, (NOW_S + 300) as f64);
    assert_eq!(claims.nbf, None);
}

#[test]
fn the_hand_built_tokens_are_sound() {
    // The malformed cases below differ from this one in one part only.
    let claims = verifier()
        .verify(&hand_signed(HS256_HEADER, &payload(&live_claims())), NOW_MS)
        .expect("verifies");
    assert_eq!(claims.sub, USER);
    assert_eq!(
        hand_signed(HS256_HEADER, &payload(&live_claims())),
        token(&live_claims())
    );
}

#[test]
fn a_fractional_exp_is_a_number_like_any_other() {
    let exp = NOW_S as f64 + 300.5;
    let claims = verifier()
        .verify(&token(&json!({ "sub": USER, "exp": exp })), NOW_MS)
        .expect("verifies");
    assert_eq!(claims.exp, exp);
}

// --- TokenVerifier: signature and algorithm ---------------------------------------------

#[test]
fn a_token_signed_with_another_secret_is_invalid() {
    let token = signed_with(Algorithm::HS256, b"another secret", &live_claims());
    assert_eq!(
        verifier().verify(&token, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn an_altered_or_stripped_signature_is_invalid() {
    let good = token(&live_claims());
    let (message, signature) = good.rsplit_once('.').expect("three parts");

    let first = signature.chars().next().expect("a signature");
    let swapped = if first == 'A' { 'B' } else { 'A' };
    let altered = format!("{message}.{swapped}{}", &signature[1..]);
    assert_eq!(
        verifier().verify(&altered, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );

    let truncated = format!("{message}.{}", &signature[..signature.len() - 4]);
    assert_eq!(
        verifier().verify(&truncated, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );

    let stripped = format!("{message}.");
    assert_eq!(
        verifier().verify(&stripped, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn an_altered_payload_is_invalid() {
    let good = token(&live_claims());
    let signature = good.rsplit('.').next().expect("a signature");
    let header = good.split('.').next().expect("a header");
    let other_user = json!({ "sub": "000000000000000000000000", "exp": NOW_S + 300 });
    let forged = format!("{header}.{}.{signature}", b64(&payload(&other_user)));
    assert_eq!(
        verifier().verify(&forged, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn alg_none_is_invalid() {
    let body = b64(&payload(&live_claims()));
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None","typ":"JWT"}"#,
    ] {
        let unsigned = format!("{}.{body}.", b64(header.as_bytes()));
        assert_eq!(
            verifier().verify(&unsigned, NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{header}"
        );
    }
    // Signed or not, alg none is refused.
    let signed = hand_signed(br#"{"alg":"none","typ":"JWT"}"#, &payload(&live_claims()));
    assert_eq!(
        verifier().verify(&signed, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn another_hmac_algorithm_is_invalid() {
    for algorithm in [Algorithm::HS512, Algorithm::HS384] {
        let token = signed_with(algorithm, SECRET, &live_claims());
        assert_eq!(
            verifier().verify(&token, NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{algorithm:?}"
        );
    }
    // And the other way round: an HS512 verifier refuses the uploader's HS256 tokens.
    let hs512 = TokenVerifier::new(SECRET, Algorithm::HS512, LEEWAY as u64, None);
    assert_eq!(
        hs512.verify(&token(&live_claims()), NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
    let own = signed_with(Algorithm::HS512, SECRET, &live_claims());
    assert!(hs512.verify(&own, NOW_MS).is_ok());
}

#[test]
fn an_rs256_header_over_an_hmac_signature_is_invalid() {
    // The key-confusion attack: claim RS256 but sign with the (shared) secret.
    let token = hand_signed(br#"{"alg":"RS256","typ":"JWT"}"#, &payload(&live_claims()));
    assert_eq!(
        verifier().verify(&token, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

// --- TokenVerifier: time ----------------------------------------------------------------

#[test]
fn an_expired_token_is_expired() {
    let long_ago = token(&json!({ "sub": USER, "exp": NOW_S - 3600 }));
    assert_eq!(
        verifier().verify(&long_ago, NOW_MS).map(drop),
        Err(TokenRejection::Expired)
    );

    let just_past_leeway = token(&json!({ "sub": USER, "exp": NOW_S - LEEWAY - 1 }));
    assert_eq!(
        verifier().verify(&just_past_leeway, NOW_MS).map(drop),
        Err(TokenRejection::Expired)
    );
}

#[test]
fn a_token_expired_within_the_leeway_is_accepted() {
    for exp in [NOW_S - LEEWAY + 1, NOW_S - 1, NOW_S, NOW_S + 1] {
        let token = token(&json!({ "sub": USER, "exp": exp }));
        assert!(verifier().verify(&token, NOW_MS).is_ok(), "exp {exp}");
    }
}

#[test]
fn expiry_is_judged_by_the_given_now_not_the_system_clock() {
    // Valid for the system clock (exp in 2100), expired for the given now.
    let exp = 4_102_444_800_i64;
    let token = token(&json!({ "sub": USER, "exp": exp }));
    assert!(verifier().verify(&token, NOW_MS).is_ok());
    let later_ms = (exp + LEEWAY + 1) * 1000;
    assert_eq!(
        verifier().verify(&token, later_ms).map(drop),
        Err(TokenRejection::Expired)
    );

    // Expired for the system clock, valid for a given now in 2001.
    let old = token_at(1_000_000_000);
    assert!(verifier().verify(&old, 1_000_000_000_000).is_ok());
    assert_eq!(
        verifier().verify(&old, NOW_MS).map(drop),
        Err(TokenRejection::Expired)
    );
}

/// A token issued at `iat` seconds, living 5 minutes.
fn token_at(iat: i64) -> String {
    token(&json!({ "sub": USER, "iat": iat, "exp": iat + 300 }))
}

#[test]
fn with_no_leeway_a_token_is_expired_at_its_exp() {
    // RFC 7519 section 4.1.4: not accepted "on or after" exp.
    let strict = TokenVerifier::new(SECRET, Algorithm::HS256, 0, None);
    let token = token(&json!({ "sub": USER, "exp": NOW_S }));
    assert_eq!(
        strict.verify(&token, NOW_MS).map(drop),
        Err(TokenRejection::Expired)
    );
    assert!(strict.verify(&token, NOW_MS - 1).is_ok());
}

#[test]
fn nbf_in_the_future_beyond_the_leeway_is_invalid() {
    let early = token(&json!({ "sub": USER, "exp": NOW_S + 600, "nbf": NOW_S + LEEWAY + 1 }));
    assert_eq!(
        verifier().verify(&early, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
    let far = token(&json!({ "sub": USER, "exp": NOW_S + 9_999, "nbf": NOW_S + 3_600 }));
    assert_eq!(
        verifier().verify(&far, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

#[test]
fn nbf_within_the_leeway_or_past_is_accepted() {
    for nbf in [NOW_S + LEEWAY, NOW_S + 1, NOW_S, NOW_S - 600] {
        let token = token(&json!({ "sub": USER, "exp": NOW_S + 600, "nbf": nbf }));
        let claims = verifier().verify(&token, NOW_MS).expect("verifies");
        assert_eq!(claims.nbf, Some(nbf as f64), "nbf {nbf}");
    }
}

// --- TokenVerifier: claims --------------------------------------------------------------

#[test]
fn exp_is_required_and_must_be_a_number() {
    for claims in [
        json!({ "sub": USER }),
        json!({ "sub": USER, "exp": null }),
        json!({ "sub": USER, "exp": (NOW_S + 300).to_string() }),
        json!({ "sub": USER, "exp": [NOW_S + 300] }),
        json!({ "sub": USER, "exp": true }),
    ] {
        assert_eq!(
            verifier().verify(&token(&claims), NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{claims}"
        );
    }
}

#[test]
fn sub_is_required_and_must_be_a_string() {
    for claims in [
        json!({ "exp": NOW_S + 300 }),
        json!({ "sub": null, "exp": NOW_S + 300 }),
        json!({ "sub": 42, "exp": NOW_S + 300 }),
        json!({ "sub": [USER], "exp": NOW_S + 300 }),
        json!({ "sub": { "id": USER }, "exp": NOW_S + 300 }),
    ] {
        assert_eq!(
            verifier().verify(&token(&claims), NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{claims}"
        );
    }
}

#[test]
fn malformed_tokens_are_invalid() {
    let good_payload = b64(&payload(&live_claims()));
    let good_header = b64(HS256_HEADER);
    let cases = [
        // Payload that is not base64url, signed correctly.
        hand_signed_parts(&good_header, "eyJzdWIi!!!.*"),
        // Payload in standard base64 with padding.
        hand_signed_parts(&good_header, "eyJ+/w=="),
        // Base64url of something that is not JSON.
        hand_signed(HS256_HEADER, b"{\"sub\": \"abc\", \"exp\": "),
        hand_signed(HS256_HEADER, b"not json at all"),
        // JSON but not an object.
        hand_signed(HS256_HEADER, b"[1, 2, 3]"),
        // Header that is not JSON, or not base64url.
        hand_signed(b"{\"alg\":\"HS256\"", &payload(&live_claims())),
        hand_signed_parts("%%%", &good_payload),
        // Header without an algorithm.
        hand_signed(br#"{"typ":"JWT"}"#, &payload(&live_claims())),
    ];
    for token in &cases {
        assert_eq!(
            verifier().verify(token, NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{token}"
        );
    }
}

#[test]
fn tokens_without_three_parts_are_invalid() {
    let good = token(&live_claims());
    let (message, _) = good.rsplit_once('.').expect("three parts");
    let cases = [
        String::new(),
        "garbage".to_owned(),
        message.to_owned(),
        format!("{good}.{}", b64(b"extra")),
        format!(".{good}"),
        "..".to_owned(),
        good.replace('.', ""),
    ];
    for token in &cases {
        assert_eq!(
            verifier().verify(token, NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{token:?}"
        );
    }
}

#[test]
fn a_token_longer_than_the_limit_is_invalid() {
    // Padding claims make the token long; each is correctly signed and otherwise live.
    let padded =
        |pad: usize| token(&json!({ "sub": USER, "exp": NOW_S + 300, "pad": "x".repeat(pad) }));
    let mut pad = 5_000;
    while padded(pad + 1).len() <= MAX_TOKEN_LEN {
        pad += 1;
    }
    let at_limit = padded(pad);
    let over = padded(pad + 1);
    assert!(at_limit.len() <= MAX_TOKEN_LEN);
    assert!(over.len() > MAX_TOKEN_LEN);
    assert!(verifier().verify(&at_limit, NOW_MS).is_ok());
    assert_eq!(
        verifier().verify(&over, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );

    let huge = padded(100_000);
    assert_eq!(
        verifier().verify(&huge, NOW_MS).map(drop),
        Err(TokenRejection::Invalid)
    );
}

// --- TokenVerifier: issuer --------------------------------------------------------------

#[test]
fn a_configured_issuer_is_required_and_must_match() {
    let verifier = verifier_with_issuer(WEB_URI);

    let right = token(&json!({ "sub": USER, "iss": WEB_URI, "exp": NOW_S + 300 }));
    assert_eq!(
        verifier.verify(&right, NOW_MS).map(|c| c.sub),
        Ok(USER.into())
    );

    for claims in [
        json!({ "sub": USER, "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "https://evil.example", "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "https://share.example/", "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "HTTPS://SHARE.EXAMPLE", "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "", "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": null, "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": 7, "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "Share 3rd-party API", "exp": NOW_S + 300 }),
    ] {
        assert_eq!(
            verifier.verify(&token(&claims), NOW_MS).map(drop),
            Err(TokenRejection::Invalid),
            "{claims}"
        );
    }
}

#[test]
fn without_a_configured_issuer_any_issuer_or_none_is_accepted() {
    // WEB_URI unset: the uploader's tokens carry no iss at all.
    for claims in [
        json!({ "sub": USER, "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": WEB_URI, "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "Share 3rd-party API", "exp": NOW_S + 300 }),
        json!({ "sub": USER, "iss": "anything at all", "exp": NOW_S + 300 }),
    ] {
        let verified = verifier().verify(&token(&claims), NOW_MS);
        assert_eq!(verified.map(|c| c.sub), Ok(USER.into()), "{claims}");
    }
}

#[test]
fn either_usual_header_order_verifies_and_only_for_its_own_algorithm() {
    for (algorithm, name) in [
        (Algorithm::HS256, "HS256"),
        (Algorithm::HS384, "HS384"),
        (Algorithm::HS512, "HS512"),
    ] {
        for header in [
            format!(r#"{{"alg":"{name}","typ":"JWT"}}"#),
            format!(r#"{{"typ":"JWT","alg":"{name}"}}"#),
        ] {
            let message = format!(
                "{}.{}",
                b64(header.as_bytes()),
                b64(&payload(&live_claims()))
            );
            let signature = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(SECRET),
                algorithm,
            )
            .expect("signs");
            let token = format!("{message}.{signature}");
            let own = TokenVerifier::new(SECRET, algorithm, LEEWAY as u64, None);
            assert_eq!(
                own.verify(&token, NOW_MS).map(|c| c.sub),
                Ok(USER.to_string()),
                "{header}"
            );
            for other in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                if other != algorithm {
                    let verifier = TokenVerifier::new(SECRET, other, LEEWAY as u64, None);
                    assert_eq!(
                        verifier.verify(&token, NOW_MS).map(|c| c.sub),
                        Err(TokenRejection::Invalid),
                        "{header} checked as {other:?}"
                    );
                }
            }
        }
    }
}

// --- the one-pass verifier against jsonwebtoken::decode -------------------------------------

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
