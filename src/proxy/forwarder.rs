//! Forwarding one request: the header rewrite, the upstream exchange, and a WebSocket upgrade
//! joined when the upstream agrees to it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, Uri, Version};

use super::headers::CallerValues;
use super::{
    ClientInfo, IdentityHeaders, Upstream, UpstreamLink, prepare_request_headers, set_upgrade,
    tunnel, websocket_upgrade,
};
use crate::auth::Caller;
use crate::body::Body;
use crate::error::GatewayError;

/// Where a request goes upstream, decided once from its normalised path.
pub struct Target {
    /// Path (and query) to forward.
    pub upstream_uri: Uri,
    /// What the client sent as `Host` (or the URI's authority, for HTTP/2).
    pub original_host: Option<HeaderValue>,
}

/// Sends requests upstream with the identity of their caller.
pub struct Forwarder {
    upstream: Arc<Upstream>,
    identity: IdentityHeaders,
}

/// The identity header values a client connection last sent upstream, kept for its next
/// request: a connection's requests nearly always carry one session, whose values are then
/// made once instead of at each request (two allocations and a hex encoding).
#[derive(Debug, Default)]
pub struct CallerMemo(Mutex<Option<(Caller, CallerValues)>>);

impl CallerMemo {
    /// The values for `caller`: the remembered ones if they are its, else new ones,
    /// remembered in place of those.
    fn values(&self, caller: &Caller) -> CallerValues {
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, values)) = memo.as_ref()
            && known.session_id == caller.session_id
            && known.user == caller.user
        {
            return values.clone();
        }
        let values = CallerValues::of(caller);
        *memo = Some((caller.clone(), values.clone()));
        values
    }
}

/// A forwarded request's answer, and how long the upstream took to give its headers.
pub struct Forwarded {
    /// The answer, or why there is none.
    pub response: Result<Response<Body>, GatewayError>,
    /// From sending to the response headers.
    pub upstream_time: Duration,
}

impl Forwarder {
    /// Forwards to `upstream`, naming callers in the `identity` headers.
    pub fn new(upstream: Arc<Upstream>, identity: IdentityHeaders) -> Forwarder {
        Forwarder { upstream, identity }
    }

    /// The upstream.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    /// Forwards a request upstream, streaming both bodies; `caller` (a session route's) is
    /// passed on in the identity headers. `link` is the upstream connection of the client's
    /// HTTP/1.1 connection, if it has one.
    pub async fn forward(
        &self,
        mut request: Request<Body>,
        target: Target,
        client: &ClientInfo,
        caller: Option<&Caller>,
        link: Option<&UpstreamLink>,
    ) -> Forwarded {
        // A WebSocket upgrade on a session route (a caller is known) is tunnelled once the
        // upstream agrees with a 101; anywhere else the upgrade headers are dropped.
        let upgrade = caller.and_then(|_| websocket_upgrade(request.headers()));
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        // HTTP/2 requests, which have no link, make theirs each time.
        let identity = caller.map(|caller| match link {
            Some(link) => link.callers.values(caller),
            None => CallerValues::of(caller),
        });
        // Changed in place: taking the request apart and putting it together again would
        // move it twice.
        let headers = request.headers_mut();
        prepare_request_headers(
            headers,
            client,
            &self.identity,
            identity,
            self.upstream.host().clone(),
            target.original_host,
        );
        if let Some(protocol) = upgrade {
            set_upgrade(headers, protocol);
        }
        *request.uri_mut() = target.upstream_uri;
        // Whatever the client spoke: the upstream is spoken to in HTTP/1.1.
        *request.version_mut() = Version::HTTP_11;
        // An upgrade takes its upstream connection over for good: it goes on a pooled one.
        let link = link.filter(|_| client_upgrade.is_none());
        let (result, upstream_time) = self.upstream.send(request, link).await;
        let response = result.map(|mut response| {
            if response.status() == StatusCode::SWITCHING_PROTOCOLS
                && let Some(client_upgrade) = client_upgrade
            {
                tunnel(client_upgrade, hyper::upgrade::on(&mut response));
            }
            response
        });
        Forwarded {
            response,
            upstream_time,
        }
    }
}
