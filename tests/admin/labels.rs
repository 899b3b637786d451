//! Labels stay bounded: no path, id, token, user or raw method becomes a label value, and the
//! number of series does not grow with the paths requested.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::scrape::{REQUESTS, scrape};
use crate::support::*;

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
                "origin" => ["login", "adopted"].contains(&value.as_str()),
                "reason" => [
                    "user",
                    "all",
                    "logout",
                    "password_change",
                    "expired",
                    "reuse",
                    "admin",
                ]
                .contains(&value.as_str()),
                "kind" => [
                    "connect",
                    "timeout",
                    "unavailable",
                    "refused",
                    "corrupt",
                    "io",
                ]
                .contains(&value.as_str()),
                "backend" => ["sled", "redis"].contains(&value.as_str()),
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
