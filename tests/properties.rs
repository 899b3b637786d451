//! Property tests of the two parsers every request goes through: path normalisation with the
//! route policy, and token reading and verification. Case counts are proptest's default (256).

use http::{HeaderMap, HeaderValue, Method};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;
use sessiongate::Config;
use sessiongate::auth::{TokenRejection, TokenVerifier, bearer_token};
use sessiongate::routes::{Route, RoutePolicy, normalise_path, strip_prefix};

// ---------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------

/// The preset's route policy and API prefix.
fn preset() -> (RoutePolicy, String) {
    let config = Config::from_toml(include_str!("../config/sessiongate.toml"))
        .expect("the shipped preset parses");
    let patterns = config.route_patterns().expect("the preset's routes parse");
    (
        RoutePolicy::new(&config.sessions.endpoint, patterns),
        config.api_prefix.clone(),
    )
}

/// Whether a route is answered by the gateway as a sessions endpoint.
fn is_sessions_route(route: &Route) -> bool {
    matches!(
        route,
        Route::ListSessions
            | Route::RevokeAllSessions
            | Route::RevokeSession(_)
            | Route::SessionsMethodNotAllowed(_)
    )
}

/// The path Express 4 hands to a router mounted at `mount` (case-insensitive, one optional
/// slash swallowed), as the uploader's `app.use` does; `None` if not under it.
fn express_mounted(path: &str, mount: &str) -> Option<String> {
    let head = path.get(..mount.len())?;
    if !head.eq_ignore_ascii_case(mount) {
        return None;
    }
    let mut rest = &path[mount.len()..];
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if rest.starts_with('/') && (rest.len() == 1 || rest[1..].starts_with('/')) {
        rest = &rest[1..];
    }
    Some(if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    })
}

/// Whether Express would route `method path` to the uploader's own sessions handlers:
/// `GET`/`HEAD`/`DELETE /account/sessions` or `DELETE /account/sessions/:id`, matched
/// case-insensitively with an optional trailing slash, nothing decoded.
fn express_routes_to_sessions(method: &Method, path: &str) -> bool {
    let Some(sub) = express_mounted(path, "/account") else {
        return false;
    };
    let sub = sub.strip_suffix('/').unwrap_or(&sub);
    let on_list = sub.eq_ignore_ascii_case("/sessions");
    let with_id = sub.len() > "/sessions/".len()
        && sub[.."/sessions/".len()].eq_ignore_ascii_case("/sessions/")
        && !sub["/sessions/".len()..].contains('/');
    match *method {
        Method::GET | Method::HEAD => on_list,
        Method::DELETE => on_list || with_id,
        _ => false,
    }
}

/// Checks the canonical-form promises of `normalise_path` on one of its outputs.
fn check_canonical(out: &str) -> Result<(), TestCaseError> {
    prop_assert!(out.starts_with('/'), "{out:?} starts with /");
    prop_assert!(!out.contains("//"), "{out:?} has no empty segment");
    for segment in out[1..].split('/') {
        prop_assert!(
            segment != "." && segment != "..",
            "{out:?} has a dot segment"
        );
    }
    prop_assert!(
        !out.bytes().any(|b| b == b'\\' || b.is_ascii_control()),
        "{out:?}"
    );
    let bytes = out.as_bytes();
    for (i, _) in out.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        let hex = hex.and_then(|h| std::str::from_utf8(h).ok());
        let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
        prop_assert!(value.is_some(), "{out:?}: a complete escape at {i}");
        let (hex, value) = (hex.unwrap_or_default(), value.unwrap_or_default());
        prop_assert_eq!(
            hex,
            hex.to_ascii_uppercase(),
            "{:?}: upper-case escapes",
            out
        );
        let unreserved = value.is_ascii_alphanumeric() || b"-._~".contains(&value);
        prop_assert!(!unreserved, "{out:?}: an encoded unreserved character");
        prop_assert!(value != b'/' && value != b'\\' && !value.is_ascii_control());
    }
    prop_assert_eq!(normalise_path(out), Ok(out.to_string()), "idempotent");
    Ok(())
}

