//! The issuer: required and matched exactly when configured, anything or nothing accepted
//! when not.

use super::*;

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
