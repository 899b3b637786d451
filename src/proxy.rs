//! Forwarding to the upstream: the upstream connections, the request and response header
//! rules, and the mapping of upstream failures to 502/504.
//!
//! Each HTTP/1.1 client connection keeps one upstream connection of its own (an
//! [`UpstreamLink`]): HTTP/1.1 carries one request at a time, so a client connection never
//! needs two, and the request goes straight to it with no pool to search, lock or return it
//! to. HTTP/2 client connections, which carry many requests at once, WebSocket upgrades and
//! the readiness probe use a shared pool instead (hyper-util's client).
//!
//! Bodies are handed to hyper as streams in both directions, so an upload of any size passes
//! with flat memory; hyper's flow control slows the client down when the upstream is slower.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use http::header::{self, HeaderName};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Instant;

use crate::body::{Body, boxed};
use crate::deadline::Deadline;
use crate::error::GatewayError;
use crate::metrics::Metrics;

mod forwarder;
mod headers;

use forwarder::CallerMemo;
pub use forwarder::{Forwarded, Forwarder, Target};
pub use headers::{
    CallerValues, prepare_request_headers, request_host, set_upgrade, strip_hop_by_hop,
    websocket_upgrade,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The upstream server, and the shared pool of HTTP/1.1 connections to it.
pub struct Upstream {
    client: Client<HttpConnector, Body>,
    authority: Authority,
    /// The `Host` header sent upstream: the upstream's authority.
    host: HeaderValue,
    scheme_authority: String,
    base_path: String,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// When this client was made: what `last_answer` counts from.
    made: Instant,
    /// When the upstream last answered, for the readiness check: ms after `made`, plus one
    /// (0: never). On the monotonic clock, read anyway for the upstream time.
    last_answer: AtomicU64,
}

impl Upstream {
    /// A client for the upstream at `authority`, under `base_path` (no trailing slash),
    /// waiting at most `timeout` for response headers.
    pub fn new(
        authority: Authority,
        base_path: String,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        // The timer makes the idle timeout real: without it idle connections are only
        // dropped when next checked out.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Upstream {
            client,
            host: HeaderValue::from_str(authority.as_str())
                .expect("an authority is a valid header value"),
            scheme_authority: format!("http://{authority}"),
            authority,
            base_path,
            timeout,
            metrics,
            made: Instant::now(),
            last_answer: AtomicU64::new(0),
        }
    }

    /// The upstream's path (and query) for a path (starting with `/`) and an optional query:
    /// the origin-form URI of the upstream request.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, GatewayError> {
        let mut uri = String::with_capacity(
            self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
        );
        uri.push_str(&self.base_path);
        uri.push_str(path);
        if let Some(query) = query {
            uri.push('?');
            uri.push_str(query);
        }
        PathAndQuery::try_from(uri)
            .map(Uri::from)
            .map_err(|_| GatewayError::Internal)
    }

    /// Sends a prepared request (HTTP/1.1, its URI the origin-form from [`Upstream::uri_for`],
    /// its `Host` [`Upstream::host`]) on the client connection's own upstream connection when
    /// `link` is given, else on the shared pool. Connection failures are 502, no response
    /// headers within the timeout is 504; both are logged here with the upstream's address.
    /// Returns the answer with the time to its headers (also observed into
    /// `sessiongate_upstream_request_duration_seconds`).
    pub async fn send(
        &self,
        request: Request<Body>,
        link: Option<&UpstreamLink>,
    ) -> (Result<Response<Body>, GatewayError>, Duration) {
        let started = Instant::now();
        let result = self.exchange(request, link, started + self.timeout).await;
        let ended = Instant::now();
        if result.is_ok() {
            self.note_answer(ended);
        }
        let took = ended - started;
        self.metrics.upstream_duration.observe(took.as_secs_f64());
        (result, took)
    }

    async fn exchange(
        &self,
        request: Request<Body>,
        link: Option<&UpstreamLink>,
        deadline: Instant,
    ) -> Result<Response<Body>, GatewayError> {
        let answer = match link {
            Some(link) => self.send_linked(request, link, deadline).await,
            None => {
                let mut request = request;
                *request.uri_mut() = self.absolute(request.uri());
                let exchange = self.client.request(request);
                match tokio::time::timeout_at(deadline, exchange).await {
                    Ok(answer) => Some(answer.map_err(BoxError::from)),
                    Err(_) => None,
                }
            }
        };
        match answer {
            Some(Ok(mut response)) => {
                let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                let headers = response.headers_mut();
                let upgrade = switching
                    .then(|| headers.get(header::UPGRADE).cloned())
                    .flatten();
                strip_hop_by_hop(headers);
                if let Some(protocol) = upgrade {
                    set_upgrade(headers, protocol);
                }
                Ok(response.map(boxed))
            }
            Some(Err(error)) if let Some(fault) = client_fault(&*error) => {
                // The client's body broke or outgrew its limit: its fault, not the upstream's.
                tracing::debug!(error = %error_chain(&*error), "request body refused");
                Err(fault)
            }
            Some(Err(error)) => {
                self.metrics.upstream_error("connect");
                tracing::warn!(upstream = %self.scheme_authority, error = %error_chain(&*error), "upstream request failed");
                Err(GatewayError::UpstreamUnavailable)
            }
            None => {
                self.metrics.upstream_error("timeout");
                tracing::warn!(upstream = %self.scheme_authority, timeout_s = self.timeout.as_secs(), "upstream did not answer in time");
                Err(GatewayError::UpstreamTimeout)
            }
        }
    }

    /// Sends on the link's connection, or on a new one when the link has none or its
    /// connection has closed, and answers `None` if the response headers have not come by
    /// `deadline` (the link is then left without a connection: the next request opens one).
    async fn send_linked(
        &self,
        request: Request<Body>,
        link: &UpstreamLink,
        deadline: Instant,
    ) -> Option<Result<Response<Incoming>, BoxError>> {
        let Linked { sender, timer } = link.take();
        let mut timer = timer.unwrap_or_else(|| Deadline::new(deadline));
        let answer = until(deadline, &mut timer, self.send_on(request, sender)).await;
        let (result, sender) = match answer {
            Some((result, sender)) => (Some(result), sender),
            None => (None, None),
        };
        link.keep(Linked {
            sender,
            timer: Some(timer),
        });
        result
    }

    /// Sends on `sender`, or on a new connection when there is none or it has closed; answers
    /// with the connection to keep. A request the kept connection never took (it had closed
    /// in the meantime) goes on the new one; one that was sent and failed is not sent twice.
    async fn send_on(
        &self,
        mut request: Request<Body>,
        sender: Option<http1::SendRequest<Body>>,
    ) -> (
        Result<Response<Incoming>, BoxError>,
        Option<http1::SendRequest<Body>>,
    ) {
        if let Some(mut sender) = sender {
            // HTTP/1.1: the previous response's body has been read (the client connection
            // sends it before reading the next request), so this waits at most for the
            // connection to notice; it fails at once if the connection closed.
            if sender.ready().await.is_ok() {
                match sender.try_send_request(request).await {
                    Ok(response) => return (Ok(response), Some(sender)),
                    Err(mut error) => match error.take_message() {
                        Some(unsent) => request = unsent,
                        None => return (Err(error.into_error().into()), None),
                    },
                }
            }
        }
        let mut sender = match self.connect().await {
            Ok(sender) => sender,
            Err(error) => return (Err(error), None),
        };
        match sender.send_request(request).await {
            Ok(response) => (Ok(response), Some(sender)),
            Err(error) => (Err(error.into()), None),
        }
    }

    /// Opens a new HTTP/1.1 connection to the upstream. The connection runs as a task of its
    /// own that ends when the link drops its sender (the client connection closed) or the
    /// upstream closes it.
    async fn connect(&self) -> Result<http1::SendRequest<Body>, BoxError> {
        let port = self.authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((self.authority.host(), port)).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error_chain(&error), "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// The absolute-form URI the shared pool needs (it picks the connection by it).
    fn absolute(&self, uri: &Uri) -> Uri {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = uri.path_and_query().cloned();
        Uri::from_parts(parts).expect("scheme, authority and path make a valid URI")
    }
}

