use super::*;
use crate::config::Config;

fn policy() -> RoutePolicy {
    Config::default()
        .settings()
        .expect("the default routes parse")
        .routes
}

fn classify(method: &str, raw_path: &str) -> Route {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let path = normalise_path(raw_path).expect("normalises");
    policy().classify(&method, &path)
}

#[test]
fn normalisation_gives_one_canonical_spelling() {
    let cases = [
        ("/", "/"),
        ("/account/sessions", "/account/sessions"),
        ("/account/sessions/", "/account/sessions/"),
        ("//account///sessions", "/account/sessions"),
        ("/account/./sessions", "/account/sessions"),
        ("/account/x/../sessions", "/account/sessions"),
        ("/auth/login/../../account", "/account"),
        ("/account/sessions/.", "/account/sessions/"),
        ("/account/sessions/x/..", "/account/sessions/"),
        ("/%61ccount/%73essions", "/account/sessions"),
        ("/account/%2e%2e/x", "/x"),
        ("/account/%2E/sessions", "/account/sessions"),
        ("/a%20b/c%3bd", "/a%20b/c%3Bd"),
        ("/a/%25/b", "/a/%25/b"),
        ("/a;b=c/d", "/a;b=c/d"),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalise_path(raw).as_deref(), Ok(expected), "{raw}");
    }
}

#[test]
fn ambiguous_spellings_are_refused() {
    let cases = [
        ("*", PathRejection::NotAPath),
        ("account", PathRejection::NotAPath),
        ("/account%2Fsessions", PathRejection::AmbiguousCharacter),
        ("/account%2fsessions", PathRejection::AmbiguousCharacter),
        ("/account%5Csessions", PathRejection::AmbiguousCharacter),
        ("/account\\sessions", PathRejection::AmbiguousCharacter),
        ("/account%00", PathRejection::AmbiguousCharacter),
        ("/a%0d%0aX: y", PathRejection::AmbiguousCharacter),
        ("/a%", PathRejection::BadEncoding),
        ("/a%4", PathRejection::BadEncoding),
        ("/a%zz", PathRejection::BadEncoding),
        ("/..", PathRejection::AboveRoot),
        ("/a/../../b", PathRejection::AboveRoot),
        ("/%2e%2e/etc", PathRejection::AboveRoot),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalise_path(raw), Err(expected), "{raw}");
    }
    let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
    assert_eq!(normalise_path(&long), Err(PathRejection::TooLong));
    // Found by fuzzing: escaping non-ASCII bytes triples them, so a path under the limit as
    // sent can be over it once canonical; it is refused rather than forwarded over-long.
    let expands = format!("/{}", "é".repeat(MAX_PATH_LEN / 3));
    assert!(expands.len() <= MAX_PATH_LEN);
    assert_eq!(normalise_path(&expands), Err(PathRejection::TooLong));
}

#[test]
fn normalising_twice_changes_nothing() {
    for raw in ["/a/./b/../c//d/", "/%41%2e%7e/x%20", "/x/%252F"] {
        let once = normalise_path(raw).expect("once");
        assert_eq!(normalise_path(&once).as_deref(), Ok(once.as_str()), "{raw}");
    }
}

#[test]
fn prefix_is_removed_case_insensitively_on_a_segment_boundary() {
    assert_eq!(strip_prefix("/api/auth/login", "/api"), Some("/auth/login"));
    assert_eq!(strip_prefix("/API/auth/login", "/api"), Some("/auth/login"));
    assert_eq!(strip_prefix("/api", "/api"), Some("/"));
    assert_eq!(strip_prefix("/api/", "/api"), Some("/"));
    assert_eq!(strip_prefix("/apix/auth", "/api"), None);
    assert_eq!(strip_prefix("/other", "/api"), None);
    assert_eq!(strip_prefix("/x", ""), Some("/x"));
}

