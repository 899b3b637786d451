//! The header rules of forwarding: what never crosses the gateway (hop-by-hop headers, in both
//! directions), what a client may not set (the forwarding and identity headers, which the
//! gateway sets itself), and the WebSocket upgrade carried across.
//!
//! Every request and every response goes through these, so the headers to remove are found
//! in one pass over the names a message holds, each name matched once ([`stripped_index`]),
//! rather than by a lookup (a hash) for each name that might be there.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request};

use super::{ClientInfo, IdentityHeaders};
use crate::auth::Caller;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The headers removed by name, each at its bit in a mask. The first [`HOP_BY_HOP_LEN`]
/// describe one connection, not the message (RFC 9110 section 7.6.1), and `Upgrade` (carried
/// across explicitly, see [`set_upgrade`]): never forwarded in either direction. The rest a
/// client may send but the gateway sets itself or never forwards: other proxies'
/// client-address headers are not believed.
///
/// A `static`, not a `const`: a `const` array would be made and dropped at each use.
static STRIPPED: [HeaderName; 14] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    // Set by the gateway on requests, or never forwarded from a client.
    header::FORWARDED,
    X_REAL_IP,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
];

/// How many of [`STRIPPED`] are hop-by-hop (removed from responses too).
const HOP_BY_HOP_LEN: usize = 9;

/// The bit of `Connection` (place 0) in a mask of [`STRIPPED`].
const CONNECTION_BIT: u32 = 1;

/// The place of `name` (lower-case) in [`STRIPPED`], if it is one of them. A match on its bytes:
/// one comparison of lengths for most names, at most a few of bytes.
fn stripped_index(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"connection" => 0,
        b"keep-alive" => 1,
        b"proxy-connection" => 2,
        b"proxy-authenticate" => 3,
        b"proxy-authorization" => 4,
        b"te" => 5,
        b"trailer" => 6,
        b"transfer-encoding" => 7,
        b"upgrade" => 8,
        b"forwarded" => 9,
        b"x-real-ip" => 10,
        b"x-forwarded-for" => 11,
        b"x-forwarded-proto" => 12,
        b"x-forwarded-host" => 13,
        _ => return None,
    })
}

/// Rewrites a client's request headers for the upstream: hop-by-hop and client-sent identity
/// headers removed, `Host` the upstream's, `X-Forwarded-Host` what the client named
/// (`original_host`), the other `X-Forwarded-*` from what the gateway saw, and the identity
/// headers set when the caller is known.
pub fn prepare_request_headers(
    headers: &mut HeaderMap,
    client: &ClientInfo,
    identity: &IdentityHeaders,
    caller: Option<CallerValues>,
    upstream_host: HeaderValue,
    original_host: Option<HeaderValue>,
) {
    remove_stripped(headers, STRIPPED.len(), [&identity.user, &identity.session]);
    // Over the client's own, in place: no removal and insertion of its own.
    headers.insert(header::HOST, upstream_host);
    // The client's own X-Forwarded-For is not believed: the upstream sees the real peer.
    if let Some(value) = &client.forwarded_for {
        headers.insert(X_FORWARDED_FOR, value.clone());
    }
    let proto = if client.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = original_host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if let Some(caller) = caller {
        if let Some(user) = caller.user {
            headers.insert(identity.user.clone(), user);
        }
        headers.insert(identity.session.clone(), caller.session);
    }
}

/// A caller's identity headers' values.
#[derive(Debug, Clone)]
pub struct CallerValues {
    /// The user id; `None` when it cannot be a header value (it is then not sent).
    pub user: Option<HeaderValue>,
    /// The session id, in hex.
    pub session: HeaderValue,
}

impl CallerValues {
    /// The values for `caller`.
    pub fn of(caller: &Caller) -> CallerValues {
        CallerValues {
            user: HeaderValue::from_str(&caller.user).ok(),
            session: HeaderValue::from_bytes(&caller.session_id.hex())
                .expect("hex digits are a header value"),
        }
    }
}

/// Removes hop-by-hop headers, including those the `Connection` header names, and `Upgrade`
/// (an upgrade is carried across explicitly, see [`set_upgrade`]).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    remove_stripped(headers, HOP_BY_HOP_LEN, []);
}

