//! Path normalisation with the route policy: every normalised path is canonical, non-ASCII
//! text is kept or refused, no string panics, and whatever Express would route to the
//! uploader's sessions handlers the gateway answers itself.

use http::Method;
use proptest::prelude::*;
use proptest::sample::select;
use sessiongate::Config;
use sessiongate::routes::{Route, RoutePolicy, normalise_path, strip_prefix};

use crate::canonical::check_canonical;
use crate::express::{express_mounted, express_routes_to_sessions};
use crate::path_strategies::{
    climbable_segment, dot_dot, hostile_path, routed_path, separator, sessions_tail_path, spelling,
};

/// The preset's route policy and API prefix.
fn preset() -> (RoutePolicy, String) {
    let config = Config::from_toml(include_str!("../../config/sessiongate.toml"))
        .expect("the shipped preset parses");
    let settings = config.settings().expect("the preset's routes parse");
    (settings.routes, settings.config.api_prefix)
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