/// Pieces of hostile paths: separators, dots, escapes, letters, `;` and `\`.
fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("/".to_string()),
        3 => Just(".".to_string()),
        3 => Just("..".to_string()),
        2 => Just("%".to_string()),
        3 => "[0-9a-fA-F]",
        3 => "[a-zA-Z]",
        1 => Just(";".to_string()),
        1 => Just("\\".to_string()),
        3 => select(vec!["%2e", "%2E", "%2f", "%2F", "%5c", "%41", "%7e", "%7E", "%25", "%00", "%20", "%3B", "%3b", "%e9"])
            .prop_map(String::from),
        3 => select(vec!["api", "API", "account", "Account", "sessions", "SESSIONS", "user", "upload", "auth", "login"])
            .prop_map(String::from),
    ]
}

/// A path from those pieces, nearly always starting with `/`.
fn hostile_path() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.95),
        prop::collection::vec(path_piece(), 0..40),
    )
        .prop_map(|(rooted, pieces)| {
            let mut path = if rooted {
                "/".to_string()
            } else {
                String::new()
            };
            path.push_str(&pieces.concat());
            path
        })
}

/// A spelling of `word`: each letter lower, upper, or percent-encoded (either hex case).
fn spelling(word: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..5, word.len()).prop_map(move |choices| {
        word.chars()
            .zip(choices)
            .map(|(c, choice)| match choice {
                0 | 1 => c.to_string(),
                2 => c.to_ascii_uppercase().to_string(),
                3 => format!("%{:02x}", c as u8),
                _ => format!("%{:02X}", c.to_ascii_uppercase() as u8),
            })
            .collect()
    })
}

/// A segment to climb out of with `..`: public and API-key route segments and others.
fn climbable_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "user",
            "USER",
            "upload",
            "3rd-party",
            "auth",
            "login",
            "register",
            "refresh",
            "raw",
            "x",
            "abc"
        ])
        .prop_map(String::from),
        "[a-z0-9;~-]{1,8}".prop_filter("not a dot segment", |s| s != "." && s != ".."),
    ]
}

/// `..` spelled plainly or with encoded dots.
fn dot_dot() -> impl Strategy<Value = String> {
    select(vec!["..", "%2e%2e", "%2E%2E", ".%2e", "%2E."]).prop_map(String::from)
}

/// Separators between segments that add nothing: `/`, `//`, `/./`.
fn separator() -> impl Strategy<Value = String> {
    select(vec!["/", "/", "//", "/./", "/%2e/"]).prop_map(String::from)
}

/// A segment of a path under the API prefix: the sessions endpoint's words in any spelling,
/// dot segments, route segments, ids, and hostile pieces.
fn routed_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => spelling("account"),
        4 => spelling("sessions"),
        2 => dot_dot(),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        2 => climbable_segment(),
        1 => "[0-9a-f]{24}",
        1 => prop::collection::vec(path_piece(), 1..4).prop_map(|pieces| pieces.concat()),
    ]
}

/// `/api` (any spelling) followed by routed segments, sometimes with a trailing slash.
fn routed_path() -> impl Strategy<Value = String> {
    (
        spelling("api"),
        prop::collection::vec((separator(), routed_segment()), 0..7),
        any::<bool>(),
    )
        .prop_map(|(api, segments, trailing_slash)| {
            let mut path = format!("/{api}");
            for (separator, segment) in segments {
                path.push_str(&separator);
                path.push_str(&segment);
            }
            if trailing_slash {
                path.push('/');
            }
            path
        })
}

/// A routed path ending in a spelling of the sessions endpoint, with or without an id.
fn sessions_tail_path() -> impl Strategy<Value = String> {
    (
        routed_path(),
        separator(),
        spelling("account"),
        separator(),
        spelling("sessions"),
        prop::option::of(("/|//", "[0-9a-zA-Z%;.]{1,24}")),
        prop::option::of("/|//"),
    )
        .prop_map(|(head, s1, account, s2, sessions, id, trailing)| {
            let (id_separator, id) = id.unwrap_or_default();
            let trailing = trailing.unwrap_or_default();
            format!("{head}{s1}{account}{s2}{sessions}{id_separator}{id}{trailing}")
        })
}

