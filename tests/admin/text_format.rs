//! `/metrics` in the Prometheus text format: the content type, a `# TYPE` line and a sample
//! for every family, and `promtool check metrics` accepting a live scrape.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::StatusCode;

use crate::scrape::{Scrape, parse_metrics, scrape};
use crate::support::*;

/// Every metric family the gateway exports, by the name in its `# TYPE` line.
const FAMILIES: &[&str] = &[
    "sessiongate_http_requests_total",
    "sessiongate_http_request_duration_seconds",
    "sessiongate_upstream_request_duration_seconds",
    "sessiongate_upstream_errors_total",
    "sessiongate_auth_decisions_total",
    "sessiongate_sessions_active",
    "sessiongate_sessions_created_total",
    "sessiongate_sessions_revoked_total",
    "sessiongate_store_operation_duration_seconds",
    "sessiongate_store_errors_total",
    "sessiongate_connections_open",
    "sessiongate_build_info",
    "process_resident_memory_bytes",
    "process_open_fds",
];

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_family() {
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    // Traffic that creates every labelled series: a login, an allowed and a refused request,
    // an upstream timeout, and a logout.
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    assert_eq!(
        h.get("/api/account", &tokens.access_token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.request("GET", "/api/account").send().await.status,
        StatusCode::UNAUTHORIZED
    );
    let slow = h.get("/api/slow?ms=3000", &tokens.access_token).await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", slow.body);
    let logout = h
        .request("POST", "/api/auth/logout")
        .token(&tokens.access_token)
        .send()
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{:?}", logout.body);

    let response = h.admin_get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "content-type {content_type:?}"
    );
    let text = String::from_utf8(response.body.to_vec()).expect("UTF-8");
    let samples = parse_metrics(&text);
    for family in FAMILIES {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "no `# TYPE {family}` line in:\n{text}"
        );
        assert!(
            samples.iter().any(|s| s.name.starts_with(family)),
            "no sample of {family} in:\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l == "sessiongate_build_info{version=\"0.1.0\"} 1"),
        "{text}"
    );
    let scrape = Scrape { text, samples };
    assert!(scrape.value("process_resident_memory_bytes", &[]) > 0.0);
    assert!(scrape.value("process_open_fds", &[]) > 0.0);
    // The admin connection is not a client connection; the pooled one to the main listener
    // may still be open.
    assert!(scrape.get("sessiongate_connections_open", &[]).is_some());
}

/// `promtool` on PATH; `None` (the test then skips, saying so) only outside CI: with `CI`
/// set, a missing promtool fails the test.
pub(crate) fn promtool(test: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("promtool is not on PATH but CI is set: install Debian's `prometheus` package");
        }
        eprintln!(
            "\n\n*** NOTE: promtool is not on PATH: SKIPPING {test} ***\n\
             *** install it with `apt-get install prometheus` (CI fails without it) ***\n"
        );
    }
    found
}

#[tokio::test]
async fn promtool_accepts_the_live_metrics() {
    let Some(promtool) = promtool("promtool_accepts_the_live_metrics") else {
        return;
    };
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    h.get("/api/account", &tokens.access_token).await;
    h.request("GET", "/api/account").send().await;
    h.get("/api/slow?ms=2000", &tokens.access_token).await;
    h.request("POST", "/api/auth/logout")
        .token(&tokens.access_token)
        .send()
        .await;
    let text = scrape(&h).await.text;

    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads the metrics");
    // stdin is closed by now (taken and dropped); promtool answers at once.
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("promtool finishes within 30 s")
    .expect("the waiting task")
    .expect("promtool's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "promtool check metrics failed ({}):\nstdout: {stdout}\nstderr: {stderr}\n--- metrics ---\n{text}",
        output.status
    );
}