/// The upstream connection one HTTP/1.1 client connection keeps for itself, between its
/// requests, the timer of its requests' deadlines, and the identity header values it last
/// sent. Dropped with the client connection, which closes the upstream connection too.
#[derive(Debug, Default)]
pub struct UpstreamLink {
    linked: Mutex<Linked>,
    callers: CallerMemo,
}

/// What an [`UpstreamLink`] holds between two requests.
#[derive(Debug, Default)]
struct Linked {
    /// The upstream connection, unless the last request broke it.
    sender: Option<http1::SendRequest<Body>>,
    /// Kept armed from one request to the next (see [`until`]).
    timer: Option<Deadline>,
}

impl UpstreamLink {
    fn take(&self) -> Linked {
        std::mem::take(&mut *self.linked.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn keep(&self, linked: Linked) {
        *self.linked.lock().unwrap_or_else(|e| e.into_inner()) = linked;
    }
}

/// `work`'s output, or `None` once `deadline` has passed first.
///
/// `timer` is kept from one request to the next, its sleep set for an earlier request's
/// deadline (so never later than `deadline`): it is moved to `deadline` only when it fires
/// early, instead of a timer being put into tokio's wheel and taken out again for every
/// request, and polled only when it could have fired.
///
/// A future of its own rather than an `async fn`: an `async fn` would hold `work` twice (as
/// its argument and pinned), and every future above it on the forwarding path would grow by
/// that much, copied as each is made (benches/README.md, History).
fn until<W: Future>(deadline: Instant, timer: &mut Deadline, work: W) -> Until<'_, W> {
    Until {
        work,
        timer,
        deadline,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`until`].
    struct Until<'t, W> {
        #[pin]
        work: W,
        timer: &'t mut Deadline,
        deadline: Instant,
    }
}