#[test]
fn every_express_spelling_of_the_sessions_endpoints_is_ours() {
    for path in [
        "/account/sessions",
        "/account/sessions/",
        "/Account/Sessions",
        "/ACCOUNT/SESSIONS/",
        "//account//sessions",
        "/account/x/../sessions",
        "/%61ccount/sessions",
    ] {
        assert_eq!(classify("GET", path), Route::ListSessions, "{path}");
        assert_eq!(classify("HEAD", path), Route::ListSessions, "{path}");
        assert_eq!(classify("DELETE", path), Route::RevokeAllSessions, "{path}");
        assert_eq!(
            classify("POST", path),
            Route::SessionsMethodNotAllowed("GET, HEAD, DELETE"),
            "{path}"
        );
    }
    let id = "5fe00728d0adc5576af8684f";
    for path in [
        format!("/account/sessions/{id}"),
        format!("/account/sessions/{id}/"),
        format!("/ACCOUNT/sessions/{id}"),
    ] {
        assert_eq!(
            classify("DELETE", &path),
            Route::RevokeSession(id.into()),
            "{path}"
        );
        assert_eq!(
            classify("GET", &path),
            Route::SessionsMethodNotAllowed("DELETE"),
            "{path}"
        );
    }
}

#[test]
fn the_uploader_route_table_classifies_as_the_issue_says() {
    assert_eq!(classify("POST", "/auth/login"), Route::Login);
    assert_eq!(classify("POST", "/Auth/Login/"), Route::Login);
    assert_eq!(classify("POST", "/auth/two-factor"), Route::Login);
    assert_eq!(classify("POST", "/auth/refresh"), Route::Refresh);
    assert_eq!(classify("POST", "/auth/logout"), Route::Logout);
    assert_eq!(
        classify("PUT", "/account/change-password"),
        Route::EndAllSessions
    );
    assert_eq!(classify("POST", "/3rd-party/upload"), Route::ApiKey);
    assert_eq!(classify("POST", "/auth/register"), Route::Public);
    assert_eq!(classify("POST", "/user/reset-password"), Route::Public);
    assert_eq!(classify("GET", "/user/activate/abc/def"), Route::Public);
    assert_eq!(classify("GET", "/upload/abc"), Route::Public);
    assert_eq!(classify("GET", "/upload/abc/raw"), Route::Public);
    // Everything else needs a session, default-deny.
    assert_eq!(classify("GET", "/account"), Route::Session);
    assert_eq!(classify("DELETE", "/upload/abc"), Route::Session);
    assert_eq!(classify("GET", "/upload/abc/raw/more"), Route::Session);
    assert_eq!(classify("GET", "/user"), Route::Session);
    assert_eq!(classify("GET", "/auth/login"), Route::Session);
    assert_eq!(classify("POST", "/upload"), Route::Session);
    assert_eq!(classify("POST", "/auth/login;x"), Route::Session);
    assert_eq!(classify("POST", "/auth/loginx"), Route::Session);
    assert_eq!(classify("GET", "/"), Route::Session);
    // A public prefix climbed out of is classified where it lands.
    assert_eq!(
        classify("POST", "/auth/login/../../account"),
        Route::Session
    );
    assert_eq!(
        classify("GET", "/upload/x/../../account/sessions"),
        Route::ListSessions
    );
}

#[test]
fn patterns_parse_and_match() {
    let p = RoutePattern::parse("GET /upload/:id/raw").expect("parses");
    assert!(p.matches(&Method::GET, "/upload/abc/raw"));
    assert!(p.matches(&Method::GET, "/UPLOAD/abc/RAW/"));
    assert!(!p.matches(&Method::POST, "/upload/abc/raw"));
    assert!(!p.matches(&Method::GET, "/upload/raw"));
    let any = RoutePattern::parse("* /user/*").expect("parses");
    assert!(any.matches(&Method::PATCH, "/user/a/b/c"));
    assert!(!any.matches(&Method::GET, "/user"));
    assert!(!any.matches(&Method::GET, "/user/"));
    for bad in [
        "POST",
        "post /x",
        "POST x",
        "GET /a/*/b",
        "GET /a/%41",
        "GET /a//b",
    ] {
        assert!(RoutePattern::parse(bad).is_err(), "{bad}");
    }
}

