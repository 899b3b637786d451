//! The header rules, message by message: what is removed, what is kept, what is set.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::sessions::SessionId;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    map
}

fn names(map: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = map.keys().map(|n| n.as_str().to_string()).collect();
    names.sort();
    names
}

fn identity() -> IdentityHeaders {
    IdentityHeaders {
        user: HeaderName::from_static("x-user-id"),
        session: HeaderName::from_static("x-session-id"),
    }
}

#[test]
fn each_stripped_name_is_matched_at_its_own_place() {
    for (at, name) in STRIPPED.iter().enumerate() {
        assert_eq!(stripped_index(name.as_str().as_bytes()), Some(at), "{name}");
    }
    // Host is set over the client's, never removed.
    for other in ["content-length", "authorization", "x-custom", "t", "host"] {
        assert_eq!(stripped_index(other.as_bytes()), None, "{other}");
    }
    assert_eq!(STRIPPED[0], header::CONNECTION, "CONNECTION_BIT is bit 0");
    assert_eq!(STRIPPED[HOP_BY_HOP_LEN - 1], header::UPGRADE);
}

#[test]
fn a_response_loses_its_hop_by_hop_headers_and_those_its_connection_names() {
    let mut map = headers(&[
        ("content-type", "application/json"),
        ("connection", "keep-alive, X-Trace"),
        ("connection", "close"),
        ("keep-alive", "timeout=5"),
        ("x-trace", "abc"),
        ("transfer-encoding", "chunked"),
        ("trailer", "expires"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("proxy-authenticate", "Basic"),
        ("proxy-connection", "keep-alive"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        // Only a request's headers lose these.
        ("host", "example.test"),
        ("x-forwarded-for", "6.6.6.6"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(
        names(&map),
        ["content-type", "host", "set-cookie", "x-forwarded-for"]
    );
    assert_eq!(map.get_all("set-cookie").iter().count(), 2);
}

#[test]
fn a_message_without_any_of_them_is_left_as_it_is() {
    let pairs = [
        ("content-type", "text/plain"),
        ("content-length", "5"),
        ("date", "Fri, 04 Dec 2026 18:00:00 GMT"),
    ];
    let mut map = headers(&pairs);
    strip_hop_by_hop(&mut map);
    assert_eq!(map, headers(&pairs));
}

#[test]
fn a_request_keeps_its_own_headers_and_gets_the_gateways() {
    let mut map = headers(&[
        ("host", "gateway.test"),
        ("host", "second.test"),
        ("authorization", "Bearer t"),
        ("accept", "*/*"),
        ("connection", "x-custom"),
        ("x-custom", "1"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.test"),
        ("x-user-id", "mallory"),
        ("x-session-id", "forged"),
    ]);
    let client = ClientInfo::new(SocketAddr::from(([127, 0, 0, 1], 40000)), false);
    prepare_request_headers(
        &mut map,
        &client,
        &identity(),
        Some(CallerValues {
            user: Some(HeaderValue::from_static("alice")),
            session: HeaderValue::from_static("0123456789abcdef01234567"),
        }),
        HeaderValue::from_static("127.0.0.1:3000"),
        Some(HeaderValue::from_static("gateway.test")),
    );
    let expected = [
        ("accept", "*/*"),
        ("authorization", "Bearer t"),
        ("host", "127.0.0.1:3000"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-host", "gateway.test"),
        ("x-forwarded-proto", "http"),
        ("x-session-id", "0123456789abcdef01234567"),
        ("x-user-id", "alice"),
    ];
    assert_eq!(
        names(&map),
        expected.iter().map(|(n, _)| *n).collect::<Vec<_>>()
    );
    for (name, value) in expected {
        assert_eq!(
            map.get_all(name).iter().collect::<Vec<_>>(),
            [value],
            "{name}"
        );
    }
}

#[test]
fn without_a_caller_the_clients_identity_headers_are_removed_and_none_set() {
    let mut map = headers(&[("x-user-id", "mallory"), ("x-session-id", "forged")]);
    let client = ClientInfo::new(SocketAddr::from(([10, 0, 0, 7], 40000)), true);
    let upstream = HeaderValue::from_static("uploader:3000");
    prepare_request_headers(&mut map, &client, &identity(), None, upstream, None);
    assert_eq!(
        names(&map),
        ["host", "x-forwarded-for", "x-forwarded-proto"]
    );
    assert_eq!(map["host"], "uploader:3000");
    assert_eq!(map["x-forwarded-for"], "10.0.0.7");
    assert_eq!(map["x-forwarded-proto"], "https");
}

#[test]
fn a_websocket_upgrade_needs_both_headers() {
    let asks = |pairs: &[(&str, &str)]| websocket_upgrade(&headers(pairs));
    assert_eq!(
        asks(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket")
        ]),
        Some(HeaderValue::from_static("WebSocket"))
    );
    assert_eq!(
        asks(&[("upgrade", "websocket")]),
        None,
        "no Connection: upgrade"
    );
    assert_eq!(asks(&[("connection", "upgrade")]), None, "no Upgrade");
    assert_eq!(
        asks(&[("connection", "upgrade"), ("upgrade", "h2c")]),
        None,
        "only WebSocket is carried"
    );
}

#[test]
fn every_valid_option_of_connection_counts_whatever_its_case_or_its_neighbours() {
    let mut map = headers(&[
        ("connection", " X-One ,, Keep-Alive,CLOSE"),
        ("connection", "x-two, bad name, upgrade"),
        ("x-one", "1"),
        ("x-two", "2"),
        ("x-three", "3"),
    ]);
    // A value with a byte outside visible ASCII still names its headers.
    map.append(
        header::CONNECTION,
        HeaderValue::from_bytes(b"x-three, caf\xe9").expect("obs-text is a valid value"),
    );
    strip_hop_by_hop(&mut map);
    assert!(map.is_empty(), "{map:?}");
}

#[test]
fn close_and_the_hop_by_hop_names_are_covered_in_any_case() {
    for name in &STRIPPED[..HOP_BY_HOP_LEN] {
        let name = name.as_str();
        assert!(covered_option(name.as_bytes()), "{name}");
        assert!(
            covered_option(name.to_ascii_uppercase().as_bytes()),
            "{name}"
        );
    }
    for close in ["close", "Close", "CLOSE"] {
        assert!(covered_option(close.as_bytes()), "{close}");
    }
    // Removed by name when named: not hop-by-hop, or no name at all.
    for other in [
        "x-trace",
        "forwarded",
        "x-forwarded-for",
        "host",
        "keep-alive-longer-than-twenty",
        "",
        "clos",
    ] {
        assert!(!covered_option(other.as_bytes()), "{other}");
    }
    assert!(!covered_option(b"k\xe9ep-alive"));
}

#[test]
fn a_callers_values_are_its_user_and_its_session_in_hex() {
    let caller = Caller {
        user: "5f4bff121037e424a17a3ebc".into(),
        session_id: SessionId::parse("0123456789abcdef01234567").expect("an id"),
    };
    let values = CallerValues::of(&caller);
    assert_eq!(
        values.user,
        Some(HeaderValue::from_static("5f4bff121037e424a17a3ebc"))
    );
    assert_eq!(values.session, "0123456789abcdef01234567");
    // A user id that cannot be a header value is not sent; the session still is.
    let odd = Caller {
        user: "line\nbreak".into(),
        ..caller
    };
    let values = CallerValues::of(&odd);
    assert_eq!(values.user, None);
    let mut map = HeaderMap::new();
    let client = ClientInfo::new(SocketAddr::from(([127, 0, 0, 1], 40000)), false);
    let upstream = HeaderValue::from_static("uploader:3000");
    prepare_request_headers(&mut map, &client, &identity(), Some(values), upstream, None);
    assert_eq!(map.get("x-user-id"), None);
    assert_eq!(map["x-session-id"], "0123456789abcdef01234567");
}

#[test]
fn a_header_named_only_by_a_later_connection_value_is_removed() {
    let mut map = headers(&[
        ("connection", "keep-alive"),
        ("connection", "close"),
        ("connection", "X-Late"),
        ("x-late", "1"),
        ("x-kept", "2"),
    ]);
    strip_hop_by_hop(&mut map);
    assert_eq!(names(&map), ["x-kept"]);
}