/// Removes the first `count` of [`STRIPPED`] and the `extra` names, found in one pass over the
/// names `headers` holds; with `Connection` among them, first the headers its options name.
fn remove_stripped<const N: usize>(headers: &mut HeaderMap, count: usize, extra: [&HeaderName; N]) {
    debug_assert!(STRIPPED.len() + N <= 32, "a mask of 32 bits");
    // The first `count` of STRIPPED, and every extra name (their bits follow STRIPPED's).
    let wanted = ((1u32 << count) - 1) | (((1u32 << N) - 1) << STRIPPED.len());
    let mut present = 0u32;
    // Whether a `Connection` value names a header of its own (rare: nearly every one says
    // `keep-alive` or `close`), seen in the same pass as its name.
    let mut names_others = false;
    for (name, value) in headers.iter() {
        if let Some(at) = stripped_index(name.as_str().as_bytes()) {
            present |= 1 << at;
            if 1 << at == CONNECTION_BIT {
                names_others |= options(value).any(|option| !covered_option(option));
            }
        } else if let Some(at) = extra.iter().position(|n| *n == name) {
            present |= 1 << (STRIPPED.len() + at);
        }
    }
    let present = present & wanted;
    if present == 0 {
        return;
    }
    // Set only with `Connection` present, which is always among those removed.
    if names_others {
        remove_connection_named(headers);
    }
    for (at, name) in STRIPPED.iter().chain(extra).enumerate() {
        if present & (1 << at) != 0 {
            headers.remove(name);
        }
    }
}

/// Removes the headers that the `Connection` options name (`Connection: x-custom`), but not
/// those the options' own rules cover: the hop-by-hop headers (removed anyway) and `close`.
/// An option that is no header name is skipped, the others of its value still count.
fn remove_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_options(headers)
        .filter(|option| !covered_option(option))
        .filter_map(|option| HeaderName::from_bytes(option).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
}

/// Whether a `Connection` option is `close` or names a hop-by-hop header, in any case:
/// matched as [`stripped_index`] matches, on a lower-case copy (`keep-alive`, in nearly every
/// response, is one match on the text instead of a comparison with each name).
fn covered_option(option: &[u8]) -> bool {
    // Longer than any hop-by-hop name (`proxy-authenticate` and `proxy-authorization`).
    let mut lower = [0u8; 20];
    let Some(copy) = lower.get_mut(..option.len()) else {
        return false;
    };
    copy.copy_from_slice(option);
    copy.make_ascii_lowercase();
    copy == b"close" || stripped_index(copy).is_some_and(|at| at < HOP_BY_HOP_LEN)
}

/// The WebSocket upgrade an HTTP/1.1 request asks for (`Connection: upgrade` and
/// `Upgrade: websocket`), if any. No other protocol is carried: an `h2c` upgrade, say, would
/// open a raw tunnel in which later requests are never checked.
pub fn websocket_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let protocol = headers.get(header::UPGRADE)?;
    let websocket = protocol
        .to_str()
        .is_ok_and(|p| p.trim().eq_ignore_ascii_case("websocket"));
    let asks = || connection_options(headers).any(|option| option.eq_ignore_ascii_case(b"upgrade"));
    (websocket && asks()).then(|| protocol.clone())
}

/// The options of the `Connection` headers (RFC 9110 section 7.6.1): comma-separated tokens,
/// trimmed, as bytes (a value may hold bytes outside ASCII; its tokens still count).
fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers.get_all(header::CONNECTION).iter().flat_map(options)
}

/// The options of one `Connection` value: see [`connection_options`].
fn options(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    value
        .as_bytes()
        .split(|b| *b == b',')
        .map(<[u8]>::trim_ascii)
}

/// What a request names as its host: its `Host` header, else (HTTP/2) its URI's authority.
pub fn request_host<B>(request: &Request<B>) -> Option<HeaderValue> {
    request.headers().get(header::HOST).cloned().or_else(|| {
        let authority = request.uri().authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    })
}

/// Puts back the two headers that carry an upgrade across the gateway.
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

#[cfg(test)]
mod tests;
