//! The `compact` subcommand: refused on a running gateway's store, then, the gateway stopped,
//! a copy elsewhere and a compaction in place that keep every session.

use std::path::Path;
use std::process::ExitStatus;

use http::StatusCode;

use crate::child::{PRESET, run_to_end, sessiongate};
use crate::gateway::{
    Launch, call, list_sessions, login, start_gateway, start_gateway_in, stop_gracefully,
};

/// `compact` with the preset and `extra` arguments, on the store in `work/sessions`: status,
/// stdout and stderr.
async fn compact(work: &Path, extra: &[&str]) -> (ExitStatus, String, String) {
    let mut command = sessiongate(work);
    command
        .env("SESSIONGATE_DATA_DIR", work.join("sessions"))
        .args(["compact", "--config", PRESET])
        .args(extra);
    tokio::task::spawn_blocking(move || run_to_end(&mut command))
        .await
        .expect("the compaction's waiter does not panic")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_refuses_a_running_gateways_store_then_keeps_every_session() {
    let gateway = start_gateway(Launch::Preset).await;
    let (access, _) = login(&gateway).await;
    let bearer = format!("Bearer {access}");
    let list = |main| list_sessions(main, &access);
    let (status, before) = list(gateway.main).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(before["total"], 1, "{before}");

    // The running gateway holds the store: refused, exit 1, and the gateway carries on.
    let (status, stdout, stderr) = compact(gateway.work.path(), &[]).await;
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("stop the gateway first"),
        "stderr: {stderr}"
    );
    assert_eq!(list(gateway.main).await, (StatusCode::OK, before.clone()));

    // Stopped, the store is compacted into another directory, then in place...
    let work = stop_gracefully(gateway).await;
    let (status, stdout, stderr) = compact(work.path(), &["--to", "copy"]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("point data_dir at it"), "stdout: {stdout}");
    assert!(work.path().join("copy").join("db").is_file());
    let (status, stdout, stderr) = compact(work.path(), &[]).await;
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("copied and checked"), "stdout: {stdout}");
    assert!(!work.path().join("sessions.compacting").exists());

    // ...and a gateway on it knows the session, whose token still works and still revokes.
    // The listing is itself a use of the session: `lastActiveAt` moves on, the rest is kept.
    let gateway = start_gateway_in(Launch::Preset, work).await;
    let (status, after) = list(gateway.main).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    let last_active = |listing: &serde_json::Value| {
        listing["sessions"][0]["lastActiveAt"]
            .as_str()
            .expect("a lastActiveAt")
            .to_string()
    };
    assert!(
        last_active(&after) >= last_active(&before),
        "{before} {after}"
    );
    let mut after_but_last_use = after.clone();
    after_but_last_use["sessions"][0]["lastActiveAt"] =
        before["sessions"][0]["lastActiveAt"].clone();
    assert_eq!(after_but_last_use, before);
    let (status, body) = call(
        gateway.main,
        "DELETE",
        "/api/account/sessions",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(list(gateway.main).await.0, StatusCode::UNAUTHORIZED);
}
