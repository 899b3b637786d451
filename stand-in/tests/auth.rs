//! Login, two-factor, refresh, logout and password change.

mod common;

use common::{ALICE, CAROL, Client, keys, payload};
use http::{Method, StatusCode};
use serde_json::json;
use share_stand_in::{StandIn, StandInConfig};

const SECRET: &str = "stand-in-secret";

#[tokio::test]
async fn login_with_json_gives_uploader_tokens() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let reply = client.login("alice@example.com", "alice-password").await;

    assert_eq!(reply["twoFactor"], json!(false));
    let access = payload(reply["access_token"].as_str().unwrap(), SECRET);
    let refresh = payload(reply["refresh_token"].as_str().unwrap(), SECRET);
    assert_eq!(keys(&access), ["exp", "iat", "sub"]);
    assert_eq!(keys(&refresh), ["exp", "iat", "sub"]);
    assert_eq!(access["sub"], ALICE);
    assert_eq!(refresh["sub"], ALICE);
    let lifetime = |p: &serde_json::Value| p["exp"].as_i64().unwrap() - p["iat"].as_i64().unwrap();
    assert_eq!(lifetime(&access), 300);
    assert_eq!(lifetime(&refresh), 14 * 24 * 3600);
    assert!((access["iat"].as_i64().unwrap() - stand_in.now()).abs() <= 1);

    let account = client.get("/account", reply["access_token"].as_str()).await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.json(), json!({"user": {"_id": ALICE}}));
}

#[tokio::test]
async fn login_with_a_form_works_too() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let fields = [("email", "bob@example.com"), ("password", "bob-password")];
    let reply = client.post_form("/auth/login", &fields).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = reply.json();
    assert_eq!(reply["twoFactor"], json!(false));
    let access = payload(reply["access_token"].as_str().unwrap(), SECRET);
    assert_eq!(access["sub"], "5f4bff121037e424a17a3ebd");
}

#[tokio::test]
async fn bad_credentials_are_401_unauthorized() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    for body in [
        json!({"email": "alice@example.com", "password": "wrong"}),
        json!({"email": "nobody@example.com", "password": "alice-password"}),
        json!({"email": "alice@example.com"}),
        json!({}),
    ] {
        let reply = client.post_json("/auth/login", body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.text(), "Unauthorized");
    }
    let fields = [("email", "alice@example.com"), ("password", "nope")];
    let reply = client.post_form("/auth/login", &fields).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_factor_login_needs_the_code() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let challenge = client.login("carol@example.com", "carol-password").await;
    assert_eq!(challenge["code"], "TWO_FACTOR_REQUIRED");
    assert_eq!(challenge["twoFactor"], json!(true));
    assert!(challenge.get("access_token").is_none());
    let token = challenge["token"].as_str().unwrap();

    // The challenge is not a session token.
    let account = client.get("/account", Some(token)).await;
    assert_eq!(account.status, StatusCode::UNAUTHORIZED);

    let wrong = json!({"token": token, "code": "654321"});
    let reply = client.post_json("/auth/two-factor", wrong).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let forged = json!({"token": "not-a-token", "code": "123456"});
    let reply = client.post_json("/auth/two-factor", forged).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let fields = [("token", token), ("code", "123456")];
    let reply = client.post_form("/auth/two-factor", &fields).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = reply.json();
    assert_eq!(keys(&reply), ["access_token", "refresh_token"]);
    assert_eq!(
        payload(reply["access_token"].as_str().unwrap(), SECRET)["sub"],
        CAROL
    );
}

#[tokio::test]
async fn refresh_gives_fresh_tokens_for_a_valid_refresh_token() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let login = stand_in.issue_tokens(ALICE);
    stand_in.advance_clock(1);

    let body = json!({"refresh_token": login.refresh_token});
    let reply = client.post_json("/auth/refresh", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = reply.json();
    assert_eq!(keys(&reply), ["access_token", "refresh_token"]);
    assert_ne!(reply["refresh_token"], login.refresh_token.as_str());
    assert_eq!(
        payload(reply["access_token"].as_str().unwrap(), SECRET)["sub"],
        ALICE
    );

    let fields = [("refresh_token", login.refresh_token.as_str())];
    assert_eq!(
        client.post_form("/auth/refresh", &fields).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_refuses_bad_expired_and_foreign_tokens() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let other = StandIn::start(StandInConfig {
        secret: "another-secret".into(),
        ..StandInConfig::default()
    })
    .await;
    let client = Client::new(&stand_in);
    let refresh =
        |token: String| client.post_json("/auth/refresh", json!({"refresh_token": token}));

    assert_eq!(
        refresh("garbage".into()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let foreign = other.issue_tokens(ALICE).refresh_token;
    assert_eq!(refresh(foreign).await.status, StatusCode::UNAUTHORIZED);
    let api_key = stand_in.api_key(ALICE, "Share");
    assert_eq!(refresh(api_key).await.status, StatusCode::UNAUTHORIZED);
    let missing = client.post_json("/auth/refresh", json!({})).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);

    let tokens = stand_in.issue_tokens(ALICE);
    stand_in.advance_clock(14 * 24 * 3600);
    let reply = refresh(tokens.refresh_token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.text(), "Unauthorized");
}

#[tokio::test]
async fn access_tokens_expire_by_the_stand_in_clock() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let tokens = stand_in.issue_tokens(ALICE);
    stand_in.advance_clock(290);
    let ok = client.get("/account", Some(&tokens.access_token)).await;
    assert_eq!(ok.status, StatusCode::OK);
    stand_in.advance_clock(10);
    let expired = client.get("/account", Some(&tokens.access_token)).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_needs_a_valid_bearer_token() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let tokens = stand_in.issue_tokens(ALICE);
    let bearer = format!("Bearer {}", tokens.access_token);
    let reply = client
        .send(
            Method::POST,
            "/auth/logout",
            &[("authorization", &bearer)],
            common::empty(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"code": "LOGGED_OUT", "error": "You are now logged out."})
    );
    let anonymous = client
        .send(Method::POST, "/auth/logout", &[], common::empty())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let api_key = format!("Bearer {}", stand_in.api_key(ALICE, "Share"));
    let headers = [("authorization", api_key.as_str())];
    let reply = client
        .send(Method::POST, "/auth/logout", &headers, common::empty())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn change_password_checks_the_old_one_and_keeps_the_new_one() {
    let stand_in = StandIn::start(StandInConfig::default()).await;
    let client = Client::new(&stand_in);
    let bearer = format!("Bearer {}", stand_in.issue_tokens(ALICE).access_token);
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let change = |old: &str| {
        let body = json!({"oldPassword": old, "newPassword": "new-password"}).to_string();
        client.send(
            Method::PUT,
            "/account/change-password",
            &headers,
            common::full(body),
        )
    };

    assert_eq!(change("wrong").await.status, StatusCode::UNAUTHORIZED);
    let reply = change("alice-password").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"code": "PASSWORD_CHANGED", "error": "Password changed."})
    );

    let old = json!({"email": "alice@example.com", "password": "alice-password"});
    assert_eq!(
        client.post_json("/auth/login", old).await.status,
        StatusCode::UNAUTHORIZED
    );
    client.login("alice@example.com", "new-password").await;
}
