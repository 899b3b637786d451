//! The admin listener: `/metrics` in the Prometheus text format (every family present,
//! counters moving by exact amounts, labels bounded, accepted by `promtool`), `/healthz`,
//! `/readyz`, and the answers to unknown paths and wrong methods.

mod support;

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use support::*;

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
    "sessiongate_connections_open",
    "sessiongate_build_info",
    "process_resident_memory_bytes",
    "process_open_fds",
];

/// One sample line of the text format: `name{label="value",...} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One scrape of `/metrics`: the text and its samples.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the sample with exactly this name and these labels, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// Like [`Scrape::get`], with an absent series read as 0 (a labelled counter appears at
    /// its first increment).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }
}

/// Parses the Prometheus text format's sample lines (comments and blank lines skipped).
fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| parse_sample(line).unwrap_or_else(|| panic!("unparsable metric line {line:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        let end;
        loop {
            // Skip separators, stop at the closing brace.
            match chars.peek()? {
                (_, ',') | (_, ' ') => {
                    chars.next();
                    continue;
                }
                (i, '}') => {
                    end = Some(*i);
                    break;
                }
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        }
        rest = &after_brace[end? + 1..];
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

async fn scrape(h: &Harness) -> Scrape {
    let response = h.admin_get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let text = String::from_utf8(response.body.to_vec()).expect("the metrics are UTF-8");
    let samples = parse_metrics(&text);
    Scrape { text, samples }
}

/// Sends a request with any method to the admin listener.
async fn admin_send(h: &Harness, method: Method, path: &str) -> TestResponse {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(method)
        .uri(h.admin_url(path))
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = client
        .request(request)
        .await
        .expect("the admin listener answers");
    let (parts, body) = response.into_parts();
    TestResponse {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("the body arrives").to_bytes(),
    }
}

const REQUESTS: &str = "sessiongate_http_requests_total";
const DECISIONS: &str = "sessiongate_auth_decisions_total";
const CREATED: &str = "sessiongate_sessions_created_total";
const ACTIVE: &str = "sessiongate_sessions_active";
const REVOKED: &str = "sessiongate_sessions_revoked_total";
const UPSTREAM_ERRORS: &str = "sessiongate_upstream_errors_total";

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

#[tokio::test]
async fn a_login_and_three_authenticated_requests_move_the_counters_exactly() {
    let h = Harness::start().await;
    let before = scrape(&h).await;
    assert_eq!(before.value(ACTIVE, &[]), 0.0);

    let tokens = h.login(ALICE, CHROME_LINUX).await;
    for _ in 0..3 {
        let r = h.get("/api/account", &tokens.access_token).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    let after = scrape(&h).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(delta(CREATED, &[]), 1.0, "{}", after.text);
    assert_eq!(after.value(ACTIVE, &[]), 1.0, "{}", after.text);
    assert_eq!(
        delta(DECISIONS, &[("decision", "allowed")]),
        3.0,
        "{}",
        after.text
    );
    let session_get = [
        ("route_class", "session"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(delta(REQUESTS, &session_get), 3.0, "{}", after.text);
    let login_post = [
        ("route_class", "login"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert_eq!(delta(REQUESTS, &login_post), 1.0, "{}", after.text);
    // Nothing was refused.
    for decision in ["missing", "invalid", "expired", "revoked"] {
        assert_eq!(
            delta(DECISIONS, &[("decision", decision)]),
            0.0,
            "{decision}"
        );
    }
    // The request histogram counted the same four requests.
    let durations = "sessiongate_http_request_duration_seconds_count";
    assert_eq!(after.value(durations, &[("route_class", "session")]), 3.0);
    assert_eq!(after.value(durations, &[("route_class", "login")]), 1.0);
}

#[tokio::test]
async fn refusals_are_counted_by_decision() {
    let h = Harness::start().await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = scrape(&h).await;

    let missing = h.request("GET", "/api/account").send().await;
    assert_eq!(missing.code(), "TOKEN_MISSING");
    let after_missing = scrape(&h).await;
    let delta = |s: &Scrape, decision: &str| {
        s.value(DECISIONS, &[("decision", decision)])
            - before.value(DECISIONS, &[("decision", decision)])
    };
    assert_eq!(
        delta(&after_missing, "missing"),
        1.0,
        "{}",
        after_missing.text
    );
    assert_eq!(delta(&after_missing, "expired"), 0.0);
    let unauthorized = [
        ("route_class", "session"),
        ("method", "GET"),
        ("status", "401"),
    ];
    assert_eq!(
        after_missing.value(REQUESTS, &unauthorized) - before.value(REQUESTS, &unauthorized),
        1.0
    );

    // The access token lives 5 minutes; the gateway's clock moves past it.
    h.clock.advance_seconds(300 + 10);
    let expired = h.get("/api/account", &tokens.access_token).await;
    assert_eq!(expired.code(), "TOKEN_EXPIRED");
    let after_expired = scrape(&h).await;
    assert_eq!(
        delta(&after_expired, "expired"),
        1.0,
        "{}",
        after_expired.text
    );
    assert_eq!(delta(&after_expired, "missing"), 1.0);
    assert_eq!(delta(&after_expired, "allowed"), 0.0);
    // An expired access token does not end the session (the refresh token still can).
    assert_eq!(after_expired.value(ACTIVE, &[]), 1.0);
}

#[tokio::test]
async fn each_way_a_session_ends_is_counted_by_reason() {
    let h = Harness::start().await;
    let revoked = |s: &Scrape, reason: &str| s.value(REVOKED, &[("reason", reason)]);

    // The user revokes one session by its id.
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let id = h.sessions(&tokens.access_token).await[0]["_id"]
        .as_str()
        .expect("an _id")
        .to_string();
    assert_eq!(scrape(&h).await.value(ACTIVE, &[]), 1.0);
    let r = h
        .request("DELETE", &format!("/api/account/sessions/{id}"))
        .token(&tokens.access_token)
        .send()
        .await;
    assert_eq!(r.code(), "SESSION_REVOKED");
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "user"), 1.0, "{}", s.text);
    assert_eq!(s.value(ACTIVE, &[]), 0.0, "{}", s.text);

    // Revoke-all ends both of the user's sessions.
    let first = h.login(ALICE, CHROME_LINUX).await;
    h.login(ALICE, POSTMAN).await;
    assert_eq!(scrape(&h).await.value(ACTIVE, &[]), 2.0);
    let r = h
        .request("DELETE", "/api/account/sessions")
        .token(&first.access_token)
        .send()
        .await;
    assert_eq!(r.code(), "ALL_SESSIONS_REVOKE");
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "all"), 2.0, "{}", s.text);
    assert_eq!(revoked(&s, "user"), 1.0);
    assert_eq!(s.value(ACTIVE, &[]), 0.0, "{}", s.text);

    // Logout ends the caller's session.
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let r = h
        .request("POST", "/api/auth/logout")
        .token(&tokens.access_token)
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "logout"), 1.0, "{}", s.text);
    assert_eq!(s.value(ACTIVE, &[]), 0.0, "{}", s.text);

    // A password change ends every session of the user, and only theirs.
    let first = h.login(ALICE, CHROME_LINUX).await;
    h.login(ALICE, POSTMAN).await;
    h.login(BOB, CHROME_LINUX).await;
    assert_eq!(scrape(&h).await.value(ACTIVE, &[]), 3.0);
    let r = h
        .request("PUT", "/api/account/change-password")
        .token(&first.access_token)
        .json(json!({"oldPassword": ALICE.2, "newPassword": "another-password"}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let s = scrape(&h).await;
    assert_eq!(revoked(&s, "password_change"), 2.0, "{}", s.text);
    assert_eq!(s.value(ACTIVE, &[]), 1.0, "bob's session stays: {}", s.text);
    // 1 + 2 + 1 + 3 logins.
    assert_eq!(s.value(CREATED, &[]), 7.0, "{}", s.text);
    for reason in ["expired", "reuse"] {
        assert_eq!(revoked(&s, reason), 0.0, "{reason}");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_counted_as_a_connect_error() {
    let h = Harness::start_with(|c| c.upstream = "http://127.0.0.1:1".into()).await;
    let before = scrape(&h).await;
    let r = h.request("GET", "/api/upload/abc").send().await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    let after = scrape(&h).await;
    let connect = [("kind", "connect")];
    assert_eq!(
        after.value(UPSTREAM_ERRORS, &connect) - before.value(UPSTREAM_ERRORS, &connect),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(after.value(UPSTREAM_ERRORS, &[("kind", "timeout")]), 0.0);
    let public_502 = [
        ("route_class", "public"),
        ("method", "GET"),
        ("status", "502"),
    ];
    assert_eq!(after.value(REQUESTS, &public_502), 1.0, "{}", after.text);
}

#[tokio::test]
async fn a_slow_upstream_is_counted_as_a_timeout() {
    let h = Harness::start_with(|c| c.proxy.upstream_timeout_seconds = 1).await;
    let tokens = h.login(ALICE, CHROME_LINUX).await;
    let before = scrape(&h).await;
    let r = h.get("/api/slow?ms=3000", &tokens.access_token).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", r.body);
    let after = scrape(&h).await;
    let timeout = [("kind", "timeout")];
    assert_eq!(
        after.value(UPSTREAM_ERRORS, &timeout) - before.value(UPSTREAM_ERRORS, &timeout),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(after.value(UPSTREAM_ERRORS, &[("kind", "connect")]), 0.0);
}

/// A random lowercase-hex string of `len` characters.
fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        out.push_str(&format!("{:016x}", RandomState::new().hash_one(out.len())));
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn labels_stay_bounded_whatever_the_paths_and_ids() {
    let h = Harness::start().await;
    let alice = h.login(ALICE, CHROME_LINUX).await;
    let bob = h.login(BOB, POSTMAN).await;
    let mut session_ids: Vec<String> = Vec::new();
    for tokens in [&alice, &bob] {
        for session in h.sessions(&tokens.access_token).await {
            session_ids.push(session["_id"].as_str().expect("an _id").to_string());
        }
    }
    let mut randoms = Vec::new();
    for i in 0..50 {
        let word = format!("p{}", random_hex(20));
        let id = random_hex(24);
        let (method, path, token) = match i % 5 {
            0 => (
                "GET",
                format!("/api/{word}/files/{id}"),
                Some(&alice.access_token),
            ),
            1 => (
                "DELETE",
                format!("/api/account/sessions/{id}"),
                Some(&alice.access_token),
            ),
            2 => ("GET", format!("/api/upload/{word}"), None),
            3 => ("PATCH", format!("/{word}/{id}"), None),
            _ => (
                "GET",
                format!("/api/{word}?id={id}"),
                Some(&bob.access_token),
            ),
        };
        let mut request = h.request(method, &path);
        if let Some(token) = token {
            request = request.token(token);
        }
        let r = request.send().await;
        assert!(r.status.as_u16() < 500, "{method} {path}: {:?}", r.status);
        randoms.push(word);
        randoms.push(id);
    }
    // Also an odd method, which must share one label.
    let odd = h
        .request("PROPFIND", "/api/account")
        .token(&alice.access_token)
        .send()
        .await;
    assert!(odd.status.as_u16() < 500, "{:?}", odd.status);

    let s = scrape(&h).await;
    let mut forbidden: Vec<&str> = vec![ALICE.0, BOB.0, &alice.access_token, &bob.access_token];
    forbidden.extend(session_ids.iter().map(String::as_str));
    forbidden.extend(randoms.iter().map(String::as_str));
    for line in s.text.lines() {
        for needle in &forbidden {
            assert!(
                !line.contains(needle),
                "metric line {line:?} contains {needle:?}"
            );
        }
        assert!(
            !line.contains("PROPFIND"),
            "a raw method became a label: {line:?}"
        );
    }
    // Every label value comes from a small, fixed vocabulary.
    for sample in &s.samples {
        for (key, value) in &sample.labels {
            let bounded = match key.as_str() {
                "route_class" => [
                    "sessions_api",
                    "login",
                    "refresh",
                    "logout",
                    "end_all_sessions",
                    "api_key",
                    "public",
                    "session",
                    "invalid",
                ]
                .contains(&value.as_str()),
                "method" => [
                    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
                ]
                .contains(&value.as_str()),
                "status" => value.len() == 3 && value.bytes().all(|b| b.is_ascii_digit()),
                "decision" => ["allowed", "missing", "invalid", "expired", "revoked"]
                    .contains(&value.as_str()),
                "reason" => [
                    "user",
                    "all",
                    "logout",
                    "password_change",
                    "expired",
                    "reuse",
                ]
                .contains(&value.as_str()),
                "kind" => ["connect", "timeout"].contains(&value.as_str()),
                "le" | "quantile" | "version" | "op" => value.len() < 32,
                _ => false,
            };
            assert!(
                bounded,
                "unexpected label {key}={value:?} on {}",
                sample.name
            );
        }
    }
    let series = s.samples.iter().filter(|x| x.name == REQUESTS).count();
    assert!(
        series <= 20,
        "{series} request series after 50 distinct paths:\n{}",
        s.text
    );
}

/// `promtool` on PATH, if installed.
fn find_promtool() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
}

#[tokio::test]
async fn promtool_accepts_the_live_metrics() {
    let Some(promtool) = find_promtool() else {
        if std::env::var_os("CI").is_some() {
            panic!("promtool is not on PATH but CI is set: install Debian's `prometheus` package");
        }
        eprintln!(
            "\n\n*** NOTE: promtool is not on PATH: SKIPPING promtool_accepts_the_live_metrics ***\n\
             *** install it with `apt-get install prometheus` (CI fails without it)      ***\n"
        );
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

#[tokio::test]
async fn healthz_says_ok() {
    let h = Harness::start().await;
    let r = h.admin_get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_ready_when_the_store_and_the_upstream_answer() {
    let h = Harness::start().await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["store"], "ok", "{body}");
    assert_eq!(body["upstream"], "ok", "{body}");
}

#[tokio::test]
async fn readyz_is_503_when_the_upstream_is_down() {
    let h = Harness::start_with(|c| c.upstream = "http://127.0.0.1:1".into()).await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["upstream"], "failing", "{body}");
    assert_eq!(body["store"], "ok", "{body}");
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_on_the_admin_listener() {
    let h = Harness::start().await;
    let r = h.admin_get("/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NOT_FOUND");
    // The admin listener does not serve the API.
    let r = h.admin_get("/api/account/sessions").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NOT_FOUND");

    let r = admin_send(&h, Method::POST, "/reload-tls").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert_eq!(r.code(), "TLS_OFF");

    let r = admin_send(&h, Method::POST, "/metrics").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", r.body);
    assert_eq!(r.code(), "METHOD_NOT_ALLOWED");
    assert_eq!(
        h.uploader.requests().len(),
        0,
        "nothing reached the uploader"
    );
}
