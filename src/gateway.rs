//! The per-request path, top to bottom: normalise the path, classify the route, check the
//! token, then answer (the sessions endpoints) or forward (everything else, a lifecycle
//! route between its two hooks).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};

use crate::access_log::AccessLog;
use crate::admin::AdminToken;
use crate::adoption::Adoption;
use crate::api::SessionsApi;
use crate::auth::{Authenticator, Caller, TokenMemo, TokenVerifier};
use crate::body::Body;
use crate::config::{LimitsConfig, Settings};
use crate::error::GatewayError;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::proxy::{ClientInfo, Forwarder, Target, Upstream, UpstreamLink, request_host};
use crate::routes::{self, Route, RoutePolicy};
use crate::sessions::tombstones::ending_sessions_through;
use crate::sessions::{Activity, Clock, MeteredStore, SessionStore, Sweeper};

/// The `Allow` answer to `CONNECT`: every method but tunnels.
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// What a client connection keeps between its requests: its own upstream connection (for
/// HTTP/1.1) and the token its requests last carried, verified.
#[derive(Default)]
pub struct ConnectionState {
    /// The upstream connection of an HTTP/1.1 client connection.
    pub link: UpstreamLink,
    /// The token last verified on this connection.
    pub token: TokenMemo,
}

/// Everything a request needs, each part holding its own handles.
pub struct Gateway {
    routes: RoutePolicy,
    prefix: String,
    strip_prefix: bool,
    limits: LimitsConfig,
    authenticator: Authenticator,
    api: SessionsApi,
    lifecycle: Lifecycle,
    forwarder: Forwarder,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    activity: Arc<Activity>,
    sweep_interval: Duration,
    admin_token: Option<AdminToken>,
}

