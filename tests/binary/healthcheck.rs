//! The `healthcheck` subcommand: exit 0 when the admin listener answers, 1 (saying why) when
//! nothing listens.

use std::path::PathBuf;

use crate::child::{free_addr, run_to_end, sessiongate};
use crate::gateway::{Launch, start_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_when_the_admin_listener_answers_and_1_when_not() {
    let gateway = start_gateway(Launch::Preset).await;
    let work = tempfile::tempdir().expect("a temp dir");

    let admin = gateway.admin.to_string();
    let (status, stdout, stderr) = tokio::task::spawn_blocking({
        let dir = work.path().to_path_buf();
        move || {
            run_to_end(
                sessiongate(&dir)
                    .env("SESSIONGATE_ADMIN_LISTEN", admin)
                    .arg("healthcheck"),
            )
        }
    })
    .await
    .expect("the healthcheck runs");
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");

    let closed = free_addr();
    let (status, stdout, stderr) = tokio::task::spawn_blocking({
        let dir: PathBuf = work.path().to_path_buf();
        move || {
            run_to_end(
                sessiongate(&dir)
                    .env("SESSIONGATE_ADMIN_LISTEN", closed.to_string())
                    .arg("healthcheck"),
            )
        }
    })
    .await
    .expect("the healthcheck runs");
    assert_eq!(status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(&closed.to_string()) && stderr.to_lowercase().contains("connect"),
        "stderr should say it could not connect to {closed}: {stderr:?}"
    );
    drop(gateway);
}
