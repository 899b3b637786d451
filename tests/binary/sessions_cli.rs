//! `sessiongate sessions list|revoke|count`: through a running child gateway's admin
//! listener (its revocations refused on the main listener next, logged with the request id
//! and no token), `--direct` on a stopped gateway's sled store and refused while it runs, a
//! wrong token refused with nothing changed, and bad arguments exiting 64 naming them.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use http::StatusCode;
use serde_json::Value;

use crate::child::{PRESET, SECRET, free_addr, run_to_end, sessiongate};
use crate::gateway::{Launch, RunningGateway, call, login, start_gateway, start_gateway_in};

/// The admin token of the gateways here.
const ADMIN_TOKEN: &str = "binary-admin-token-9d2e4f6a8b0c1d3e5f7a";
/// alice's user id in the stand-in.
const ALICE_ID: &str = "5f4bff121037e424a17a3ebc";

/// Runs `sessiongate sessions <args> --config <preset>` in `work` with these variables:
/// status, stdout, stderr.
async fn sessions(
    work: &Path,
    env: &[(&str, String)],
    args: &[&str],
) -> (ExitStatus, String, String) {
    let mut command = sessiongate(work);
    command
        .arg("sessions")
        .args(args)
        .args(["--config", PRESET]);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || run_to_end(&mut command))
        .await
        .expect("the command's waiter does not panic")
}

/// The variables that point the command at `gateway`'s admin listener, with `token`.
fn pointed_at(gateway: &RunningGateway, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SESSIONGATE_ADMIN_LISTEN", gateway.admin.to_string()),
        ("SESSIONGATE_ADMIN_TOKEN", token.to_string()),
    ]
}

/// The status of `GET /api/account` with this access token.
async fn account(gateway: &RunningGateway, access: &str) -> StatusCode {
    let bearer = format!("Bearer {access}");
    call(
        gateway.main,
        "GET",
        "/api/account",
        &[("authorization", &bearer)],
        None,
    )
    .await
    .0
}

/// The ids of the caller's sessions, oldest first.
async fn session_ids(gateway: &RunningGateway, access: &str) -> Vec<String> {
    let bearer = format!("Bearer {access}");
    let (status, body) = call(
        gateway.main,
        "GET",
        "/api/account/sessions",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["_id"].as_str().expect("an id").to_string())
        .collect()
}

/// Two logins of alice, a second apart (so their tokens differ): their access tokens.
async fn two_logins(gateway: &RunningGateway) -> (String, String) {
    let (first, _) = login(gateway).await;
    gateway.uploader.advance_clock(1);
    let (second, _) = login(gateway).await;
    assert_ne!(first, second);
    (first, second)
}