impl Gateway {
    /// Builds a gateway from its settings, the signing secret, a store and a clock.
    pub fn new(
        settings: &Settings,
        secret: &[u8],
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Gateway {
        let config = &settings.config;
        let metrics = Arc::new(Metrics::new());
        let store = ending_sessions_through(
            Arc::new(MeteredStore::new(store, metrics.clone())),
            clock.clone(),
            settings.adopt_before_ms,
        );
        let adoption = settings.adopt_before_ms.map(|before_ms| {
            Arc::new(Adoption::new(
                before_ms,
                store.clone(),
                metrics.clone(),
                settings.location_header.clone(),
            ))
        });
        let verifier = Arc::new(TokenVerifier::new(
            secret,
            settings.algorithm,
            config.auth.leeway_seconds,
            config.auth.issuer.as_deref(),
        ));
        let upstream = Upstream::new(
            settings.upstream_authority.clone(),
            settings.upstream_base_path.clone(),
            Duration::from_secs(config.proxy.upstream_timeout_seconds),
            metrics.clone(),
            clock.clone(),
        );
        let activity = Arc::new(Activity::default());
        let reuse_grace_ms = i64::try_from(config.sessions.refresh_reuse_grace_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let mut authenticator = Authenticator::new(
            verifier.clone(),
            store.clone(),
            clock.clone(),
            metrics.clone(),
            activity.clone(),
        );
        if let Some(adoption) = &adoption {
            authenticator = authenticator.adopting(adoption.clone());
        }
        Gateway {
            routes: settings.routes.clone(),
            prefix: config.api_prefix.clone(),
            strip_prefix: config.strip_prefix,
            limits: config.limits.clone(),
            authenticator,
            api: SessionsApi {
                store: store.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
                activity: activity.clone(),
            },
            lifecycle: Lifecycle {
                store: store.clone(),
                verifier,
                clock: clock.clone(),
                metrics: metrics.clone(),
                capture_limit: config.sessions.capture_limit_bytes,
                reuse_grace_ms,
                location_header: settings.location_header.clone(),
                adoption,
            },
            forwarder: Forwarder::new(Arc::new(upstream), settings.identity.clone()),
            store,
            clock,
            metrics,
            activity,
            sweep_interval: Duration::from_secs(config.sessions.sweep_interval_seconds),
            admin_token: settings.admin_token.clone(),
        }
    }

    /// Answers one request of a client connection. Never fails: every error becomes its JSON
    /// response here. Writes the access-log line and the request metrics.
    pub async fn handle(
        &self,
        request: Request<Body>,
        client: ClientInfo,
        connection: &ConnectionState,
    ) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let mut log = AccessLog::new(client);
        let response = match self.dispatch(request, &mut log, connection).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        log.write(
            &self.metrics,
            &method,
            uri.path(),
            response.status(),
            started.elapsed(),
        );
        response
    }

    async fn dispatch(
        &self,
        request: Request<Body>,
        log: &mut AccessLog,
        connection: &ConnectionState,
    ) -> Result<Response<Body>, GatewayError> {
        // HTTP/2 carries many requests at once: they share the pool instead.
        let link = (request.version() != http::Version::HTTP_2).then_some(&connection.link);
        let memo = Some(&connection.token);
        crate::limits::check_head(&request, &self.limits)?;
        if request.method() == http::Method::CONNECT {
            // A proxy tunnel, not a request for the uploader: never forwarded.
            return Err(GatewayError::MethodNotAllowed(ALLOWED_METHODS));
        }
        let (route, target) = self.classify(&request)?;
        log.route_class = route.class();
        let request = crate::limits::limit_body(request, &self.limits)?;
        match route {
            Route::ListSessions => self.api.list(self.check(&request, memo, log).await?).await,
            Route::RevokeSession(id) => {
                let caller = self.check(&request, memo, log).await?;
                self.api.revoke(caller, &id).await
            }
            Route::RevokeAllSessions => {
                let caller = self.check(&request, memo, log).await?;
                self.api.revoke_all(caller).await
            }
            Route::SessionsMethodNotAllowed(allow) => Err(GatewayError::MethodNotAllowed(allow)),
            Route::Login | Route::Refresh | Route::Logout | Route::EndAllSessions => {
                let (request, pending) = self
                    .lifecycle
                    .before_forward(&route, request, &self.authenticator, log)
                    .await?;
                let response = self.forward(request, target, log, link).await?;
                self.lifecycle.after_response(pending, response, log).await
            }
            Route::ApiKey | Route::Public => self.forward(request, target, log, link).await,
            Route::Session => {
                self.check(&request, memo, log).await?;
                self.forward(request, target, log, link).await
            }
        }
    }

    /// Normalises the path, removes the prefix and classifies the route.
    fn classify(&self, request: &Request<Body>) -> Result<(Route, Target), GatewayError> {
        let path = routes::canonical_path(request.uri().path())?;
        let api_path = routes::strip_prefix(&path, &self.prefix).ok_or(GatewayError::NotFound)?;
        let route = self.routes.classify(request.method(), api_path);
        let forwarded_path = if self.strip_prefix { api_path } else { &path };
        let target = Target {
            upstream_uri: self
                .forwarder
                .upstream()
                .uri_for(forwarded_path, request.uri().query())?,
            original_host: request_host(request),
        };
        Ok((route, target))
    }

    /// The caller of a session route or endpoint, kept in the log.
    async fn check<'l>(
        &self,
        request: &Request<Body>,
        memo: Option<&TokenMemo>,
        log: &'l mut AccessLog,
    ) -> Result<&'l Caller, GatewayError> {
        let caller = self
            .authenticator
            .authenticate(request.headers(), memo)
            .await?;
        Ok(log.caller.insert(caller))
    }

    /// Forwards upstream, with the caller's identity when the request has one.
    async fn forward(
        &self,
        request: Request<Body>,
        target: Target,
        log: &mut AccessLog,
        link: Option<&UpstreamLink>,
    ) -> Result<Response<Body>, GatewayError> {
        let forwarded = self
            .forwarder
            .forward(request, target, &log.client, log.caller.as_ref(), link)
            .await;
        log.upstream_time = Some(forwarded.upstream_time);
        forwarded.response
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The session store (metered).
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The upstream.
    pub fn upstream(&self) -> &Arc<Upstream> {
        self.forwarder.upstream()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The sessions' uses not yet written to the store.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// The token of the admin listener's session routes (`None`: they are off).
    pub fn admin_token(&self) -> Option<&AdminToken> {
        self.admin_token.as_ref()
    }

    /// The connection limits.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// The expiry sweep of this gateway's store.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            store: self.store.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            interval: self.sweep_interval,
        }
    }
}
