//! Putting the gateway in front of a running Share (`sessions.adopt_issued_before`): the
//! tokens the uploader issued before the cut-over become sessions on first use, a token of an
//! ended session is never adopted again, and API keys and tokens issued after the instant
//! never are, however a session ends (the sessions command on a stopped gateway's store
//! included). Every test runs on sled and on Redis (a redis-server of its own).

mod support;

use base64::Engine as _;
use http::StatusCode;
use serde_json::{Value, json};
use sessiongate::api::iso_millis;
use sessiongate::sessions::{Clock, SessionId, SystemClock};
use sessiongate::tools::sessions::{Action, SessionsCommand};
use sessiongate_testkit::RedisServer;
use share_stand_in::TokenPair;
use support::*;

#[derive(Clone, Copy)]
enum Store {
    Sled,
    Redis,
}

/// A gateway adopting tokens issued until 30 s ago, and its Redis, if on Redis.
struct Setup {
    h: Harness,
    _redis: Option<RedisServer>,
}

async fn start(store: Store) -> Setup {
    let redis = matches!(store, Store::Redis).then(RedisServer::start);
    let redis_url = redis.as_ref().map(RedisServer::url);
    let instant = iso_millis(SystemClock.now_ms() - 30_000);
    let h = Harness::start_with(|config| {
        config.sessions.adopt_issued_before = Some(instant);
        if let Some(url) = redis_url {
            config.store.backend = "redis".into();
            config.store.redis_url = url;
        }
    })
    .await;
    Setup { h, _redis: redis }
}

/// Tokens the uploader issued to `user` `seconds_ago`, before the gateway stood in front of
/// it (the instant is 30 s ago).
fn issued_earlier(h: &Harness, user: &str, seconds_ago: i64) -> TokenPair {
    h.uploader.advance_clock(-seconds_ago);
    let pair = h.uploader.issue_tokens(user);
    h.uploader.advance_clock(seconds_ago);
    pair
}

/// A numeric claim of a token, in ms.
fn claim_ms(token: &str, name: &str) -> i64 {
    let payload = token.split('.').nth(1).expect("a JWT");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&payload).expect("JSON claims");
    claims[name].as_i64().expect("a number") * 1000
}

async fn get_account(h: &Harness, token: &str) -> StatusCode {
    h.get("/api/account", token).await.status
}

async fn refresh(h: &Harness, refresh_token: &str) -> TestResponse {
    h.request("POST", "/api/auth/refresh")
        .header("user-agent", POSTMAN)
        .json(json!({ "refresh_token": refresh_token }))
        .send()
        .await
}

