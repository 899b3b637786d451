//! The identity headers: a session route carries the caller's user and session in place of
//! whatever the client sent; public and login routes carry none.

use http::StatusCode;
use serde_json::json;

use crate::recorded::{count, only_request_since};
use crate::support::*;

#[tokio::test]
async fn a_session_route_carries_the_callers_user_and_session() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let sessions = h.sessions(&tokens.access_token).await;
    assert_eq!(sessions.len(), 1);
    let session_id = sessions[0]["_id"].as_str().expect("_id").to_string();

    let before = h.uploader.requests().len();
    let response = h
        .request("GET", "/api/account")
        .token(&tokens.access_token)
        .header("x-sessiongate-user", "someone-else")
        .header("x-sessiongate-session", "000000000000000000000000")
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, before);
    assert_eq!(forwarded.header("x-sessiongate-user"), Some(ALICE.0));
    assert_eq!(
        forwarded.header("x-sessiongate-session"),
        Some(session_id.as_str())
    );
    // Replaced, not added to: the client's values are gone.
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 1);
    assert_eq!(count(&forwarded, "x-sessiongate-session"), 1);
    // The uploader still checks its own token.
    assert_eq!(
        forwarded.header("authorization"),
        Some(format!("Bearer {}", tokens.access_token).as_str())
    );
}

/// A connection remembers the identity values it last sent: each request still carries its
/// own caller's, whoever came before it on the connection.
#[tokio::test]
async fn callers_taking_turns_on_one_connection_are_each_named() {
    let h = Harness::start().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let alice_again = h.login(ALICE, CHROME_LINUX).await;
    let bob = h.login(BOB, CHROME_LINUX).await;
    // Each token's session id, from the listing (the entry with its token's hash).
    let mut session_of = std::collections::HashMap::new();
    for tokens in [&alice, &alice_again, &bob] {
        let sessions = h.sessions(&tokens.access_token).await;
        let mine = listed_session(&sessions, &tokens.access_token);
        let id = mine["_id"].as_str().expect("an _id").to_string();
        session_of.insert(tokens.access_token.clone(), id);
    }
    assert_ne!(
        session_of[&alice.access_token], session_of[&alice_again.access_token],
        "two sessions of alice"
    );
    let mut connection = h.connect().await;
    for (tokens, user) in [
        (&alice, ALICE.0),
        (&alice, ALICE.0),
        (&bob, BOB.0),
        (&alice_again, ALICE.0),
        (&alice, ALICE.0),
        (&bob, BOB.0),
    ] {
        let before = h.uploader.requests().len();
        let r = connection
            .get(&h, "/api/account", &tokens.access_token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let forwarded = only_request_since(&h, before);
        assert_eq!(forwarded.header("x-sessiongate-user"), Some(user));
        assert_eq!(
            forwarded.header("x-sessiongate-session"),
            Some(session_of[&tokens.access_token].as_str())
        );
    }
}

#[tokio::test]
async fn client_sent_identity_headers_are_removed_on_public_and_login_routes() {
    let h = Harness::start().await;
    let forged = [
        ("x-sessiongate-user", "someone-else"),
        ("x-sessiongate-session", "000000000000000000000000"),
    ];

    let mut register = h
        .request("POST", "/api/auth/register")
        .json(json!({"email": "eve@example.com", "password": "pw"}));
    for (name, value) in forged {
        register = register.header(name, value);
    }
    let response = register.send().await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, 0);
    assert_eq!(forwarded.path_and_query, "/auth/register");
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 0, "{forwarded:?}");
    assert_eq!(
        count(&forwarded, "x-sessiongate-session"),
        0,
        "{forwarded:?}"
    );

    let mut login = h
        .request("POST", "/api/auth/login")
        .json(json!({"email": ALICE.1, "password": ALICE.2}));
    for (name, value) in forged {
        login = login.header(name, value);
    }
    let response = login.send().await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let forwarded = only_request_since(&h, 1);
    assert_eq!(forwarded.path_and_query, "/auth/login");
    assert_eq!(count(&forwarded, "x-sessiongate-user"), 0, "{forwarded:?}");
    assert_eq!(
        count(&forwarded, "x-sessiongate-session"),
        0,
        "{forwarded:?}"
    );
}
