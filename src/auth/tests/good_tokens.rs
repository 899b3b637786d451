//! Good tokens verify and yield their claims; the hand-built tokens the malformed cases start
//! from are sound.

use super::*;

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
