//! Token shapes: identical within a second, `iss` only with an issuer, API keys.

mod common;

use common::{ALICE, Client, keys, payload, raw_payload};
use share_stand_in::{StandIn, StandInConfig};

#[tokio::test]
async fn logins_in_the_same_second_give_identical_tokens() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    // Retry if the second ticked between the two logins.
    for _ in 0..5 {
        let before = stand_in.now();
        let first = client.login("alice@example.com", "alice-password").await;
        let second = client.login("alice@example.com", "alice-password").await;
        let issued = stand_in.issue_tokens(ALICE);
        if stand_in.now() != before {
            continue;
        }
        assert_eq!(first, second);
        assert_eq!(first["access_token"], issued.access_token.as_str());
        assert_eq!(first["refresh_token"], issued.refresh_token.as_str());
        stand_in.advance_clock(1);
        let third = client.login("alice@example.com", "alice-password").await;
        assert_ne!(third["access_token"], first["access_token"]);
        assert_ne!(third["refresh_token"], first["refresh_token"]);
        return;
    }
    panic!("the clock ticked during every attempt");
}

#[tokio::test]
async fn advance_clock_moves_iat_and_exp() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let before = stand_in.now();
    stand_in.advance_clock(3600);
    let after = stand_in.now();
    assert!((3600..=3601).contains(&(after - before)));
    let tokens = stand_in.issue_tokens(ALICE);
    // Verification of `exp` uses the real clock here, which is an hour behind: still valid.
    let access = payload(&tokens.access_token, "stand-in-secret");
    assert!(access["iat"].as_i64().unwrap() >= after);
    assert_eq!(
        access["exp"].as_i64().unwrap(),
        access["iat"].as_i64().unwrap() + 300
    );
}

#[tokio::test]
async fn tokens_have_no_iss_without_an_issuer() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let tokens = stand_in.issue_tokens(ALICE);
    for token in [&tokens.access_token, &tokens.refresh_token] {
        assert_eq!(
            keys(&payload(token, "stand-in-secret")),
            ["exp", "iat", "sub"]
        );
        let prefix = format!(r#"{{"sub":"{ALICE}","iat":"#);
        assert!(
            raw_payload(token).starts_with(&prefix),
            "{}",
            raw_payload(token)
        );
    }
}

#[tokio::test]
async fn tokens_carry_the_issuer_when_set() {
    let config = StandInConfig {
        secret: "s3cret".into(),
        issuer: Some("https://share.example".into()),
        ..StandInConfig::default()
    };
    let stand_in = StandIn::start(config).await;
    let client = Client::new(&stand_in);
    let reply = client.login("alice@example.com", "alice-password").await;
    for name in ["access_token", "refresh_token"] {
        let claims = payload(reply[name].as_str().unwrap(), "s3cret");
        assert_eq!(keys(&claims), ["exp", "iat", "iss", "sub"]);
        assert_eq!(claims["iss"], "https://share.example");
    }
    // Claims in the uploader's order: sub, iss, iat, exp.
    let access = stand_in.issue_tokens(ALICE).access_token;
    let claims = payload(&access, "s3cret");
    let expected = format!(
        r#"{{"sub":"{ALICE}","iss":"https://share.example","iat":{},"exp":{}}}"#,
        claims["iat"], claims["exp"]
    );
    assert_eq!(raw_payload(&access), expected);
}

#[tokio::test]
async fn api_keys_name_the_site_and_live_a_day() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let key = stand_in.api_key(ALICE, "Share");
    let claims = payload(&key, "stand-in-secret");
    assert_eq!(claims["iss"], "Share 3rd-party API");
    assert_eq!(claims["sub"], ALICE);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 24 * 3600);
}
