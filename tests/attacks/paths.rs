//! Path spellings: no spelling reaches the uploader's own sessions handlers (the stand-in marks
//! their answers with `x-served-by: uploader` and `"servedBy":"uploader"`), and none turns a
//! session route into a public one.

use http::StatusCode;
use serde_json::json;

use crate::raw;
use crate::support::*;
use crate::{
    assert_not_from_uploader_sessions, assert_refusal, assert_still_serving, upstream_paths_since,
};

/// Whether a path the uploader received would be routed by Express to its `/account` router
/// (case-insensitive mount, an optional slash after it).
fn reaches_account_router(path_and_query: &str) -> bool {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    lower == "/account" || lower.starts_with("/account/")
}

/// Spellings of the list endpoint (`GET`), answered by the gateway with alice's one session.
const LIST_SPELLINGS: &[&str] = &[
    "/api/account/sessions",
    "/api/ACCOUNT/SESSIONS",
    "/API/Account/Sessions/",
    "/api//account//sessions",
    "/api//account//sessions//",
    "//api/account/sessions",
    "/api/account/./sessions/.",
    "/api/account/x/../sessions",
    "/api/x/y/../../account/sessions",
    "/api/%61ccount/%73essions",
    "/api/%41CCOUNT/%53ESSIONS",
    "/api/account/%2e/sessions",
    "/api/account/%2E%2E/account/sessions",
    "/api/account/.%2e/account/sessions",
    "/api/user/../account/sessions",
    "/api/auth/login/../../account/sessions",
    "/api/upload/x/../../account/sessions",
    "/api/3rd-party/upload/../../account/sessions",
    "/x/../api/account/sessions",
    "/api/account/sessions?x=1&servedBy=uploader",
];