mod first_segments {
    use super::*;
    use proptest::prelude::*;

    /// Paths made of the route table's own segments, in any case, and a few others.
    fn path() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just("auth"),
            Just("AUTH"),
            Just("login"),
            Just("user"),
            Just("User"),
            Just("upload"),
            Just("raw"),
            Just("3rd-party"),
            Just("account"),
            Just("change-password"),
            Just("sessions"),
            Just("abc"),
            Just(""),
        ];
        proptest::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::PUT),
            Just(Method::DELETE),
            Just(Method::PATCH),
        ]
    }

    #[test]
    fn a_pattern_not_starting_with_a_literal_turns_the_shortcut_off() {
        let patterns = |public: &[&str]| RoutePatterns {
            public: public
                .iter()
                .map(|p| RoutePattern::parse(p).expect("parses"))
                .collect(),
            ..RoutePatterns::default()
        };
        let literal = RoutePolicy::new("/account/sessions", patterns(&["GET /Upload/:id"]));
        assert_eq!(literal.first_segments, Some(vec!["upload".to_string()]));
        let param = RoutePolicy::new("/account/sessions", patterns(&["GET /:user/files"]));
        assert_eq!(param.first_segments, None);
        assert_eq!(param.classify(&Method::GET, "/alice/files"), Route::Public);
        let root = RoutePolicy::new("/account/sessions", patterns(&["GET /"]));
        assert_eq!(root.first_segments, None);
        assert_eq!(root.classify(&Method::GET, "/"), Route::Public);
    }

    proptest! {
        /// The shortcut on the first segment never changes a route.
        #[test]
        fn the_shortcut_classifies_as_the_lists_do(method in method(), path in path()) {
            let with = policy();
            prop_assert!(with.first_segments.is_some(), "the shipped table has the shortcut");
            let without = RoutePolicy { first_segments: None, ..with.clone() };
            prop_assert_eq!(with.classify(&method, &path), without.classify(&method, &path));
        }
    }
}

mod fast_path {
    use super::*;
    use proptest::prelude::*;

    /// Paths from an alphabet that makes every case: separators, dots, escapes, a backslash,
    /// non-ASCII, control characters, unreserved characters.
    fn raw_path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/"),
            Just("."),
            Just(".."),
            Just("a"),
            Just("B"),
            Just("%2F"),
            Just("%41"),
            Just("%"),
            Just("\\"),
            Just("é"),
            Just("~"),
            Just("\t"),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        /// The borrowed fast path is taken only where the rewrite gives the path back as it
        /// is, and the two always agree.
        #[test]
        fn the_fast_path_agrees_with_the_rewrite(raw in raw_path()) {
            let rewritten = rewrite_path(&raw);
            if is_canonical(&raw) {
                prop_assert_eq!(rewritten.as_deref(), Ok(raw.as_str()));
            }
            prop_assert_eq!(canonical_path(&raw).map(Cow::into_owned), rewritten);
        }

        /// The byte-wise split gives what `str::split('/')` gives, non-ASCII text included.
        #[test]
        fn slashes_separate_as_str_split_does(raw in raw_path()) {
            let ours: Vec<&str> = slash_separated(&raw).collect();
            prop_assert_eq!(ours, raw.split('/').collect::<Vec<_>>());
        }

        /// Segments split on the stack or on the heap are the same segments.
        #[test]
        fn long_paths_split_as_short_ones(count in 0usize..40) {
            let path = format!("/{}", vec!["seg"; count].join("/"));
            let expected: Vec<&str> = path[1..].split('/').filter(|s| !s.is_empty()).collect();
            prop_assert_eq!(match_segments(&path), expected);
        }
    }
}
