//! The operators' session routes on the admin listener (`/admin/...`): listing a user's
//! sessions, revoking one by id or all of a user's, counting. A revocation is refused on the
//! main listener at the session's next request, counted as `reason="admin"` and logged with
//! the operator's request id, never a token. (The refusals: `session_refusals`.)

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use http::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

use crate::scrape::{REVOKED, scrape};
use crate::support::*;

/// The admin token of these tests' gateways.
pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-tests-4f1c9e2a7b3d5e6f";

/// A gateway whose admin token is in a file (with a trailing newline, as editors write it),
/// and the directory holding the file.
pub(crate) async fn start_with_admin_token() -> (Harness, TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("admin_token");
    std::fs::write(&file, format!("{ADMIN_TOKEN}\n")).expect("write the token file");
    let h = Harness::start_with(|config| config.admin.token_file = Some(file)).await;
    (h, dir)
}

/// `method path` on the admin listener with the admin token.
pub(crate) async fn admin(h: &Harness, method: &str, path: &str) -> TestResponse {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    admin_call(h.admin_url(path), method, &[("authorization", &bearer)]).await
}

pub(crate) fn ids(listing: &Value) -> Vec<String> {
    listing["sessions"]
        .as_array()
        .expect("a sessions array")
        .iter()
        .map(|s| s["_id"].as_str().expect("an _id").to_string())
        .collect()
}

pub(crate) async fn status_of(h: &Harness, token: &str) -> StatusCode {
    h.get("/api/account", token).await.status
}

#[tokio::test]
async fn an_operator_lists_a_users_live_sessions_oldest_first() {
    let (h, _dir) = start_with_admin_token().await;
    let first = h.login(ALICE, CHROME_LINUX).await;
    let second = h.login(ALICE, POSTMAN).await;
    let bob = h.login(BOB, CHROME_LINUX).await;
    // Two minutes on, alice's first session is used: its lastActiveAt moves on.
    h.clock.advance_seconds(120);
    assert_eq!(status_of(&h, &first.access_token).await, StatusCode::OK);
    let own = h
        .get("/api/account/sessions", &first.access_token)
        .await
        .json();

    let r = admin(&h, "GET", &format!("/admin/users/{}/sessions", ALICE.0)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let listing = r.json();
    assert_eq!(listing["user"], ALICE.0);
    assert_eq!(listing["total"], 2);
    assert_eq!(
        ids(&listing),
        ids(&own),
        "the user's own listing, in its order"
    );
    let sessions = listing["sessions"].as_array().expect("sessions");
    assert!(sessions[0]["createdAt"].as_str() < sessions[1]["createdAt"].as_str());
    assert_eq!(sessions[0]["device"]["browser"], "Chrome");
    assert_eq!(sessions[1]["device"]["browser"], "PostmanRuntime");
    assert_eq!(
        sessions[0]["accessTokenHash"],
        sha512_hex(&first.access_token)
    );
    assert_eq!(
        sessions[1]["accessTokenHash"],
        sha512_hex(&second.access_token)
    );
    // The fields of the user listing but `current`; no refresh-token hash.
    let keys: Vec<&str> = sessions[0]
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "device",
            "location",
            "_id",
            "expireAt",
            "createdAt",
            "lastActiveAt",
            "accessTokenHash"
        ]
    );
    // lastActiveAt as in the user's own listing: the use two minutes on, noted in memory.
    for (mine, theirs) in own["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .zip(sessions)
    {
        assert_eq!(
            mine["lastActiveAt"], theirs["lastActiveAt"],
            "{own} {listing}"
        );
    }
    assert!(sessions[0]["lastActiveAt"].as_str() > sessions[0]["createdAt"].as_str());
    assert_eq!(sessions[1]["lastActiveAt"], sessions[1]["createdAt"]);
    // bob's session is not alice's.
    let bobs = ids(
        &admin(&h, "GET", &format!("/admin/users/{}/sessions", BOB.0))
            .await
            .json(),
    );
    assert_eq!(bobs.len(), 1);
    assert!(!ids(&listing).contains(&bobs[0]));
    assert_eq!(status_of(&h, &bob.access_token).await, StatusCode::OK);
    // A percent-encoded user id is the same user; one without sessions has none.
    let encoded = format!(
        "/admin/users/{}%{:02x}/sessions",
        &ALICE.0[..23],
        ALICE.0.as_bytes()[23]
    );
    assert_eq!(ids(&admin(&h, "GET", &encoded).await.json()), ids(&listing));
    let nobody = admin(&h, "GET", "/admin/users/nobody@example.com/sessions").await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert_eq!(nobody.json()["total"], 0);
    assert_eq!(
        h.uploader
            .requests()
            .iter()
            .filter(|r| r.path_and_query.starts_with("/admin"))
            .count(),
        0
    );
}

