//! Token reading and verification: the one valid token verifies, and no damage to it, no
//! re-spelling of its signature, no arbitrary string or bytes does; `bearer_token` never
//! panics and gives back a trimmed part of the header.

use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;
use sessiongate::auth::{TokenRejection, TokenVerifier, bearer_token};

const SECRET: &[u8] = b"property-test-secret";
const NOW_MS: i64 = 1_700_000_000_000;

fn verifier() -> TokenVerifier {
    TokenVerifier::new(SECRET, Algorithm::HS256, 5, None)
}

/// A token as the uploader issues it, valid at [`NOW_MS`].
fn valid_token() -> String {
    let now = NOW_MS / 1000;
    let claims = json!({"sub": "5f4bff121037e424a17a3ebc", "iat": now, "exp": now + 300});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("signs")
}

/// One way to damage a token.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the character at this position (modulo the length).
    Replace(usize, char),
    /// Replace one of the last few characters (where base64's unused bits live).
    ReplaceNearEnd(usize, char),
    /// Insert a character.
    Insert(usize, char),
    /// Delete a character.
    Delete(usize),
    /// Keep only this many characters.
    Truncate(usize),
    /// Repeat one of the three segments in place (`a.b.b.c`).
    DuplicateSegment(usize),
    /// Swap two segments.
    SwapSegments(usize, usize),
}

fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => select(vec!['.', '=', '+', '/', ' ', '\u{e9}']),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), token_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (0usize..4, token_char()).prop_map(|(i, c)| Mutation::ReplaceNearEnd(i, c)),
        (any::<usize>(), token_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (0usize..3).prop_map(Mutation::DuplicateSegment),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let len = chars.len();
    match *mutation {
        Mutation::Replace(i, c) => chars[i % len] = c,
        Mutation::ReplaceNearEnd(i, c) => chars[len - 1 - i % len] = c,
        Mutation::Insert(i, c) => chars.insert(i % (len + 1), c),
        Mutation::Delete(i) => {
            chars.remove(i % len);
        }
        Mutation::Truncate(n) => chars.truncate(n % len),
        Mutation::DuplicateSegment(s) => {
            let mut segments: Vec<&str> = token.split('.').collect();
            let s = s % segments.len();
            let segment = segments[s];
            segments.insert(s, segment);
            return segments.join(".");
        }
        Mutation::SwapSegments(a, b) => {
            let mut segments: Vec<&str> = token.split('.').collect();
            let n = segments.len();
            segments.swap(a % n, b % n);
            return segments.join(".");
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_valid_token_verifies() {
    let claims = verifier().verify(&valid_token(), NOW_MS).expect("verifies");
    assert_eq!(claims.sub, "5f4bff121037e424a17a3ebc");
}

#[test]
fn a_signature_with_other_unused_trailing_bits_does_not_verify() {
    // The 43-character signature's last character carries 2 unused bits; a lenient base64
    // decoder would accept the re-spelled signature, giving a second valid spelling (and a
    // second token hash) of one token.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let token = valid_token();
    let last = token.chars().last().expect("non-empty");
    let index = ALPHABET.find(last).expect("base64url");
    for other in 1..4 {
        let respelled = ALPHABET.as_bytes()[index ^ other] as char;
        let mutated = format!("{}{respelled}", &token[..token.len() - 1]);
        assert_eq!(
            verifier().verify(&mutated, NOW_MS).map(|c| c.sub),
            Err(TokenRejection::Invalid),
            "{mutated}"
        );
    }
}

proptest! {
    #[test]
    fn mutated_tokens_never_verify(mutations in prop::collection::vec(mutation(), 1..4)) {
        let original = valid_token();
        let mut token = original.clone();
        for mutation in &mutations {
            token = apply(&token, mutation);
            if token.is_empty() {
                break;
            }
        }
        let verdict = verifier().verify(&token, NOW_MS);
        if token == original {
            prop_assert!(verdict.is_ok());
        } else {
            prop_assert!(verdict.is_err(), "{token:?} verified after {mutations:?}");
        }
    }

    #[test]
    fn arbitrary_strings_never_verify(
        text in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_.-]{0,300}",
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,50}",
        ]
    ) {
        prop_assert!(verifier().verify(&text, NOW_MS).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_verify(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verifier().verify(&text, NOW_MS).is_err());
    }

    #[test]
    fn bearer_token_never_panics_and_returns_a_trimmed_part_of_the_value(
        values in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..80),
                "(Bearer|bearer|BEARER|Basic|)[ \t]{0,3}[ -~]{0,40}".prop_map(String::into_bytes),
            ],
            0..3,
        )
    ) {
        let mut headers = HeaderMap::new();
        for value in &values {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(http::header::AUTHORIZATION, value);
            }
        }
        let count = headers.get_all(http::header::AUTHORIZATION).iter().count();
        match bearer_token(&headers) {
            Ok(token) => {
                prop_assert_eq!(count, 1, "one header only");
                prop_assert!(!token.is_empty());
                prop_assert_eq!(token, token.trim());
                let value = headers[http::header::AUTHORIZATION].to_str().unwrap_or_default();
                let (scheme, rest) = value.split_once(' ').unwrap_or(("", ""));
                prop_assert!(scheme.eq_ignore_ascii_case("bearer"), "{value:?}");
                prop_assert_eq!(rest.trim(), token);
            }
            Err(TokenRejection::Missing) => prop_assert!(count <= 1),
            Err(TokenRejection::Invalid) => {}
            Err(other) => prop_assert!(false, "bearer_token returned {other:?}"),
        }
        if count >= 2 {
            prop_assert_eq!(bearer_token(&headers), Err(TokenRejection::Invalid));
        }
    }
}