proptest! {
    #[test]
    fn normalised_paths_are_canonical_and_idempotent(
        raw in prop_oneof![hostile_path(), routed_path()]
    ) {
        if let Ok(out) = normalise_path(&raw) {
            check_canonical(&out)?;
        }
    }

    #[test]
    fn non_ascii_text_is_kept_as_sent_or_refused(
        raw in "/[a-z/.]{0,6}[\u{e9}\u{fc}\u{65e5}\u{1f600}]{1,3}[a-z/.]{0,6}"
    ) {
        // hyper accepts UTF-8 in a request target (the `http` crate checks it is valid
        // UTF-8); the canonical path carries the same characters as UTF-8 percent-escapes
        // (which Express decodes to the same text), not their bytes re-read as Latin-1.
        if let Ok(out) = normalise_path(&raw) {
            prop_assert!(out.is_ascii(), "{:?} -> {:?}", raw, out);
            let non_ascii = |s: &str| s.chars().filter(|c| !c.is_ascii()).collect::<String>();
            // Dot segments may legitimately remove a segment; without them nothing is lost.
            let no_dots = !raw.contains('.');
            prop_assert!(!no_dots || non_ascii(&percent_decode(&out)) == non_ascii(&raw));
            prop_assert_eq!(
                non_ascii(&percent_decode(&out)).chars().count() <= non_ascii(&raw).chars().count(),
                true,
                "{:?} -> {:?}: characters invented",
                raw,
                out
            );
            prop_assert_eq!(normalise_path(&out), Ok(out.clone()), "idempotent");
        }
    }

    #[test]
    fn any_string_normalises_without_panicking(raw in any::<String>()) {
        let _ = normalise_path(&raw);
        let _ = normalise_path(&format!("/{raw}"));
    }

    #[test]
    fn climbing_out_of_any_route_into_the_sessions_endpoint_is_still_the_endpoint(
        prefix in spelling("api"),
        climbed in prop::collection::vec((climbable_segment(), separator()), 1..5),
        dots in prop::collection::vec((dot_dot(), separator()), 5),
        account in spelling("account"),
        middle in separator(),
        sessions in spelling("sessions"),
        id in prop::option::of("[0-9a-f]{24}"),
        trailing_slash in any::<bool>(),
        method in select(vec![Method::GET, Method::HEAD, Method::DELETE, Method::POST, Method::PUT]),
    ) {
        let (policy, api_prefix) = preset();
        // `/api/<climbed...>/<as many ..>/account/sessions[/id][/]`
        let mut raw = format!("/{prefix}");
        for (segment, sep) in &climbed {
            raw.push_str(sep);
            raw.push_str(segment);
        }
        for (dots, sep) in dots.iter().take(climbed.len()) {
            raw.push_str(sep);
            raw.push_str(dots);
        }
        raw.push('/');
        raw.push_str(&account);
        raw.push_str(&middle);
        raw.push_str(&sessions);
        if let Some(id) = &id {
            raw.push('/');
            raw.push_str(id);
        }
        if trailing_slash {
            raw.push('/');
        }
        let normalised = normalise_path(&raw);
        prop_assert!(normalised.is_ok(), "{raw:?}: {normalised:?}");
        let normalised = normalised.unwrap_or_default();
        let api_path = strip_prefix(&normalised, &api_prefix);
        prop_assert!(api_path.is_some(), "{raw:?} -> {normalised:?} stays under the prefix");
        let route = policy.classify(&method, api_path.unwrap_or_default());
        let plain = match &id {
            Some(id) => format!("/account/sessions/{id}"),
            None => "/account/sessions".to_string(),
        };
        prop_assert!(is_sessions_route(&route), "{raw:?} -> {normalised:?}: {route:?}");
        prop_assert_eq!(route, policy.classify(&method, &plain), "{:?}", raw);
    }

    #[test]
    fn what_express_routes_to_its_sessions_handlers_the_gateway_answers_itself(
        raw in prop_oneof![1 => hostile_path(), 2 => routed_path(), 2 => sessions_tail_path()],
        method in select(vec![Method::GET, Method::HEAD, Method::DELETE, Method::POST]),
    ) {
        let (policy, api_prefix) = preset();
        let Ok(normalised) = normalise_path(&raw) else { return Ok(()); };
        let Some(api_path) = strip_prefix(&normalised, &api_prefix) else { return Ok(()); };
        // The gateway forwards `api_path`: it is exactly what the uploader's router sees.
        let route = policy.classify(&method, api_path);
        if express_routes_to_sessions(&method, api_path) {
            prop_assert!(is_sessions_route(&route), "{raw:?} -> {api_path:?}: {route:?}");
        }
        if matches!(route, Route::Public | Route::ApiKey) {
            prop_assert!(
                express_mounted(api_path, "/account").is_none(),
                "{raw:?} -> {api_path:?} is public but reaches the account router"
            );
        }
    }
}