impl<W: Future> Future for Until<'_, W> {
    type Output = Option<W::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.work.poll(cx) {
            return Poll::Ready(Some(output));
        }
        this.timer.poll_passed(cx, *this.deadline).map(|()| None)
    }
}

impl Upstream {
    /// The `Host` of requests to the upstream: its authority.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Whether the upstream answered a request (any HTTP answer) within the last `window`.
    pub fn answered_within(&self, window: Duration) -> bool {
        match self.last_answer.load(Ordering::Relaxed) {
            0 => false,
            after_made => self.made.elapsed() < Duration::from_millis(after_made - 1) + window,
        }
    }

    /// Notes an answer of the upstream at `at`.
    fn note_answer(&self, at: Instant) {
        let after_made = u64::try_from((at - self.made).as_millis()).unwrap_or(u64::MAX - 1);
        self.last_answer.store(after_made + 1, Ordering::Relaxed);
    }

    /// The upstream's `scheme://authority`, for logs and the readiness probe.
    pub fn address(&self) -> &str {
        &self.scheme_authority
    }

    /// Asks the upstream for `/` with a short deadline; any HTTP answer means it is up.
    pub async fn probe(&self) -> bool {
        let Ok(uri) = self.uri_for("/", None) else {
            return false;
        };
        let request = Request::get(self.absolute(&uri))
            .body(crate::body::empty())
            .expect("a GET with a valid URI is a valid request");
        let probe = tokio::time::timeout(Duration::from_secs(2), self.client.request(request));
        match probe.await {
            Ok(Ok(_)) => {
                self.note_answer(Instant::now());
                true
            }
            _ => false,
        }
    }
}

/// The client's own fault behind a failed upstream exchange, if it was one: its body outgrew
/// `limits.max_request_body_bytes` (413) or was malformed or cut (400).
fn client_fault(error: &(dyn std::error::Error + 'static)) -> Option<GatewayError> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return Some(GatewayError::BodyTooLarge);
        }
        if error.is::<crate::body::ClientBodyError>() {
            return Some(GatewayError::BadBody);
        }
        cause = error.source();
    }
    None
}

/// An error and its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The identity headers the gateway sets for the upstream, and strips from clients.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    /// Carries the user id.
    pub user: HeaderName,
    /// Carries the session id.
    pub session: HeaderName,
}

/// Who sent a request, as the gateway saw it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// The peer's address as the `X-Forwarded-For` value, made once per connection.
    forwarded_for: Option<HeaderValue>,
}

impl ClientInfo {
    /// A client connection from `peer`, over TLS or not.
    pub fn new(peer: SocketAddr, tls: bool) -> ClientInfo {
        ClientInfo {
            peer,
            tls,
            forwarded_for: HeaderValue::from_str(&peer.ip().to_string()).ok(),
        }
    }
}

/// Joins the two upgraded connections and copies bytes both ways until either side closes.
pub fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(%error, "upgraded connection ended with an error");
        }
    });
}