#[tokio::test]
async fn a_session_revoked_by_id_is_refused_at_its_next_request_and_only_it() {
    let (h, _dir) = start_with_admin_token().await;
    let first = h.login(ALICE, CHROME_LINUX).await;
    let second = h.login(ALICE, POSTMAN).await;
    let bob = h.login(BOB, CHROME_LINUX).await;
    // A kept-alive connection whose token has been checked once already.
    let mut connection = h.connect().await;
    let r = connection
        .get(&h, "/api/account", &first.access_token)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = ids(&h
        .get("/api/account/sessions", &first.access_token)
        .await
        .json())[0]
        .clone();

    // Upper case is the same id.
    let r = admin(
        &h,
        "DELETE",
        &format!("/admin/sessions/{}", id.to_uppercase()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["code"], "SESSION_REVOKED");
    assert_eq!(body["user"], ALICE.0);
    assert_eq!(body["session"], id);

    let r = connection
        .get(&h, "/api/account", &first.access_token)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "SESSION_INVALID");
    assert_eq!(status_of(&h, &second.access_token).await, StatusCode::OK);
    assert_eq!(status_of(&h, &bob.access_token).await, StatusCode::OK);
    assert_eq!(h.stored_sessions(), 2);

    // Gone: a second revocation, and an id nobody holds, are 404.
    for path in [
        format!("/admin/sessions/{id}"),
        "/admin/sessions/0123456789abcdef01234567".into(),
    ] {
        let r = admin(&h, "DELETE", &path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.code(), "SESSION_NOT_FOUND", "{path}");
    }
    assert_eq!(h.stored_sessions(), 2);
}

#[tokio::test]
async fn revoking_a_user_ends_every_session_of_theirs_and_no_one_elses() {
    let (h, _dir) = start_with_admin_token().await;
    assert_eq!(
        admin(&h, "GET", "/admin/sessions/count").await.json(),
        serde_json::json!({"sessions": 0})
    );
    let alices = [
        h.login(ALICE, CHROME_LINUX).await,
        h.login(ALICE, POSTMAN).await,
        h.login(ALICE, "ShareX/15.0.0").await,
    ];
    let bob = h.login(BOB, POSTMAN).await;
    let count = admin(&h, "GET", "/admin/sessions/count").await;
    assert_eq!(count.status, StatusCode::OK);
    assert_eq!(count.json(), serde_json::json!({"sessions": 4}));

    let path = format!("/admin/users/{}/sessions", ALICE.0);
    let r = admin(&h, "DELETE", &path).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["code"], "ALL_SESSIONS_REVOKED");
    assert_eq!(body["user"], ALICE.0);
    assert_eq!(body["revoked"], 3);
    for tokens in &alices {
        let r = h.get("/api/account", &tokens.access_token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "SESSION_INVALID");
    }
    assert_eq!(status_of(&h, &bob.access_token).await, StatusCode::OK);
    assert_eq!(admin(&h, "GET", &path).await.json()["total"], 0);
    assert_eq!(
        admin(&h, "GET", "/admin/sessions/count").await.json()["sessions"],
        1
    );
    assert_eq!(h.stored_sessions(), 1);
    // Again: nothing left to revoke, and still 200.
    assert_eq!(admin(&h, "DELETE", &path).await.json()["revoked"], 0);
}

