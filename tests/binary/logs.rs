//! The log of a gateway at debug level, in text and in JSON: no token, no signature and no
//! secret in it, one access-log line per request, long paths cut, no colour codes in a pipe.

use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use crate::child::SECRET;
use crate::gateway::{Launch, call, login, start_gateway};

/// Drives a login, authenticated requests (header, and query string too), a refresh, a
/// refused stale token and a logout through a child logging at debug level; then stops it
/// and checks its whole log.
async fn no_token_in_the_log(format: &'static str) {
    let mut gateway = start_gateway(Launch::DebugLog { format }).await;
    let main = gateway.main;
    let (access, refresh) = login(&gateway).await;
    let bearer = format!("Bearer {access}");

    let (status, body) = call(
        main,
        "GET",
        "/api/account",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A head over the 16 KiB limit (within the read buffer), its path far past what the
    // access log keeps: refused, and logged cut short.
    let long_path = format!("/api/{}", "p".repeat(20 * 1024));
    let (status, body) = call(main, "GET", &long_path, &[], None).await;
    assert_eq!(
        status,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "{body}"
    );
    assert_eq!(body["code"], "HEADERS_TOO_LARGE", "{body}");
    let query = format!("/api/account?access_token={access}");
    let (status, body) = call(main, "GET", &query, &[("authorization", &bearer)], None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A second later, the uploader's refresh gives new tokens.
    gateway.uploader.advance_clock(1);
    let (status, body) = call(
        main,
        "POST",
        "/api/auth/refresh",
        &[],
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let new_refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert_ne!(new_access, access);
    // The rotated-away access token is refused.
    let (status, body) = call(
        main,
        "GET",
        "/api/account",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let new_bearer = format!("Bearer {new_access}");
    let (status, body) = call(
        main,
        "POST",
        "/api/auth/logout",
        &[("authorization", &new_bearer)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses = [200, 200, 431, 200, 200, 401, 200];

    gateway.child.terminate();
    let exit = gateway.child.wait_exit(Duration::from_secs(31)).await;
    let log = gateway.child.stderr();
    assert_eq!(exit.code(), Some(0), "log:\n{log}");

    let signature = |token: &str| token.rsplit('.').next().expect("a JWT").to_string();
    let secrets = [
        ("the access token", access.clone()),
        ("the refresh token", refresh.clone()),
        ("the new access token", new_access.clone()),
        ("the new refresh token", new_refresh.clone()),
        ("the secret", SECRET.to_string()),
        ("the access token's signature", signature(&access)),
        ("the refresh token's signature", signature(&refresh)),
        ("the new access token's signature", signature(&new_access)),
        ("the new refresh token's signature", signature(&new_refresh)),
    ];
    for (what, needle) in &secrets {
        if let Some(line) = log.lines().find(|l| l.contains(needle.as_str())) {
            panic!("the {format} log contains {what}: {line}");
        }
    }

    let access_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sessiongate::access"))
        .collect();
    assert_eq!(
        access_lines.len(),
        statuses.len(),
        "one access-log line per request:\n{}",
        access_lines.join("\n")
    );
    // The long path is cut to the longest the gateway serves (4 KiB) and an ellipsis.
    for line in &access_lines {
        assert!(line.len() < 4096 + 1024, "a long access-log line: {line}");
    }
    assert!(
        access_lines
            .iter()
            .any(|l| l.contains(&format!("{}…", "p".repeat(100)))),
        "the long path is logged, cut:\n{}",
        access_lines.join("\n")
    );
    if format == "json" {
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            if let Err(e) = serde_json::from_str::<Value>(line) {
                panic!("a log line is not JSON ({e}): {line}");
            }
        }
        for (line, expected) in access_lines.iter().zip(statuses) {
            let entry: Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(entry["target"], "sessiongate::access", "{line}");
            assert_eq!(entry["status"], expected, "{line}");
            assert!(entry["route"].is_string(), "{line}");
            assert!(entry["path"].is_string(), "{line}");
        }
    } else {
        for (line, expected) in access_lines.iter().zip(statuses) {
            let line = strip_ansi(line);
            assert!(line.contains(&format!("status={expected}")), "{line}");
            assert!(line.contains("route="), "{line}");
        }
    }
    assert!(
        log.contains("sessiongate listening"),
        "the startup line is logged:\n{log}"
    );
    // stderr is a pipe here, as under systemd, Docker or a log shipper: no colour codes.
    if let Some(line) = log.lines().find(|l| l.contains('\u{1b}')) {
        panic!("the {format} log written to a pipe contains ANSI escape codes: {line:?}");
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... final-byte`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_log_never_contains_a_token() {
    no_token_in_the_log("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_never_contains_a_token() {
    no_token_in_the_log("json").await;
}
