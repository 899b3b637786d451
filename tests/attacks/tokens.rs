//! Forged, altered, malformed and misplaced tokens on session routes. The refusal code says
//! which check caught each one: `TOKEN_INVALID` means the JWT itself was refused, before any
//! session lookup (a forged token could never match a session's hash anyway, so
//! `SESSION_INVALID` would hide a broken signature check).

use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sessiongate::sessions::Clock;

use crate::raw;
use crate::support::*;
use crate::{assert_refusal, assert_still_serving, upstream_paths_since};

/// Unpadded base64url.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &b)| bits | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// `header.payload` (both encoded as given) signed with HMAC `algorithm` under `key`.
fn hmac_signed(
    encoded_header: &str,
    encoded_payload: &str,
    key: &str,
    algorithm: Algorithm,
) -> String {
    let message = format!("{encoded_header}.{encoded_payload}");
    let key = EncodingKey::from_secret(key.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, algorithm)
        .expect("HMAC signing cannot fail");
    format!("{message}.{signature}")
}

/// A token with this JSON header and payload text, HMAC-SHA256-signed with `key`.
fn signed(header: &Value, payload: &str, key: &str) -> String {
    hmac_signed(
        &b64(header.to_string().as_bytes()),
        &b64(payload.as_bytes()),
        key,
        Algorithm::HS256,
    )
}

/// The uploader's header.
fn hs256() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

/// The same base64url text with its last character's unused low bits changed: the same
/// bytes to a lenient decoder, a different string (so a different token hash).
fn other_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *segment.as_bytes().last().expect("a non-empty segment");
    let index = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    // A 32-byte HMAC-SHA256 signature is 43 characters: the last one carries 2 unused bits.
    let flipped = char::from(ALPHABET[index ^ 1]);
    format!("{}{flipped}", &segment[..segment.len() - 1])
}

