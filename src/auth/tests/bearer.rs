//! `bearer_token`: the token of the one `Authorization: Bearer` header, trimmed; missing for
//! no header, another scheme or an empty token; invalid for two headers or non-ASCII.

use super::*;

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
fn only_a_space_separates_the_scheme() {
    assert_eq!(
        bearer_token(&headers(&["Bearer\ttok"])),
        Err(TokenRejection::Missing)
    );
    assert_eq!(bearer_token(&headers(&["Bearer \ttok\t"])), Ok("tok"));
    assert_eq!(bearer_token(&headers(&["Bearer a b"])), Ok("a b"));
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
    // Anywhere in the value, the scheme included, and before any other verdict.
    for value in [&b"B\xe9arer tok"[..], b"Basic \xff", b"\x80"] {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(value).expect("obs-text is a valid value"),
        );
        assert_eq!(
            bearer_token(&headers),
            Err(TokenRejection::Invalid),
            "{value:?}"
        );
    }
}
