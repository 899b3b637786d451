//! Malformed tokens: parts that are not base64url or not JSON objects, a header without an
//! algorithm, not three parts, longer than the limit.

use super::*;

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