#[test]
fn the_canonical_checker_refuses_non_canonical_spellings() {
    // So the property above cannot pass vacuously.
    for bad in [
        "a", "/a//b", "/a/./b", "/a/../b", "/.", "/%41", "/%7e", "/%3a", "/%2F", "/%5C", "/%0A",
        "/%4", "/a\\b",
    ] {
        assert!(check_canonical(bad).is_err(), "{bad:?}");
    }
    for good in ["/", "/a/b", "/a/b/", "/%3A", "/%25", "/a;b", "/%E9"] {
        assert!(check_canonical(good).is_ok(), "{good:?}");
    }
}

#[test]
fn the_express_model_agrees_with_the_stand_in_on_known_spellings() {
    // The same cases the stand-in's own router tests use, so the model cannot drift into
    // vacuity.
    for path in [
        "/account/sessions",
        "/ACCOUNT/Sessions/",
        "/account//sessions",
    ] {
        assert!(express_routes_to_sessions(&Method::GET, path), "{path}");
    }
    assert!(express_routes_to_sessions(
        &Method::DELETE,
        "/account//sessions/ABC/"
    ));
    for path in [
        "/account/sessions//",
        "/account///sessions",
        "/account/%73essions",
        "//account/sessions",
    ] {
        assert!(!express_routes_to_sessions(&Method::GET, path), "{path}");
    }
    assert!(!express_routes_to_sessions(
        &Method::DELETE,
        "/account/sessions/a/b"
    ));
    assert!(!express_routes_to_sessions(
        &Method::POST,
        "/account/sessions"
    ));
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

const SECRET: &[u8] = b"property-test-secret";
const NOW_MS: i64 = 1_700_000_000_000;

fn verifier() -> TokenVerifier {
    TokenVerifier::new(SECRET, Algorithm::HS256, 5, None)
}

/// A token as the uploader issues it, valid at [`NOW_MS`].
fn valid_token() -> String {
    let now = NOW_MS / 1000;
    let claims = json!({"sub": "5f4bff121037e424a17a3ebc", "iat": now, "exp": now + 300});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("signs")
}

/// One way to damage a token.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the character at this position (modulo the length).
    Replace(usize, char),
    /// Replace one of the last few characters (where base64's unused bits live).
    ReplaceNearEnd(usize, char),
    /// Insert a character.
    Insert(usize, char),
    /// Delete a character.
    Delete(usize),
    /// Keep only this many characters.
    Truncate(usize),
    /// Repeat one of the three segments in place (`a.b.b.c`).
    DuplicateSegment(usize),
    /// Swap two segments.
    SwapSegments(usize, usize),
}

fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => select(vec!['.', '=', '+', '/', ' ', '\u{e9}']),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), token_char()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (0usize..4, token_char()).prop_map(|(i, c)| Mutation::ReplaceNearEnd(i, c)),
        (any::<usize>(), token_char()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (0usize..3).prop_map(Mutation::DuplicateSegment),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let len = chars.len();
    match *mutation {
        Mutation::Replace(i, c) => chars[i % len] = c,
        Mutation::ReplaceNearEnd(i, c) => chars[len - 1 - i % len] = c,
        Mutation::Insert(i, c) => chars.insert(i % (len + 1), c),
        Mutation::Delete(i) => {
            chars.remove(i % len);
        }
        Mutation::Truncate(n) => chars.truncate(n % len),
        Mutation::DuplicateSegment(s) => {
            let mut segments: Vec<&str> = token.split('.').collect();
            let s = s % segments.len();
            let segment = segments[s];
            segments.insert(s, segment);
            return segments.join(".");
        }
        Mutation::SwapSegments(a, b) => {
            let mut segments: Vec<&str> = token.split('.').collect();
            let n = segments.len();
            segments.swap(a % n, b % n);
            return segments.join(".");
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_valid_token_verifies() {
    let claims = verifier().verify(&valid_token(), NOW_MS).expect("verifies");
    assert_eq!(claims.sub, "5f4bff121037e424a17a3ebc");
}

#[test]
fn a_signature_with_other_unused_trailing_bits_does_not_verify() {
    // The 43-character signature's last character carries 2 unused bits; a lenient base64
    // decoder would accept the re-spelled signature, giving a second valid spelling (and a
    // second token hash) of one token.
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let token = valid_token();
    let last = token.chars().last().expect("non-empty");
    let index = ALPHABET.find(last).expect("base64url");
    for other in 1..4 {
        let respelled = ALPHABET.as_bytes()[index ^ other] as char;
        let mutated = format!("{}{respelled}", &token[..token.len() - 1]);
        assert_eq!(
            verifier().verify(&mutated, NOW_MS).map(|c| c.sub),
            Err(TokenRejection::Invalid),
            "{mutated}"
        );
    }
}

proptest! {
    #[test]
    fn mutated_tokens_never_verify(mutations in prop::collection::vec(mutation(), 1..4)) {
        let original = valid_token();
        let mut token = original.clone();
        for mutation in &mutations {
            token = apply(&token, mutation);
            if token.is_empty() {
                break;
            }
        }
        let verdict = verifier().verify(&token, NOW_MS);
        if token == original {
            prop_assert!(verdict.is_ok());
        } else {
            prop_assert!(verdict.is_err(), "{token:?} verified after {mutations:?}");
        }
    }

    #[test]
    fn arbitrary_strings_never_verify(
        text in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_.-]{0,300}",
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,50}",
        ]
    ) {
        prop_assert!(verifier().verify(&text, NOW_MS).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_verify(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verifier().verify(&text, NOW_MS).is_err());
    }

    #[test]
    fn bearer_token_never_panics_and_returns_a_trimmed_part_of_the_value(
        values in prop::collection::vec(
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..80),
                "(Bearer|bearer|BEARER|Basic|)[ \t]{0,3}[ -~]{0,40}".prop_map(String::into_bytes),
            ],
            0..3,
        )
    ) {
        let mut headers = HeaderMap::new();
        for value in &values {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(http::header::AUTHORIZATION, value);
            }
        }
        let count = headers.get_all(http::header::AUTHORIZATION).iter().count();
        match bearer_token(&headers) {
            Ok(token) => {
                prop_assert_eq!(count, 1, "one header only");
                prop_assert!(!token.is_empty());
                prop_assert_eq!(token, token.trim());
                let value = headers[http::header::AUTHORIZATION].to_str().unwrap_or_default();
                let (scheme, rest) = value.split_once(' ').unwrap_or(("", ""));
                prop_assert!(scheme.eq_ignore_ascii_case("bearer"), "{value:?}");
                prop_assert_eq!(rest.trim(), token);
            }
            Err(TokenRejection::Missing) => prop_assert!(count <= 1),
            Err(TokenRejection::Invalid) => {}
            Err(other) => prop_assert!(false, "bearer_token returned {other:?}"),
        }
        if count >= 2 {
            prop_assert_eq!(bearer_token(&headers), Err(TokenRejection::Invalid));
        }
    }
}

/// `%XX` escapes decoded to bytes, read as UTF-8 (lossily).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