#[tokio::test]
async fn admin_revocations_are_counted_with_reason_admin() {
    let (h, _dir) = start_with_admin_token().await;
    let before = scrape(&h).await;
    assert_eq!(
        before.get(REVOKED, &[("reason", "admin")]),
        Some(0.0),
        "the series exists at 0"
    );
    let alice = h.login(ALICE, CHROME_LINUX).await;
    h.login(BOB, CHROME_LINUX).await;
    h.login(BOB, POSTMAN).await;
    let id = ids(&h
        .get("/api/account/sessions", &alice.access_token)
        .await
        .json())[0]
        .clone();
    assert_eq!(
        admin(&h, "DELETE", &format!("/admin/sessions/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    let path = format!("/admin/users/{}/sessions", BOB.0);
    assert_eq!(admin(&h, "DELETE", &path).await.json()["revoked"], 2);
    // Refused and empty calls count nothing.
    assert_eq!(
        admin(&h, "DELETE", &format!("/admin/sessions/{id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(admin(&h, "DELETE", &path).await.json()["revoked"], 0);

    let after = scrape(&h).await;
    let delta = |reason: &str| {
        after.value(REVOKED, &[("reason", reason)]) - before.value(REVOKED, &[("reason", reason)])
    };
    assert_eq!(delta("admin"), 3.0, "{}", after.text);
    for reason in [
        "user",
        "all",
        "logout",
        "password_change",
        "expired",
        "reuse",
    ] {
        assert_eq!(delta(reason), 0.0, "{reason}");
    }
}

/// A log sink for the test's thread: the gateway's tasks run on it (a current-thread runtime).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Makes every thread of this test binary see a subscriber when it first reaches a log line.
///
/// tracing decides once per log line (its callsite), for the whole process, whether anyone
/// listens. With only one subscriber registered, it asks the subscriber of the thread that
/// reaches the line first: a sibling test running without one would mark the line "never",
/// and this test's capture, set on its own thread only, would miss the line. A global,
/// silent registry beside the capture makes tracing ask every registered subscriber instead.
fn keep_log_lines_live() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Refused only if a global subscriber is set already: it serves the same end.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
}

#[tokio::test]
async fn revocations_are_logged_with_the_request_id_and_no_token() {
    keep_log_lines_live();
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (h, _dir) = start_with_admin_token().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let bob = h.login(BOB, CHROME_LINUX).await;
    let id = ids(&h
        .get("/api/account/sessions", &alice.access_token)
        .await
        .json())[0]
        .clone();
    let bearer = format!("Bearer {ADMIN_TOKEN}");

    let r = admin_call(
        h.admin_url(&format!("/admin/sessions/{id}")),
        "DELETE",
        &[
            ("authorization", &bearer),
            ("x-request-id", "op-4711 \"<x>\"\t;"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.header("x-request-id"),
        Some("op-4711x"),
        "cleaned and echoed"
    );
    let r = admin_call(
        h.admin_url(&format!("/admin/users/{}/sessions", BOB.0)),
        "DELETE",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let made_up = r.header("x-request-id").expect("a request id").to_string();
    assert_eq!(made_up.len(), 16, "{made_up}");
    let wrong = "Bearer wrong-admin-token-guess-0123456789";
    let r = admin_call(
        h.admin_url("/admin/sessions/count"),
        "GET",
        &[("authorization", wrong), ("x-request-id", "op-guess")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let text = log.text();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?}:\n{text}"))
            .to_string()
    };
    let one = line("request_id=op-4711x");
    assert!(
        one.contains("revoked by an operator")
            && one.contains(&id)
            && one.contains(ALICE.0)
            && one.contains("revoked=1"),
        "{one}"
    );
    assert!(one.contains(" INFO "), "{one}");
    let all = line(&format!("request_id={made_up}"));
    assert!(all.contains(BOB.0) && all.contains("revoked=1"), "{all}");
    let refused = line("request_id=op-guess");
    assert!(
        refused.contains("admin request refused") && refused.contains("wrong"),
        "{refused}"
    );
    for secret in [
        ADMIN_TOKEN,
        "wrong-admin-token-guess",
        &alice.access_token,
        &bob.access_token,
    ] {
        assert!(!text.contains(secret), "the log holds a token:\n{text}");
    }
}