/// The request id a revocation's output names: `... (request id <id>)`.
fn request_id(stdout: &str) -> String {
    let (_, rest) = stdout
        .split_once("(request id ")
        .unwrap_or_else(|| panic!("no request id in {stdout:?}"));
    rest.split(')').next().expect("an id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_revoke_through_a_running_gateway() {
    let mut gateway = start_gateway(Launch::PresetWithAdminToken(ADMIN_TOKEN)).await;
    let work = tempfile::tempdir().expect("a temp dir");
    let (first, second) = two_logins(&gateway).await;
    let ids = session_ids(&gateway, &first).await;
    let env = pointed_at(&gateway, ADMIN_TOKEN);

    let (status, stdout, stderr) = sessions(work.path(), &env, &["list", "--user", ALICE_ID]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!("user {ALICE_ID}: 2 live sessions")),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[0].starts_with(&ids[0]) && rows[1].starts_with(&ids[1]),
        "{stdout}"
    );
    let (status, stdout, _) =
        sessions(work.path(), &env, &["list", "--user", ALICE_ID, "--json"]).await;
    assert_eq!(status.code(), Some(0));
    let listing: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(listing["total"], 2, "{listing}");
    assert_eq!(listing["sessions"][0]["_id"], ids[0]);
    let (status, stdout, _) = sessions(work.path(), &env, &["count"]).await;
    assert_eq!(status.code(), Some(0));
    assert!(stdout.starts_with("2 sessions"), "{stdout}");

    // A wrong token: exit 1, saying so, and nothing revoked.
    let wrong = pointed_at(&gateway, "not-the-admin-token-not-the-admin-token");
    for args in [
        &["revoke", "--user", ALICE_ID][..],
        &["revoke", "--session", &ids[0]],
    ] {
        let (status, stdout, stderr) = sessions(work.path(), &wrong, args).await;
        assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains("401"), "{stderr}");
        assert!(!stderr.contains("not-the-admin-token"), "{stderr}");
    }
    assert_eq!(account(&gateway, &first).await, StatusCode::OK);
    assert_eq!(account(&gateway, &second).await, StatusCode::OK);

    // One session by id: refused next, the other still works.
    let (status, stdout, stderr) =
        sessions(work.path(), &env, &["revoke", "--session", &ids[0]]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.starts_with(&format!("revoked session {} of user {ALICE_ID}", ids[0])),
        "{stdout}"
    );
    let revoked_one = request_id(&stdout);
    assert_eq!(account(&gateway, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(account(&gateway, &second).await, StatusCode::OK);
    let (status, _, stderr) = sessions(work.path(), &env, &["revoke", "--session", &ids[0]]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("no live session {}", ids[0])),
        "{stderr}"
    );

    // Every session of the user.
    let (status, stdout, stderr) =
        sessions(work.path(), &env, &["revoke", "--user", ALICE_ID]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.starts_with(&format!("revoked 1 session of user {ALICE_ID}")),
        "{stdout}"
    );
    let revoked_all = request_id(&stdout);
    assert_eq!(account(&gateway, &second).await, StatusCode::UNAUTHORIZED);

    // Nobody at the address: exit 1, naming it.
    let nowhere = free_addr();
    let unreachable = vec![
        ("SESSIONGATE_ADMIN_LISTEN", nowhere.to_string()),
        ("SESSIONGATE_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
    ];
    let (status, _, stderr) = sessions(work.path(), &unreachable, &["count"]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&nowhere.to_string()) && stderr.contains("connect"),
        "{stderr}"
    );

    // The gateway's log: each revocation with the command's request id, and no token.
    gateway.child.terminate();
    let exit = gateway.child.wait_exit(Duration::from_secs(31)).await;
    let log = gateway.child.stderr();
    assert_eq!(exit.code(), Some(0), "log:\n{log}");
    for (request, revoked) in [(&revoked_one, &ids[0]), (&revoked_all, &ids[1])] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("request_id={request}")))
            .unwrap_or_else(|| panic!("no line with request id {request}:\n{log}"));
        assert!(line.contains("sessions revoked by an operator"), "{line}");
        assert!(
            line.contains(ALICE_ID) && line.contains(revoked.as_str()),
            "{line}"
        );
    }
    assert!(log.contains("admin request refused"), "{log}");
    for secret in [ADMIN_TOKEN, "not-the-admin-token", &first, &second, SECRET] {
        if let Some(line) = log.lines().find(|l| l.contains(secret)) {
            panic!("the gateway's log holds a secret: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_works_on_a_stopped_gateways_store_and_is_refused_while_it_runs() {
    let gateway = start_gateway(Launch::Preset).await;
    let (first, second) = two_logins(&gateway).await;
    let ids = session_ids(&gateway, &first).await;
    let data = vec![(
        "SESSIONGATE_DATA_DIR",
        gateway.work.path().join("sessions").display().to_string(),
    )];
    let here = gateway.work.path().to_path_buf();

    // While the gateway holds the sled store: refused, exit 1, and the gateway carries on.
    let (status, stdout, stderr) =
        sessions(&here, &data, &["revoke", "--session", &ids[0], "--direct"]).await;
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("stop the gateway first"), "{stderr}");
    assert_eq!(account(&gateway, &first).await, StatusCode::OK);
    // Without --direct, this gateway (no admin token) has nothing to ask with.
    let (status, _, stderr) = sessions(&here, &data, &["count"]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no admin token"), "{stderr}");

    let RunningGateway {
        mut child, work, ..
    } = gateway;
    child.terminate();
    assert!(child.wait_exit(Duration::from_secs(15)).await.success());
    let log = child.stderr();
    assert!(
        log.contains("admin session routes (/admin/...) are off"),
        "{log}"
    );

    let (status, stdout, stderr) = sessions(
        work.path(),
        &data,
        &["list", "--user", ALICE_ID, "--direct"],
    )
    .await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("2 live sessions") && stdout.contains(&ids[1]),
        "{stdout}"
    );
    let (status, stdout, _) = sessions(work.path(), &data, &["count", "--direct", "--json"]).await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).expect("JSON"),
        serde_json::json!({"sessions": 2})
    );
    let (status, stdout, stderr) = sessions(
        work.path(),
        &data,
        &["revoke", "--session", &ids[0], "--direct"],
    )
    .await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let request = request_id(&stdout);
    assert!(
        stderr.contains("sessions revoked by an operator") && stderr.contains(&request),
        "the same log line, here: {stderr}"
    );

    // The gateway started again refuses the revoked session and keeps the other.
    let gateway = start_gateway_in(Launch::Preset, work).await;
    assert_eq!(account(&gateway, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(account(&gateway, &second).await, StatusCode::OK);

    // A directory without a store: exit 1, and none is made.
    let empty = tempfile::tempdir().expect("a temp dir");
    let elsewhere = vec![(
        "SESSIONGATE_DATA_DIR",
        empty.path().join("none").display().to_string(),
    )];
    let (status, _, stderr) = sessions(empty.path(), &elsewhere, &["count", "--direct"]).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no session store"), "{stderr}");
    assert!(!empty.path().join("none").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_a_bad_admin_token_exit_64_naming_them() {
    let work = tempfile::tempdir().expect("a temp dir");
    let id = "6946b1a27d3c0f9a1e000001";
    let cases: &[(&[&str], &str)] = &[
        (&["frobnicate"], "\"frobnicate\""),
        (&["list"], "list needs --user"),
        (&["list", "--user"], "--user needs a user id"),
        (&["list", "--user", "a/b"], "--user: expected"),
        (&["list", "--user", "alice", "--frobnicate"], "--frobnicate"),
        (&["revoke"], "--user <id> or --session <id>"),
        (&["revoke", "--user", ALICE_ID, "--session", id], "not both"),
        (
            &["revoke", "--session", "not-an-id"],
            "--session: expected 24 hexadecimal digits",
        ),
        (
            &["count", "--session", id],
            "count takes no --user or --session",
        ),
    ];
    for (args, expected) in cases {
        let (status, stdout, stderr) = sessions(work.path(), &[], args).await;
        assert_eq!(status.code(), Some(64), "{args:?}: {stdout} {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            stderr.contains("usage: sessiongate sessions"),
            "{args:?}: {stderr}"
        );
    }
    let short = vec![("SESSIONGATE_ADMIN_TOKEN", "short-secret".to_string())];
    let (status, _, stderr) = sessions(work.path(), &short, &["count"]).await;
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("SESSIONGATE_ADMIN_TOKEN") && !stderr.contains("short-secret"),
        "{stderr}"
    );

    // The gateway itself refuses to start with a bad token file, naming the key.
    let file = work.path().join("admin_token");
    std::fs::write(&file, "has a space inside it, and is long enough\n").expect("write");
    let config = work.path().join("gate.toml");
    std::fs::write(
        &config,
        format!("[admin]\ntoken_file = {:?}\n", file.display().to_string()),
    )
    .expect("write");
    let mut command = sessiongate(work.path());
    command
        .env("JWT_SECRET", SECRET)
        .arg("--check-config")
        .arg("--config")
        .arg(&config);
    let (status, _, stderr) = tokio::task::spawn_blocking(move || run_to_end(&mut command))
        .await
        .expect("runs");
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("admin.token_file") && !stderr.contains("space inside"),
        "{stderr}"
    );
    assert!(!work.path().join("data").exists(), "nothing was made");
}
