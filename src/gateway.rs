//! The per-request path, top to bottom: normalise the path, classify the route, check the
//! token, then answer (the sessions endpoints) or forward (everything else, a lifecycle
//! route between its two hooks).

mod build;

use std::time::Duration;

use http::{Request, Response};

pub use build::Shared;

use crate::access_log::AccessLog;
use crate::admin::AdminToken;
use crate::api::SessionsApi;
use crate::auth::{Authenticator, Caller, TokenMemo};
use crate::body::Body;
use crate::config::LimitsConfig;
use crate::error::GatewayError;
use crate::lifecycle::Lifecycle;
use crate::proxy::{ClientInfo, Forwarder, Target, UpstreamLink, request_host};
use crate::routes::{self, Route, RoutePolicy};

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

/// Everything a request needs, each part holding its own handles (put together in
/// [`build`]).
pub struct Gateway {
    routes: RoutePolicy,
    prefix: String,
    strip_prefix: bool,
    limits: LimitsConfig,
    authenticator: Authenticator,
    api: SessionsApi,
    lifecycle: Lifecycle,
    forwarder: Forwarder,
    shared: Shared,
    sweep_interval: Duration,
    admin_token: Option<AdminToken>,
}

impl Gateway {
    /// Answers one request of a client connection. Never fails: every error becomes its JSON
    /// response here. Writes the access-log line and the request metrics.
    pub async fn handle(
        &self,
        request: Request<Body>,
        client: ClientInfo,
        connection: &ConnectionState,
    ) -> Response<Body> {
        let mut log = AccessLog::start(&request, client);
        let response = match self.dispatch(request, &mut log, connection).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        log.finish(&self.shared.metrics, response.status());
        response
    }

    async fn dispatch(
        &self,
        mut request: Request<Body>,
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
        crate::limits::limit_body(&mut request, &self.limits)?;
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
}
