//! The signature and the algorithm: another secret, an altered or stripped signature, an
//! altered payload, `alg` none, another HMAC, the RS256 key confusion; each algorithm verifies
//! its own tokens only, whichever order the header's fields are in.

use super::*;

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
