//! The claims: `exp` is required and a number, `sub` is required and a string.

use super::*;

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