/// `sessiongate_sessions_created_total{origin}` now.
async fn created(h: &Harness, origin: &str) -> String {
    let text = String::from_utf8(h.admin_get("/metrics").await.body.to_vec()).expect("UTF-8");
    let series = format!("sessiongate_sessions_created_total{{origin=\"{origin}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .to_string()
}

async fn an_access_token_issued_before_is_adopted_on_its_first_use(store: Store) {
    let Setup { h, _redis } = start(store).await;
    let earlier = issued_earlier(&h, ALICE.0, 60);
    let response = h
        .request("GET", "/api/account")
        .token(&earlier.access_token)
        .header("user-agent", CHROME_LINUX)
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(h.upstream_hits("/account"), 1);

    let sessions = h.sessions(&earlier.access_token).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let adopted = &sessions[0];
    assert_eq!(
        adopted["createdAt"],
        iso_millis(claim_ms(&earlier.access_token, "iat"))
    );
    assert_eq!(
        adopted["expireAt"],
        iso_millis(claim_ms(&earlier.access_token, "exp"))
    );
    assert_eq!(adopted["device"]["browser"], "Chrome");
    assert_eq!(
        adopted["accessTokenHash"],
        sha512_hex(&earlier.access_token)
    );
    assert_eq!(adopted["current"], true);
    assert_eq!(created(&h, "adopted").await, "1");
    assert_eq!(created(&h, "login").await, "0");

    // Known now: used again, it is the same session, not another adoption.
    assert_eq!(get_account(&h, &earlier.access_token).await, StatusCode::OK);
    assert_eq!(created(&h, "adopted").await, "1");
}

async fn a_refresh_token_issued_before_is_adopted_from_the_uploaders_answer(store: Store) {
    let Setup { h, _redis } = start(store).await;
    let earlier = issued_earlier(&h, ALICE.0, 60);
    let response = refresh(&h, &earlier.refresh_token).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(h.upstream_hits("/auth/refresh"), 1);
    let body = response.json();
    let access = body["access_token"].as_str().expect("an access token");
    assert_eq!(get_account(&h, access).await, StatusCode::OK);

    let sessions = h.sessions(access).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(
        sessions[0]["createdAt"],
        iso_millis(claim_ms(&earlier.refresh_token, "iat")),
        "dated from the old token"
    );
    assert_eq!(sessions[0]["device"]["browser"], "PostmanRuntime");
    assert_eq!(created(&h, "adopted").await, "1");

    // The old refresh token is now a replaced one: refused, not adopted a second time, and
    // not forwarded.
    assert_eq!(
        refresh(&h, &earlier.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.upstream_hits("/auth/refresh"), 1);
    assert_eq!(h.sessions(access).await.len(), 1);
    assert_eq!(created(&h, "adopted").await, "1");
}

async fn an_adopted_session_once_ended_is_never_adopted_again(store: Store) {
    let Setup { h, _redis } = start(store).await;
    // Adopted by its access token, then revoked by id.
    let first = issued_earlier(&h, ALICE.0, 60);
    assert_eq!(get_account(&h, &first.access_token).await, StatusCode::OK);
    let id = h.sessions(&first.access_token).await[0]["_id"]
        .as_str()
        .expect("an id")
        .to_string();
    let revoked = h
        .request("DELETE", &format!("/api/account/sessions/{id}"))
        .token(&first.access_token)
        .send()
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    assert_eq!(
        get_account(&h, &first.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    // Nor is the refresh token issued with it, which the gateway never saw.
    assert_eq!(
        refresh(&h, &first.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.upstream_hits("/auth/refresh"), 0, "refused here");

    // Adopted by its refresh token, then logged out: neither the old tokens nor the new
    // ones come back.
    let second = issued_earlier(&h, ALICE.0, 50);
    let answer = refresh(&h, &second.refresh_token).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let fresh = answer.json();
    let fresh_access = fresh["access_token"].as_str().expect("an access token");
    let fresh_refresh = fresh["refresh_token"].as_str().expect("a refresh token");
    let logout = h
        .request("POST", "/api/auth/logout")
        .token(fresh_access)
        .send()
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{:?}", logout.body);
    for token in [fresh_access, &second.access_token] {
        assert_eq!(get_account(&h, token).await, StatusCode::UNAUTHORIZED);
    }
    let refreshes = h.upstream_hits("/auth/refresh");
    for token in [fresh_refresh, &second.refresh_token] {
        assert_eq!(refresh(&h, token).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(h.upstream_hits("/auth/refresh"), refreshes, "refused here");
    assert_eq!(created(&h, "adopted").await, "2");
}

async fn ending_every_session_of_a_user_stops_their_older_tokens_being_adopted(store: Store) {
    let Setup { h, _redis } = start(store).await;
    let laptop = issued_earlier(&h, ALICE.0, 60);
    let phone = issued_earlier(&h, ALICE.0, 45);
    let bobs = issued_earlier(&h, BOB.0, 60);
    assert_eq!(get_account(&h, &laptop.access_token).await, StatusCode::OK);
    let all = h
        .request("DELETE", "/api/account/sessions")
        .token(&laptop.access_token)
        .send()
        .await;
    assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);

    // The phone's tokens were never seen, and still are not taken.
    assert_eq!(
        get_account(&h, &laptop.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_account(&h, &phone.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&h, &phone.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.upstream_hits("/auth/refresh"), 0);
    // Another user's are.
    assert_eq!(get_account(&h, &bobs.access_token).await, StatusCode::OK);
    // A login after it works as ever.
    let again = h.login(ALICE, CHROME_LINUX).await;
    assert_eq!(get_account(&h, &again.access_token).await, StatusCode::OK);
}

async fn api_keys_and_tokens_issued_after_the_instant_are_never_adopted(store: Store) {
    let Setup { h, _redis } = start(store).await;
    h.uploader.advance_clock(-60);
    let api_key = h.uploader.api_key(ALICE.0, "Share");
    h.uploader.advance_clock(60);
    assert_eq!(get_account(&h, &api_key).await, StatusCode::UNAUTHORIZED);

    let later = h.uploader.issue_tokens(ALICE.0);
    assert_eq!(
        get_account(&h, &later.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&h, &later.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.upstream_hits("/auth/refresh"), 0);
    assert_eq!(h.upstream_hits("/account"), 0);
    assert_eq!(created(&h, "adopted").await, "0");
}

async fn a_session_adopted_from_its_access_token_gives_way_to_its_refresh(store: Store) {
    let Setup { h, _redis } = start(store).await;
    let earlier = issued_earlier(&h, ALICE.0, 60);
    assert_eq!(get_account(&h, &earlier.access_token).await, StatusCode::OK);
    let answer = refresh(&h, &earlier.refresh_token).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let fresh = answer.json();
    let fresh_access = fresh["access_token"].as_str().expect("an access token");

    // One session for the pair: the refresh's, dated from the pair's `iat`.
    let sessions = h.sessions(fresh_access).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["accessTokenHash"], sha512_hex(fresh_access));
    assert_eq!(
        sessions[0]["createdAt"],
        iso_millis(claim_ms(&earlier.access_token, "iat"))
    );
    assert_eq!(
        get_account(&h, &earlier.access_token).await,
        StatusCode::UNAUTHORIZED
    );
}

/// `sessiongate sessions revoke ... --direct` on the stopped gateway's store.
async fn revoke_directly(h: &Harness, action: Action) {
    let command = SessionsCommand {
        action,
        config: None,
        json: true,
        direct: true,
    };
    let settings = h.config.clone().settings().expect("the config is valid");
    sessiongate::tools::sessions::run(&command, &settings, None)
        .await
        .expect("the revocation is done");
}

async fn a_session_revoked_by_the_sessions_command_is_never_adopted_again(store: Store) {
    let Setup { mut h, _redis } = start(store).await;
    let laptop = issued_earlier(&h, ALICE.0, 60);
    let phone = issued_earlier(&h, ALICE.0, 45);
    assert_eq!(get_account(&h, &laptop.access_token).await, StatusCode::OK);
    assert_eq!(get_account(&h, &phone.access_token).await, StatusCode::OK);
    let sessions = h.sessions(&laptop.access_token).await;
    let laptops = listed_session(&sessions, &laptop.access_token);
    let laptop_id = SessionId::parse(laptops["_id"].as_str().expect("an id")).expect("an id");

    // One session by id, with the gateway stopped: its old tokens stay refused.
    h.stop().await;
    revoke_directly(&h, Action::RevokeSession(laptop_id)).await;
    h.restart().await;
    assert_eq!(
        get_account(&h, &laptop.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&h, &laptop.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_account(&h, &phone.access_token).await, StatusCode::OK);

    // Every session of the user: the phone's too, and a token of theirs never seen.
    let unseen = issued_earlier(&h, ALICE.0, 30);
    h.stop().await;
    revoke_directly(&h, Action::RevokeUser(ALICE.0.into())).await;
    h.restart().await;
    for token in [&phone.access_token, &unseen.access_token] {
        assert_eq!(get_account(&h, token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        refresh(&h, &phone.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.upstream_hits("/auth/refresh"), 0);
    assert_eq!(created(&h, "adopted").await, "0", "none since the restart");
}

/// Each scenario, as one test on sled and one on Redis.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod on_sled {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Store::Sled).await;
            })*
        }
        mod on_redis {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Store::Redis).await;
            })*
        }
    };
}

on_both_stores!(
    an_access_token_issued_before_is_adopted_on_its_first_use,
    a_refresh_token_issued_before_is_adopted_from_the_uploaders_answer,
    an_adopted_session_once_ended_is_never_adopted_again,
    ending_every_session_of_a_user_stops_their_older_tokens_being_adopted,
    api_keys_and_tokens_issued_after_the_instant_are_never_adopted,
    a_session_adopted_from_its_access_token_gives_way_to_its_refresh,
    a_session_revoked_by_the_sessions_command_is_never_adopted_again,
);

#[tokio::test]
async fn without_the_setting_a_token_the_gateway_never_saw_is_refused() {
    let h = Harness::start().await;
    let earlier = issued_earlier(&h, ALICE.0, 60);
    assert_eq!(
        get_account(&h, &earlier.access_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&h, &earlier.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.upstream_hits("/auth/refresh"), 0);
}
