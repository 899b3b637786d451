//! The per-request path, top to bottom: normalise the path, classify the route, check the
//! token, then answer (the sessions endpoints) or forward (everything else).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderName};
use http::{HeaderMap, Request, Response};

use crate::auth::{TokenRejection, TokenVerifier, bearer_token, token_hash};
use crate::body::Body;
use crate::config::{Config, LimitsConfig};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::proxy::{self, ClientInfo, IdentityHeaders, Upstream, UpstreamLink};
use crate::routes::{self, Route, RoutePolicy};
use crate::sessions::{Clock, MeteredStore, SessionId, SessionStore, StoreError};
use crate::{api, lifecycle};

/// The `Allow` answer to `CONNECT`: every method but tunnels.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Longest location value kept from the configured header.
const MAX_LOCATION_LEN: usize = 128;

/// Most of a request's path the access log keeps: every path the gateway serves fits; a longer
/// one (refused anyway, 414 or 431) is cut, so that long requests cannot flood the log.
const MAX_LOGGED_PATH_LEN: usize = routes::MAX_PATH_LEN;

/// Everything a request needs: the policy, the verifier, the store, the upstream.
pub struct Gateway {
    pub(crate) policy: RoutePolicy,
    pub(crate) verifier: TokenVerifier,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) upstream: Upstream,
    pub(crate) identity: IdentityHeaders,
    pub(crate) location_header: Option<HeaderName>,
    pub(crate) capture_limit: usize,
    pub(crate) reuse_grace_ms: i64,
    pub(crate) sweep_interval: Duration,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: LimitsConfig,
    prefix: String,
    strip_prefix: bool,
}

/// One request's exchange: who sent it, and what the access log and metrics will say of it.
#[derive(Debug)]
pub struct Exchange {
    /// The client connection.
    pub client: ClientInfo,
    /// The route class, once classified.
    pub route_class: &'static str,
    /// The caller, once authenticated.
    pub caller: Option<Caller>,
    /// Time the upstream took to answer with headers, if the request went upstream.
    pub upstream_time: Option<Duration>,
    /// The upstream connection of the client's HTTP/1.1 connection (none for HTTP/2).
    link: Option<Arc<UpstreamLink>>,
}

/// The caller of a session route, once its token has been checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id.
    pub user: String,
    /// The session the token belongs to.
    pub session_id: SessionId,
}

/// Where a request goes upstream, decided once from its normalised path.
pub struct Target {
    /// Path (and query) to forward.
    pub upstream_uri: http::Uri,
    /// What the client sent as `Host` (or the URI's authority, for HTTP/2).
    pub original_host: Option<http::HeaderValue>,
}

