//! `--check-config` and the arguments: exit 0 for a good config, 64 naming the key or the
//! argument at fault, and nothing made on disk.

use crate::child::{PRESET, SECRET, run_to_end, sessiongate};

#[test]
fn check_config_accepts_the_preset_when_the_secret_is_set() {
    let work = tempfile::tempdir().expect("a temp dir");
    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).env("JWT_SECRET", SECRET).args([
            "--check-config",
            "--config",
            PRESET,
        ]));
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        !work.path().join("data").exists(),
        "--check-config must not create the store"
    );
}

#[test]
fn check_config_without_the_secret_exits_64_naming_the_key() {
    let work = tempfile::tempdir().expect("a temp dir");
    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).args(["--check-config", "--config", PRESET]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("auth.secret_env"), "stderr: {stderr}");
}

#[test]
fn check_config_with_a_bad_listen_address_exits_64_naming_the_key() {
    let work = tempfile::tempdir().expect("a temp dir");
    let config = work.path().join("bad.toml");
    std::fs::write(&config, "listen = \"nowhere\"\n").expect("write the config");
    let (status, stdout, stderr) = run_to_end(
        sessiongate(work.path())
            .env("JWT_SECRET", SECRET)
            .arg("--check-config")
            .arg("--config")
            .arg(&config),
    );
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("`listen`"), "stderr: {stderr}");
    assert!(
        stderr.contains("nowhere"),
        "the bad value is named: {stderr}"
    );
}

#[test]
fn an_unknown_argument_exits_64() {
    let work = tempfile::tempdir().expect("a temp dir");
    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).env("JWT_SECRET", SECRET).args([
            "--config",
            PRESET,
            "--frobnicate",
        ]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("--frobnicate"), "stderr: {stderr}");

    let (status, stdout, stderr) =
        run_to_end(sessiongate(work.path()).args(["--config", PRESET, "--to", "elsewhere"]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("--to is an option of compact"),
        "stderr: {stderr}"
    );

    let (status, stdout, stderr) = run_to_end(sessiongate(work.path()).args([
        "compact",
        "--config",
        PRESET,
        "--check-config",
    ]));
    assert_eq!(
        status.code(),
        Some(64),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("compact takes only"), "stderr: {stderr}");
    assert!(
        !work.path().join("data").exists(),
        "nothing was compacted or made"
    );
}