#[tokio::test]
async fn every_spelling_of_the_sessions_endpoints_is_answered_by_the_gateway() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for path in LIST_SPELLINGS {
        let r = h.get(path, &t.access_token).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {:?}", r.body);
        assert_not_from_uploader_sessions(&r, path);
        assert_eq!(r.json()["total"], json!(1), "GET {path}");
        let r = h.request("HEAD", path).token(&t.access_token).send().await;
        assert_eq!(r.status, StatusCode::OK, "HEAD {path}");
        assert_not_from_uploader_sessions(&r, path);
    }
    // Revoking one unknown id under any spelling is the gateway's 404, not the uploader's.
    for path in [
        "/api/account/sessions/6946b1a27d3c0f9a1e000099",
        "/api/Account//Sessions/6946b1a27d3c0f9a1e000099/",
        "/api/account/sessions/%36946b1a27d3c0f9a1e000099",
        "/api/user/../account/sessions/not-an-id",
        "/api/account/sessions/..%2e",
    ] {
        let r = h
            .request("DELETE", path)
            .token(&t.access_token)
            .send()
            .await;
        assert_refusal(&r, StatusCode::NOT_FOUND, "SESSION_NOT_FOUND", path);
    }
    // Other methods, even unknown ones, are the gateway's 405.
    for (method, path) in [
        ("POST", "/api/account/sessions"),
        ("PUT", "/api/ACCOUNT/sessions/"),
        ("PATCH", "/api/account//sessions"),
        ("OPTIONS", "/api/account/sessions"),
        ("FOO", "/api/account/sessions"),
        ("GET", "/api/account/sessions/abc"),
        ("POST", "/api/user/../account/sessions/abc"),
    ] {
        let r = h.request(method, path).token(&t.access_token).send().await;
        let what = format!("{method} {path}");
        assert_refusal(
            &r,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            &what,
        );
        assert!(r.header("allow").is_some(), "{what}: Allow");
    }
    assert_eq!(
        upstream_paths_since(&h, before),
        Vec::<String>::new(),
        "no sessions spelling reached the uploader"
    );
    // The DELETE spellings above revoked nothing.
    assert_eq!(h.sessions(&t.access_token).await.len(), 1);
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn without_a_token_every_spelling_is_the_gateways_401() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for path in LIST_SPELLINGS {
        for method in ["GET", "DELETE"] {
            let r = h.request(method, path).send().await;
            let what = format!("{method} {path}");
            assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_MISSING", &what);
        }
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn ambiguous_spellings_are_400_bad_path_and_never_forwarded() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for path in [
        "/api/account%2Fsessions",
        "/api/account%2fsessions",
        "/api%2Faccount%2Fsessions",
        "/api/account/sessions%2F",
        "/api/account%5Csessions",
        "/api/account\\sessions",
        "/api\\account/sessions",
        "/api/account/sessions\\",
        "/api/account/sessions%00",
        "/api/account/sessions%0a",
        "/api/account/sessions%0D%0AX-Injected:%201",
        "/api/account/sessions%7f",
        "/api/account/sessions/%zz",
        "/api/account/sessions/%4",
        "/api/account/sessions/%",
        "/api/../../account/sessions",
        "/api/account/%2e%2e/%2e%2e/%2e%2e/sessions",
        "/api/upload/x/..%2f..%2faccount",
        "/api/upload/x/..%2F..%2Faccount/sessions",
        "/api/user/..%5caccount",
        "/api/user/..\\account",
    ] {
        for token in [None, Some(t.access_token.as_str())] {
            let mut request = h.request("GET", path);
            if let Some(token) = token {
                request = request.token(token);
            }
            let r = request.send().await;
            let what = format!("GET {path} (token: {})", token.is_some());
            assert_refusal(&r, StatusCode::BAD_REQUEST, "BAD_PATH", &what);
        }
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn dot_segments_never_turn_a_session_route_into_a_public_one() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    // Each starts under a public or API-key route and climbs into a session route.
    for (method, path) in [
        ("POST", "/api/auth/login/../../account"),
        ("POST", "/api/auth/register/../../account"),
        ("POST", "/api/auth/refresh/../../account"),
        ("GET", "/api/user/../account"),
        ("GET", "/api/USER/../account"),
        ("GET", "/api/user/%2e%2e/account"),
        ("GET", "/api/user/.%2E/account"),
        ("GET", "/api/user/x/../../account/"),
        ("GET", "/api/user//../account"),
        ("GET", "/api/upload/x/../../account"),
        ("GET", "/api/upload/x/raw/../../../account"),
        ("POST", "/api/3rd-party/upload/../../account"),
        ("PUT", "/api/user/../account/change-password"),
        ("POST", "/api/user/../auth/logout"),
        ("POST", "/api/user/../upload"),
    ] {
        let r = h.request(method, path).send().await;
        let what = format!("{method} {path} without a token");
        assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_MISSING", &what);
        // A public route's garbage token must not help either.
        let r = h
            .request(method, path)
            .header("authorization", "Bearer garbage")
            .send()
            .await;
        let what = format!("{method} {path} with a garbage token");
        assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_INVALID", &what);
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn lookalike_spellings_are_forwarded_only_as_ordinary_session_routes() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    // Express routes none of these to its sessions handlers (it neither strips `;`
    // parameters nor decodes before matching), so the gateway may forward them as session
    // routes: with the caller's identity, never without a token.
    for (path, upstream) in [
        ("/api/account/sessions;x=1", "/account/sessions;x=1"),
        ("/api/account;x=1/sessions", "/account;x=1/sessions"),
        ("/api/account/sessions%20", "/account/sessions%20"),
        ("/api/account/sessions.", "/account/sessions."),
        ("/api/account/sessions.json", "/account/sessions.json"),
        ("/api/account/sessionsx", "/account/sessionsx"),
        ("/api/account/%2573essions", "/account/%2573essions"),
    ] {
        let before = h.uploader.requests().len();
        let r = h.request("GET", path).send().await;
        assert_refusal(&r, StatusCode::UNAUTHORIZED, "TOKEN_MISSING", path);
        assert_eq!(
            upstream_paths_since(&h, before),
            Vec::<String>::new(),
            "{path}"
        );

        let r = h.get(path, &t.access_token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        assert_not_from_uploader_sessions(&r, path);
        let received = h.uploader.requests();
        let received = &received[before..];
        assert_eq!(received.len(), 1, "{path}: one request forwarded");
        assert_eq!(received[0].path_and_query, upstream, "{path}");
        assert_eq!(
            received[0].header("x-sessiongate-user"),
            Some(ALICE.0),
            "{path}"
        );
    }
    // `..;` is not a dot segment for Express either: this stays under the public /user
    // router and never reaches /account.
    let before = h.uploader.requests().len();
    let r = h.request("GET", "/api/user/..;/account").send().await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let paths = upstream_paths_since(&h, before);
    assert_eq!(paths, vec!["GET /user/..;/account".to_string()]);
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn absolute_form_targets_are_answered_by_the_gateway_and_never_proxied_elsewhere() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    let send = |target: &str, token: Option<&str>| {
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: evil.example\r\n");
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        let addr = h.addr();
        async move { raw::exchange(addr, request.as_bytes()).await }
    };
    for target in [
        "http://evil.example/api/account/sessions",
        "http://evil.example/API/Account//Sessions/",
        "http://evil.example/api/user/../account/sessions",
        "http://127.0.0.1:1/api/account/sessions",
    ] {
        let reply = send(target, None).await;
        let [response] = reply.responses.as_slice() else {
            panic!("{target}: one answer: {reply:?}");
        };
        assert_eq!(response.status, 401, "{target}: {response:?}");
        assert_eq!(
            response.code().as_deref(),
            Some("TOKEN_MISSING"),
            "{target}"
        );

        let reply = send(target, Some(&t.access_token)).await;
        let [response] = reply.responses.as_slice() else {
            panic!("{target}: one answer: {reply:?}");
        };
        assert_eq!(response.status, 200, "{target}: {response:?}");
        assert_eq!(response.header("x-served-by"), None, "{target}");
        let body = response.json().expect("JSON");
        assert_eq!(body["total"], json!(1), "{target}: the gateway's own list");
        assert!(body.get("servedBy").is_none(), "{target}: {body}");
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());

    // A forwarded route goes to the configured uploader only, as an origin-form path.
    let reply = send("http://evil.example/api/account", Some(&t.access_token)).await;
    assert_eq!(reply.statuses(), vec![200], "{reply:?}");
    let received = h.uploader.requests();
    let [forwarded] = &received[before..] else {
        panic!(
            "one forwarded request: {:?}",
            upstream_paths_since(&h, before)
        );
    };
    assert_eq!(forwarded.path_and_query, "/account");
    assert_eq!(
        forwarded.header("host"),
        Some(h.uploader.addr().to_string().as_str()),
        "the uploader is asked under its own name"
    );
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn connect_and_asterisk_targets_are_refused() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    for request in [
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
        "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n",
    ] {
        let reply = raw::exchange(h.addr(), request.as_bytes()).await;
        let line = request.lines().next().unwrap_or_default();
        let [response] = reply.responses.as_slice() else {
            panic!("{line}: one answer: {reply:?}");
        };
        if line.starts_with("CONNECT") {
            // The gateway tunnels nothing: CONNECT is refused as a method, whatever its target.
            assert_eq!(response.status, 405, "{line}: {response:?}");
            assert_eq!(
                response.code().as_deref(),
                Some("METHOD_NOT_ALLOWED"),
                "{line}"
            );
        } else {
            // The gateway's 400 BAD_PATH, or hyper's own 400 for a target it cannot parse.
            assert_eq!(response.status, 400, "{line}: {response:?}");
            if let Some(code) = response.code() {
                assert_eq!(code, "BAD_PATH", "{line}");
            }
        }
    }
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn connect_with_a_path_is_not_forwarded() {
    // hyper accepts `CONNECT /path` (origin-form); its client then sends the upstream
    // `CONNECT <upstream host:port>`, a target other than the path the route was classified
    // on, and a 2xx to CONNECT turns a connection into a tunnel. The uploader serves no
    // CONNECT: the gateway should refuse it itself (400 or 405), on any route.
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let auth = format!("Authorization: Bearer {}\r\n", t.access_token);
    for (path, auth) in [("/api/user/x", ""), ("/api/account", auth.as_str())] {
        let before = h.uploader.requests().len();
        let request = format!("CONNECT {path} HTTP/1.1\r\nHost: gateway\r\n{auth}\r\n");
        let reply = raw::exchange(h.addr(), request.as_bytes()).await;
        assert_eq!(
            upstream_paths_since(&h, before),
            Vec::<String>::new(),
            "CONNECT {path} reached the uploader"
        );
        let [response] = reply.responses.as_slice() else {
            panic!("CONNECT {path}: one answer: {reply:?}");
        };
        assert!(
            response.status == 400 || response.status == 405,
            "CONNECT {path}: {response:?}"
        );
    }
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn very_long_paths_are_414_or_431_and_never_forwarded() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    let before = h.uploader.requests().len();
    // Over 4 KiB: the gateway's own 414.
    let long_public = format!("/api/user/{}", "a".repeat(5000));
    let long_dots = format!("/api/{}account/sessions", "./".repeat(2100));
    for path in [&long_public, &long_dots] {
        let r = h.get(path, &t.access_token).await;
        assert_refusal(&r, StatusCode::URI_TOO_LONG, "URI_TOO_LONG", &path[..40]);
    }
    // Over the 16 KiB head limit: the gateway's 431, or 414.
    let huge = format!(
        "GET /api/user/{} HTTP/1.1\r\nHost: gateway\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let reply = raw::exchange(h.addr(), huge.as_bytes()).await;
    let [response] = reply.responses.as_slice() else {
        panic!("one answer: {reply:?}");
    };
    assert!(
        response.status == 414 || response.status == 431,
        "{response:?}"
    );
    assert_eq!(upstream_paths_since(&h, before), Vec::<String>::new());
    assert_still_serving(&h, &t.access_token).await;
}

#[tokio::test]
async fn a_non_ascii_path_is_forwarded_as_sent_or_refused() {
    let h = Harness::start().await;
    let t = h.login(ALICE, CHROME_LINUX).await;
    // hyper (through the `http` crate) accepts UTF-8 in a request target. The gateway must
    // either refuse it or forward the same bytes (raw or percent-encoded), never re-encode
    // them as other characters.
    let before = h.uploader.requests().len();
    let request =
        "GET /api/upload/caf\u{e9} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n";
    let reply = raw::exchange(h.addr(), request.as_bytes()).await;
    let [response] = reply.responses.as_slice() else {
        panic!("one answer: {reply:?}");
    };
    let paths = upstream_paths_since(&h, before);
    if response.status == 400 {
        assert_eq!(paths, Vec::<String>::new(), "refused, and not forwarded");
    } else {
        assert_eq!(response.status, 200, "{response:?}");
        assert!(
            paths == ["GET /upload/caf\u{e9}"] || paths == ["GET /upload/caf%C3%A9"],
            "the uploader received {paths:?}"
        );
    }
    // Nothing about it reaches the account router.
    assert!(!paths.iter().any(|p| reaches_account_router(&p[4..])));
    assert_still_serving(&h, &t.access_token).await;
}