impl Gateway {
    /// Builds a gateway from a validated config, the signing secret, a store and a clock.
    pub fn new(
        config: &Config,
        secret: &[u8],
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway, crate::config::ConfigError> {
        config.validate()?;
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn SessionStore> = Arc::new(MeteredStore::new(store, metrics.clone()));
        let header = |name: &str| {
            HeaderName::from_bytes(name.as_bytes()).expect("validated by Config::validate")
        };
        Ok(Gateway {
            policy: RoutePolicy::new(&config.sessions.endpoint, config.route_patterns()?),
            verifier: TokenVerifier::new(
                secret,
                config.algorithm()?,
                config.auth.leeway_seconds,
                config.auth.issuer.as_deref(),
            ),
            store,
            clock,
            upstream: Upstream::new(
                &config.upstream_uri()?,
                Duration::from_secs(config.proxy.upstream_timeout_seconds),
                metrics.clone(),
            ),
            identity: IdentityHeaders {
                user: header(&config.proxy.user_header),
                session: header(&config.proxy.session_header),
            },
            location_header: config.sessions.location_header.as_deref().map(header),
            capture_limit: config.sessions.capture_limit_bytes,
            reuse_grace_ms: i64::try_from(config.sessions.refresh_reuse_grace_seconds)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            sweep_interval: Duration::from_secs(config.sessions.sweep_interval_seconds),
            metrics,
            limits: config.limits.clone(),
            prefix: config.api_prefix.clone(),
            strip_prefix: config.strip_prefix,
        })
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one request. Never fails: every error becomes its JSON response here. Writes
    /// the access-log line (never the query, a token or a cookie) and the request metrics.
    /// `link` is the upstream connection of the client's connection, if it has one (HTTP/1.1).
    pub async fn handle(
        &self,
        request: Request<Body>,
        client: ClientInfo,
        link: Option<Arc<UpstreamLink>>,
    ) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = logged_path(request.uri().path());
        let mut exchange = Exchange {
            client,
            route_class: "invalid",
            caller: None,
            upstream_time: None,
            link,
        };
        let response = match self.dispatch(request, &mut exchange).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        let elapsed = started.elapsed();
        let status = response.status();
        self.metrics
            .observe_request(exchange.route_class, &method, status, elapsed.as_secs_f64());
        let caller = exchange.caller.as_ref();
        tracing::info!(
            target: "sessiongate::access",
            %method,
            path = %path,
            status = status.as_u16(),
            route = exchange.route_class,
            ms = elapsed.as_secs_f64() * 1000.0,
            upstream_ms = exchange.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            client = %exchange.client.peer.ip(),
            session = caller.map(|c| tracing::field::display(c.session_id)),
            user = caller.map(|c| c.user.as_str()),
        );
        response
    }

    async fn dispatch(
        &self,
        request: Request<Body>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, GatewayError> {
        // HTTP/2's header limit is h2's (`max_header_list_size`); HTTP/1.1's is this.
        if request.version() != http::Version::HTTP_2
            && head_len(&request) > self.limits.max_header_bytes
        {
            return Err(GatewayError::HeadTooLarge);
        }
        if request.method() == http::Method::CONNECT {
            // A proxy tunnel, not a request for the uploader: never forwarded.
            return Err(GatewayError::MethodNotAllowed(ALLOWED_METHODS));
        }
        let (route, target) = self.classify(&request)?;
        exchange.route_class = route.class();
        let request = self.limit_body(request)?;
        self.serve(route, target, request, exchange).await
    }

    /// Applies `limits.max_request_body_bytes`: a declared length over it is answered 413 at
    /// once; a streamed body that grows past it is cut, failing the upstream request.
    fn limit_body(&self, request: Request<Body>) -> Result<Request<Body>, GatewayError> {
        let limit = self.limits.max_request_body_bytes;
        if limit == 0 {
            return Ok(request);
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(GatewayError::BodyTooLarge);
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(request.map(|body| crate::body::boxed(http_body_util::Limited::new(body, limit))))
    }

    /// Normalises the path, removes the prefix and classifies the route.
    fn classify(&self, request: &Request<Body>) -> Result<(Route, Target), GatewayError> {
        let path = routes::normalise_path(request.uri().path())?;
        let api_path = routes::strip_prefix(&path, &self.prefix).ok_or(GatewayError::NotFound)?;
        let route = self.policy.classify(request.method(), api_path);
        let forwarded_path = if self.strip_prefix { api_path } else { &path };
        let original_host = request.headers().get(header::HOST).cloned().or_else(|| {
            let authority = request.uri().authority()?;
            http::HeaderValue::from_str(authority.as_str()).ok()
        });
        let target = Target {
            upstream_uri: self
                .upstream
                .uri_for(forwarded_path, request.uri().query())?,
            original_host,
        };
        Ok((route, target))
    }

    async fn serve(
        &self,
        route: Route,
        target: Target,
        request: Request<Body>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, GatewayError> {
        match route {
            Route::ListSessions => {
                let caller = self.authenticate(request.headers(), exchange).await?;
                api::list_sessions(self, &caller).await
            }
            Route::RevokeSession(id) => {
                let caller = self.authenticate(request.headers(), exchange).await?;
                api::revoke_session(self, &caller, &id).await
            }
            Route::RevokeAllSessions => {
                let caller = self.authenticate(request.headers(), exchange).await?;
                api::revoke_all_sessions(self, &caller).await
            }
            Route::SessionsMethodNotAllowed(allow) => Err(GatewayError::MethodNotAllowed(allow)),
            Route::Login => lifecycle::login(self, request, target, exchange).await,
            Route::Refresh => lifecycle::refresh(self, request, target, exchange).await,
            Route::Logout => lifecycle::logout(self, request, target, exchange).await,
            Route::EndAllSessions => {
                lifecycle::end_all_sessions(self, request, target, exchange).await
            }
            Route::ApiKey | Route::Public => self.forward(request, target, exchange).await,
            Route::Session => {
                self.authenticate(request.headers(), exchange).await?;
                self.forward(request, target, exchange).await
            }
        }
    }

    /// Checks the Bearer token: it must verify and belong to a live session of its `sub`.
    /// The caller is recorded in the exchange and the decision counted.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        exchange: &mut Exchange,
    ) -> Result<Caller, GatewayError> {
        let outcome = self.check_token(headers).await;
        match &outcome {
            Ok(caller) => {
                self.metrics.auth_decision(Ok(()));
                exchange.caller = Some(caller.clone());
            }
            Err(GatewayError::Unauthorized(rejection)) => {
                self.metrics.auth_decision(Err(*rejection));
            }
            Err(_) => {}
        }
        outcome
    }

    async fn check_token(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let token = bearer_token(headers)?;
        let now = self.clock.now_ms();
        let claims = self.verifier.verify(token, now)?;
        let grant = self
            .store
            .find_access(&claims.sub, &token_hash(token))
            .await
            .map_err(store_failed)?
            .filter(|grant| grant.expire_at_ms > now && grant.user == claims.sub)
            .ok_or(TokenRejection::UnknownSession)?;
        Ok(Caller {
            user: grant.user,
            session_id: grant.session_id,
        })
    }

    /// Forwards a request upstream, streaming both bodies. When the exchange has a caller
    /// (a session route), the identity headers carry it.
    pub async fn forward(
        &self,
        request: Request<Body>,
        target: Target,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, GatewayError> {
        let mut request = request;
        // A WebSocket upgrade on a session route (a caller is known) is tunnelled once the
        // upstream agrees with a 101; anywhere else the upgrade headers are dropped.
        let upgrade = exchange
            .caller
            .as_ref()
            .and_then(|_| proxy::websocket_upgrade(request.headers()));
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        let caller = exchange.caller.as_ref();
        let session_id = caller.map(|c| c.session_id.to_string());
        let identity = caller
            .zip(session_id.as_deref())
            .map(|(c, s)| (c.user.as_str(), s));
        proxy::prepare_request_headers(
            &mut parts.headers,
            &exchange.client,
            &self.identity,
            identity,
            target.original_host,
        );
        if let Some(protocol) = upgrade {
            proxy::set_upgrade(&mut parts.headers, protocol);
        }
        parts.uri = target.upstream_uri;
        let request = Request::from_parts(parts, body);
        // An upgrade takes its upstream connection over for good: it goes on a pooled one.
        let link = exchange
            .link
            .as_deref()
            .filter(|_| client_upgrade.is_none());
        let started = Instant::now();
        let result = self.upstream.send(request, link).await;
        exchange.upstream_time = Some(started.elapsed());
        let mut response = result?;
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            proxy::tunnel(client_upgrade, hyper::upgrade::on(&mut response));
        }
        Ok(response)
    }

    /// The client's location from the configured header, else "unknown".
    pub fn location(&self, headers: &HeaderMap) -> String {
        self.location_header
            .as_ref()
            .and_then(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_LOCATION_LEN)
                    .collect::<String>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| crate::sessions::device::UNKNOWN.to_string())
    }
}

/// The path as the access log shows it: whole, or its first [`MAX_LOGGED_PATH_LEN`] bytes and
/// an ellipsis.
fn logged_path(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH_LEN {
        return path.to_string();
    }
    let mut end = MAX_LOGGED_PATH_LEN;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

/// The size of an HTTP/1.1 request head as sent, to within the spaces a client may add around
/// header values: the request line and each header line with their CRLFs, and the blank line
/// that ends the head.
fn head_len<B>(request: &Request<B>) -> usize {
    let uri = request.uri();
    let target = uri
        .scheme_str()
        .map_or(0, |scheme| scheme.len() + "://".len())
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path_and_query().map_or(0, |path| path.as_str().len());
    let line = request.method().as_str().len() + " ".len() + target + " HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    line + fields + "\r\n".len()
}

/// Logs a store failure once and turns it into its answer: 503 when the store cannot be
/// reached in time (the request may be retried), else 500.
pub fn store_failed(error: StoreError) -> GatewayError {
    tracing::error!(%error, "session store failed");
    if error.is_unavailable() {
        GatewayError::StoreUnavailable
    } else {
        GatewayError::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_LOGGED_PATH_LEN, head_len, logged_path};
    use http::Request;

    #[test]
    fn the_access_log_keeps_at_most_the_longest_path_served() {
        let served = format!("/{}", "a".repeat(MAX_LOGGED_PATH_LEN - 1));
        assert_eq!(logged_path(&served), served);
        let long = format!("/{}", "é".repeat(MAX_LOGGED_PATH_LEN));
        let logged = logged_path(&long);
        assert!(logged.ends_with('…'), "{logged}");
        let kept = logged.trim_end_matches('…');
        assert!(kept.len() <= MAX_LOGGED_PATH_LEN && kept.len() > MAX_LOGGED_PATH_LEN - 2);
        assert!(long.starts_with(kept));
    }

    #[test]
    fn head_len_is_the_length_of_the_head_as_sent() {
        let raw = "GET /api/upload/abc?x=1 HTTP/1.1\r\nhost: gateway\r\nx-pad: aaaa\r\n\r\n";
        let request = Request::get("/api/upload/abc?x=1")
            .header("host", "gateway")
            .header("x-pad", "aaaa")
            .body(())
            .expect("a valid request");
        assert_eq!(head_len(&request), raw.len());

        // Absolute-form (a proxy request) and a header sent twice.
        let raw = "POST http://gateway:8080/x HTTP/1.1\r\na: 1\r\na: 22\r\n\r\n";
        let request = Request::post("http://gateway:8080/x")
            .header("a", "1")
            .header("a", "22")
            .body(())
            .expect("a valid request");
        assert_eq!(head_len(&request), raw.len());
    }
}