/// Every forged or malformed token, with the code the gateway must answer.
fn hostile_tokens(
    h: &Harness,
    live: &str,
    bobs: &str,
) -> Vec<(&'static str, String, &'static str)> {
    let now = h.clock.now_ms() / 1000;
    let good_claims = json!({"sub": ALICE.0, "iat": now, "exp": now + 300}).to_string();
    let claims = |value: Value| value.to_string();
    let parts: Vec<&str> = live.split('.').collect();
    let bob_parts: Vec<&str> = bobs.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let none_header = |alg: &str| b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
    let mut flipped_first = signature.to_string();
    let first = if signature.starts_with('A') { "B" } else { "A" };
    flipped_first.replace_range(..1, first);
    vec![
        (
            "alg none, empty signature",
            format!("{}.{}.", none_header("none"), b64(good_claims.as_bytes())),
            "TOKEN_INVALID",
        ),
        (
            "alg none, no signature segment",
            format!("{}.{}", none_header("none"), b64(good_claims.as_bytes())),
            "TOKEN_INVALID",
        ),
        (
            "alg None",
            format!("{}.{}.", none_header("None"), b64(good_claims.as_bytes())),
            "TOKEN_INVALID",
        ),
        (
            "alg NONE with the live token's payload and signature",
            format!("{}.{payload}.{signature}", none_header("NONE")),
            "TOKEN_INVALID",
        ),
        (
            "HS512 signed with the secret",
            hmac_signed(
                &b64(json!({"alg": "HS512", "typ": "JWT"}).to_string().as_bytes()),
                &b64(good_claims.as_bytes()),
                SECRET,
                Algorithm::HS512,
            ),
            "TOKEN_INVALID",
        ),
        (
            "HS384 signed with the secret",
            hmac_signed(
                &b64(json!({"alg": "HS384", "typ": "JWT"}).to_string().as_bytes()),
                &b64(good_claims.as_bytes()),
                SECRET,
                Algorithm::HS384,
            ),
            "TOKEN_INVALID",
        ),
        (
            "RS256 header, HMAC-SHA256 signature keyed with the secret",
            signed(&json!({"alg": "RS256", "typ": "JWT"}), &good_claims, SECRET),
            "TOKEN_INVALID",
        ),
        (
            "ES256 header, HMAC-SHA256 signature keyed with the secret",
            signed(&json!({"alg": "ES256", "typ": "JWT"}), &good_claims, SECRET),
            "TOKEN_INVALID",
        ),
        (
            "signature stripped, trailing dot kept",
            format!("{header}.{payload}."),
            "TOKEN_INVALID",
        ),
        (
            "signature stripped, two segments",
            format!("{header}.{payload}"),
            "TOKEN_INVALID",
        ),
        (
            "first signature character altered",
            format!("{header}.{payload}.{flipped_first}"),
            "TOKEN_INVALID",
        ),
        (
            "signature re-spelled with other unused trailing bits",
            format!("{header}.{payload}.{}", other_trailing_bits(signature)),
            "TOKEN_INVALID",
        ),
        (
            "bob's payload under alice's signature",
            format!("{header}.{}.{signature}", bob_parts[1]),
            "TOKEN_INVALID",
        ),
        (
            "a fourth segment",
            format!("{live}.{signature}"),
            "TOKEN_INVALID",
        ),
        (
            "signed with the wrong secret",
            signed(&hs256(), &good_claims, "not-the-secret"),
            "TOKEN_INVALID",
        ),
        (
            "expired an hour ago",
            signed(
                &hs256(),
                &claims(json!({"sub": ALICE.0, "exp": now - 3600})),
                SECRET,
            ),
            "TOKEN_EXPIRED",
        ),
        (
            "nbf an hour ahead",
            signed(
                &hs256(),
                &claims(json!({"sub": ALICE.0, "exp": now + 7200, "nbf": now + 3600})),
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "exp missing",
            signed(
                &hs256(),
                &claims(json!({"sub": ALICE.0, "iat": now})),
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "exp a string",
            signed(
                &hs256(),
                &claims(json!({"sub": ALICE.0, "exp": (now + 300).to_string()})),
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "exp null",
            signed(
                &hs256(),
                &claims(json!({"sub": ALICE.0, "exp": null})),
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "sub missing",
            signed(&hs256(), &claims(json!({"exp": now + 300})), SECRET),
            "TOKEN_INVALID",
        ),
        (
            "sub a number",
            signed(
                &hs256(),
                &claims(json!({"sub": 42, "exp": now + 300})),
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "sub an object",
            signed(
                &hs256(),
                &claims(json!({"sub": {"$ne": null}, "exp": now + 300})),
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "header not base64",
            format!("!!!!.{payload}.{signature}"),
            "TOKEN_INVALID",
        ),
        (
            "header base64 of broken JSON, signed",
            hmac_signed(
                &b64(br#"{"alg":"HS256""#),
                &b64(good_claims.as_bytes()),
                SECRET,
                Algorithm::HS256,
            ),
            "TOKEN_INVALID",
        ),
        (
            "header without alg, signed",
            signed(&json!({"typ": "JWT"}), &good_claims, SECRET),
            "TOKEN_INVALID",
        ),
        (
            "payload not base64, signed",
            hmac_signed(
                &b64(hs256().to_string().as_bytes()),
                "$$$$",
                SECRET,
                Algorithm::HS256,
            ),
            "TOKEN_INVALID",
        ),
        (
            "payload with base64 padding, signed",
            hmac_signed(
                &b64(hs256().to_string().as_bytes()),
                &format!("{}==", b64(good_claims.as_bytes())),
                SECRET,
                Algorithm::HS256,
            ),
            "TOKEN_INVALID",
        ),
        (
            "payload base64 of broken JSON, signed",
            signed(
                &hs256(),
                r#"{"sub":"5f4bff121037e424a17a3ebc","exp":"#,
                SECRET,
            ),
            "TOKEN_INVALID",
        ),
        (
            "payload a JSON array, signed",
            signed(&hs256(), "[1,2,3]", SECRET),
            "TOKEN_INVALID",
        ),
        ("three empty segments", "..".to_string(), "TOKEN_INVALID"),
        (
            "12 KiB of token (over the verifier's limit, under the header limit)",
            format!("{header}.{}.{signature}", "A".repeat(12 * 1024)),
            "TOKEN_INVALID",
        ),
    ]
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused_as_invalid_and_never_forwarded() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    let bobs = h.login(BOB, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for (what, token, code) in hostile_tokens(&h, &live.access_token, &bobs.access_token) {
        assert_ne!(token, live.access_token, "{what}: a different token");
        // A forwarded session route and one the gateway answers itself.
        for (method, path) in [
            ("GET", "/api/account"),
            ("GET", "/api/account/sessions"),
            ("DELETE", "/api/account/sessions"),
            ("POST", "/api/auth/logout"),
        ] {
            let r = h
                .request(method, path)
                .header("authorization", &format!("Bearer {token}"))
                .send()
                .await;
            let what = format!("{what}: {method} {path}");
            assert_refusal(&r, StatusCode::UNAUTHORIZED, code, &what);
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
        }
    }
    assert_eq!(
        upstream_paths_since(&h, before),
        Vec::<String>::new(),
        "no forged token reached the uploader"
    );
    // Nothing was revoked or logged out by the forgeries either.
    assert_eq!(h.sessions(&live.access_token).await.len(), 1);
    assert_still_serving(&h, &live.access_token).await;
}

#[tokio::test]
async fn a_64_kib_token_is_refused_before_anything_is_forwarded() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let token = format!("{}.{}.sig", "A".repeat(32 * 1024), "B".repeat(32 * 1024));
    let request = format!(
        "GET /api/account HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let reply = raw::exchange(h.addr(), request.as_bytes()).await;
    // The head is over `limits.max_header_bytes` (16 KiB): the gateway answers 431 before
    // the token is looked at. Were the limit raised, the verifier's own length check would
    // answer 401 TOKEN_INVALID.
    let [response] = reply.responses.as_slice() else {
        panic!("exactly one answer: {reply:?}");
    };
    match response.status {
        431 => {}
        401 => assert_eq!(
            response.code().as_deref(),
            Some("TOKEN_INVALID"),
            "{response:?}"
        ),
        other => panic!("431 or 401 TOKEN_INVALID, got {other}: {response:?}"),
    }
    assert_eq!(
        upstream_paths_since(&h, before),
        Vec::<String>::new(),
        "nothing forwarded"
    );
    assert_still_serving(&h, &live.access_token).await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused_even_when_both_hold_the_good_token() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let good = format!("Bearer {}", live.access_token);
    for (first, second) in [
        (good.as_str(), good.as_str()),
        (good.as_str(), "Bearer garbage"),
        ("Basic YWxpY2U6cHc=", good.as_str()),
    ] {
        for path in ["/api/account", "/api/account/sessions"] {
            let r = h
                .request("GET", path)
                .header("authorization", first)
                .header("Authorization", second)
                .send()
                .await;
            assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_INVALID", path);
        }
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &live.access_token).await;
}

#[tokio::test]
async fn a_token_anywhere_but_the_authorization_header_is_ignored() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    let t = &live.access_token;
    let before = h.uploader.requests().len();
    let queries = [
        format!("/api/account?access_token={t}"),
        format!("/api/account?token={t}"),
        format!("/api/account?authorization=Bearer%20{t}"),
        format!("/api/account/sessions?access_token={t}"),
    ];
    for path in &queries {
        let r = h.request("GET", path).send().await;
        assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_MISSING", path);
    }
    for (name, value) in [
        ("cookie", format!("access_token={t}; token={t}")),
        ("x-access-token", t.clone()),
        ("proxy-authorization", format!("Bearer {t}")),
    ] {
        let r = h
            .request("GET", "/api/account")
            .header(name, &value)
            .send()
            .await;
        assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_MISSING", name);
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, t).await;
}

#[tokio::test]
async fn an_api_key_is_refused_on_every_session_route() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    let key = h.uploader.api_key(ALICE.0, "Share");
    let before = h.uploader.requests().len();
    for (method, path) in [
        ("GET", "/api/account"),
        ("GET", "/api/account/sessions"),
        ("DELETE", "/api/account/sessions"),
        ("DELETE", "/api/account/sessions/6946b1a27d3c0f9a1e000001"),
        ("POST", "/api/auth/logout"),
        ("PUT", "/api/account/change-password"),
        ("POST", "/api/upload"),
    ] {
        let r = h.request(method, path).token(&key).send().await;
        let what = format!("API key on {method} {path}");
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}");
        // It verifies as a JWT but no session holds it (or, with an issuer configured, its
        // `iss` is refused).
        let code = r.code();
        assert!(
            code == "SESSION_INVALID" || code == "TOKEN_INVALID",
            "{what}: {code}"
        );
        assert_refusal(&r, StatusCode::UNAUTHORIZED, &code, &what);
    }
    // Nor is it a refresh token.
    let r = h
        .request("POST", "/api/auth/refresh")
        .json(json!({ "refresh_token": key }))
        .send()
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "API key as a refresh token"
    );
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    // alice's real session is untouched.
    assert_eq!(h.sessions(&live.access_token).await.len(), 1);
    assert_still_serving(&h, &live.access_token).await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let h = Harness::start().await;
    let live = h.login(ALICE, CHROME_LINUX).await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let r = h
            .request("GET", "/api/account")
            .header("authorization", &format!("{scheme} {}", live.access_token))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scheme}: {:?}", r.body);
        assert_eq!(r.json(), json!({"user": {"_id": ALICE.0}}), "{scheme}");
    }
}
