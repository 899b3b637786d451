//! Time: `exp` and `nbf` within and beyond the leeway, judged by the given now and not the
//! system clock.

use super::*;

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
