//! The paths the path properties are tried on: hostile pieces thrown together, and paths under
//! the API prefix built from the sessions endpoint's words in any spelling, dot segments and
//! route segments.

use proptest::prelude::*;
use proptest::sample::select;

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
pub(crate) fn hostile_path() -> impl Strategy<Value = String> {
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
pub(crate) fn spelling(word: &'static str) -> impl Strategy<Value = String> {
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
pub(crate) fn climbable_segment() -> impl Strategy<Value = String> {
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
pub(crate) fn dot_dot() -> impl Strategy<Value = String> {
    select(vec!["..", "%2e%2e", "%2E%2E", ".%2e", "%2E."]).prop_map(String::from)
}

/// Separators between segments that add nothing: `/`, `//`, `/./`.
pub(crate) fn separator() -> impl Strategy<Value = String> {
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
pub(crate) fn routed_path() -> impl Strategy<Value = String> {
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
pub(crate) fn sessions_tail_path() -> impl Strategy<Value = String> {
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
