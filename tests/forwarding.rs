//! What reaches the uploader through the gateway, and what comes back: the prefix and the
//! normalised path, the identity headers, hop-by-hop and `X-Forwarded-*` headers, public and
//! API-key routes, an upstream that is down or slow, and upstream responses passed back.
//!
//! - `paths`: the prefix stripped (or kept), paths outside it, the normalised path;
//! - `identity`: the caller's user and session, and client-sent identity headers removed;
//! - `headers`: hop-by-hop headers left behind, `X-Forwarded-*` set by the gateway;
//! - `routes`: public routes and the API-key route;
//! - `upstream_down`: an upstream that is unreachable, dead from the start, or slow;
//! - `responses`: upstream responses passed back as they were sent;
//! - `connections`: one upstream connection per client connection, and closed under it;
//! - `recorded`: what the uploader received, for the checks.

mod support;

#[path = "forwarding/connections.rs"]
mod connections;
#[path = "forwarding/headers.rs"]
mod headers;
#[path = "forwarding/identity.rs"]
mod identity;
#[path = "forwarding/paths.rs"]
mod paths;
#[path = "forwarding/recorded.rs"]
mod recorded;
#[path = "forwarding/responses.rs"]
mod responses;
#[path = "forwarding/routes.rs"]
mod routes;
#[path = "forwarding/upstream_down.rs"]
mod upstream_down;
