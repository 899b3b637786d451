//! Two replicas on one redis-server: a login through A is usable through B at once, a
//! rotation through A is seen by B, and a revocation answered 2xx by A is refused by B on
//! B's very next request, in every way a session ends.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::json;
use sessiongate_testkit::RedisServer;

use crate::fleet::{Fleet, Replica, SharedStore, tokens, user};

/// Rounds of "change through A, then ask B", dealt round the five ways a session ends.
const ROUNDS: usize = 2_000;

/// The ways a session ends, one per round in turn.
#[derive(Debug, Clone, Copy)]
enum Ending {
    RevokeOne,
    RevokeAll,
    Logout,
    PasswordChange,
    RefreshReuse,
}

const ENDINGS: [Ending; 5] = [
    Ending::RevokeOne,
    Ending::RevokeAll,
    Ending::Logout,
    Ending::PasswordChange,
    Ending::RefreshReuse,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_replica_is_refused_by_the_other_on_its_next_request() {
    let redis = RedisServer::start();
    let url = redis.url();
    let fleet = Fleet::start(
        SharedStore {
            url: &url,
            cluster: false,
        },
        2,
        ROUNDS,
    )
    .await;
    let (a, b) = (&fleet.replicas[0], &fleet.replicas[1]);
    let started = Instant::now();
    let mut accepted_after_ack = Vec::new();
    let mut asked = 0;
    for round in 0..ROUNDS {
        let ending = ENDINGS[round % ENDINGS.len()];
        // Each round its own user, so that no two rounds' tokens are alike.
        let ended = end_through_a(&fleet, a, b, round, ending).await;
        for token in ended {
            asked += 1;
            let status = b.account(&token).await;
            if status != StatusCode::UNAUTHORIZED {
                accepted_after_ack.push((round, ending, status));
            }
        }
    }
    assert!(
        accepted_after_ack.is_empty(),
        "{} of {asked} requests through B accepted after A acknowledged the end of their \
         session: {:?}",
        accepted_after_ack.len(),
        &accepted_after_ack[..accepted_after_ack.len().min(10)]
    );
    assert!(asked >= ROUNDS, "{asked} checks");
    eprintln!(
        "{ROUNDS} rounds, {asked} requests through B after an end through A, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Logs user `n` in through A (usable through B at once), ends the session(s) through A in
/// the way `ending` says, and returns the access tokens B must now refuse.
async fn end_through_a(
    fleet: &Fleet,
    a: &Replica,
    b: &Replica,
    n: usize,
    ending: Ending,
) -> Vec<String> {
    let (access, refresh) = a.login(n).await;
    assert_eq!(
        b.account(&access).await,
        StatusCode::OK,
        "round {n}: a login through A, through B"
    );
    match ending {
        Ending::RevokeOne => {
            let listed = a
                .call(Method::GET, "/api/account/sessions", Some(&access), None)
                .await;
            let id = listed.body["sessions"][0]["_id"]
                .as_str()
                .expect("a session id")
                .to_string();
            let path = format!("/api/account/sessions/{id}");
            let revoked = a.call(Method::DELETE, &path, Some(&access), None).await;
            assert_eq!(revoked.code(), "SESSION_REVOKED", "round {n}");
            vec![access]
        }
        Ending::RevokeAll => {
            let other = second_session(fleet, a, b, n).await;
            let revoked = a
                .call(Method::DELETE, "/api/account/sessions", Some(&access), None)
                .await;
            assert_eq!(revoked.code(), "ALL_SESSIONS_REVOKE", "round {n}");
            vec![access, other]
        }
        Ending::Logout => {
            let out = a
                .call(Method::POST, "/api/auth/logout", Some(&access), None)
                .await;
            assert_eq!(out.status, StatusCode::OK, "round {n}: {}", out.body);
            vec![access]
        }
        Ending::PasswordChange => {
            let other = second_session(fleet, a, b, n).await;
            let user = user(n);
            let body = json!({"oldPassword": user.password, "newPassword": "changed-password"});
            let changed = a
                .call(
                    Method::PUT,
                    "/api/account/change-password",
                    Some(&access),
                    Some(body),
                )
                .await;
            assert_eq!(changed.code(), "PASSWORD_CHANGED", "round {n}");
            vec![access, other]
        }
        Ending::RefreshReuse => {
            // A later second, so that the refresh gives other tokens than the login.
            fleet.uploader.advance_clock(1);
            let body = json!({ "refresh_token": refresh });
            let rotated = a
                .call(Method::POST, "/api/auth/refresh", None, Some(body.clone()))
                .await;
            assert_eq!(
                rotated.status,
                StatusCode::OK,
                "round {n}: {}",
                rotated.body
            );
            let (new_access, _) = tokens(&rotated);
            // The rotation through A, seen by B: the new token passes, the old one not.
            assert_eq!(b.account(&new_access).await, StatusCode::OK, "round {n}");
            assert_eq!(
                b.account(&access).await,
                StatusCode::UNAUTHORIZED,
                "round {n}"
            );
            // The replaced refresh token again, past the (zero) grace: presumed stolen, so A
            // revokes the whole session.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let reused = a
                .call(Method::POST, "/api/auth/refresh", None, Some(body))
                .await;
            assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "round {n}");
            vec![new_access]
        }
    }
}

/// A second session of user `n` (a login a second later, so its tokens differ), checked
/// through B.
async fn second_session(fleet: &Fleet, a: &Replica, b: &Replica, n: usize) -> String {
    fleet.uploader.advance_clock(1);
    let (other, _) = a.login(n).await;
    assert_eq!(
        b.account(&other).await,
        StatusCode::OK,
        "round {n}: the second login"
    );
    other
}
