//! Listeners and shutdown: the main listener (plain or TLS, HTTP/1.1 and HTTP/2), the admin
//! listener, the optional HTTP-to-HTTPS redirect listener, connection limits, the
//! expired-session sweeper, and the graceful drain on shutdown.

mod head_timer;
mod idle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::body::{Body, empty};
use crate::config::LimitsConfig;
use crate::gateway::ConnectionState;
use crate::gateway::Gateway;
use crate::proxy::ClientInfo;
use crate::tls::CertStore;
use head_timer::HeadTimer;
use idle::IdleTimeout;

/// The sockets the gateway serves; the caller binds them (tests use `127.0.0.1:0`).
pub struct Listeners {
    /// The main listener: the API, plain or TLS.
    pub main: TcpListener,
    /// The admin listener: metrics, health, TLS reload.
    pub admin: Option<TcpListener>,
    /// Plain HTTP answering 308 redirects to HTTPS (only with TLS).
    pub redirect: Option<TcpListener>,
}

impl Listeners {
    /// Only a main listener.
    pub fn main_only(main: TcpListener) -> Listeners {
        Listeners {
            main,
            admin: None,
            redirect: None,
        }
    }
}

/// A gateway ready to serve, with its TLS certificate if the main listener speaks TLS.
pub struct Server {
    gateway: Arc<Gateway>,
    tls: Option<Arc<CertStore>>,
}

impl Server {
    /// Serves `gateway` in plain HTTP.
    pub fn new(gateway: Gateway) -> Server {
        Server {
            gateway: Arc::new(gateway),
            tls: None,
        }
    }

    /// Serves the main listener with TLS from `certs` (reloadable).
    pub fn with_tls(mut self, certs: Arc<CertStore>) -> Server {
        self.tls = Some(certs);
        self
    }

    /// Serves until `shutdown` completes; then stops accepting, lets in-flight requests
    /// finish within `limits.shutdown_grace_seconds`, and returns.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let gateway = self.gateway;
        let limits = gateway.limits().clone();
        let graceful = GracefulShutdown::new();
        let mut tasks = JoinSet::new();
        let shared = gateway.shared().clone();
        tasks.spawn(gateway.sweeper().run());
        tasks.spawn(
            shared
                .activity
                .clone()
                .run(shared.store.clone(), shared.clock.clone()),
        );
        if let Some(listener) = listeners.admin {
            if gateway.admin_token().is_none() {
                tracing::info!(
                    "the admin session routes (/admin/...) are off: set admin.token_file or \
                     SESSIONGATE_ADMIN_TOKEN to turn them on"
                );
            }
            let admin = Arc::new(Admin::of(&gateway, self.tls.clone()));
            tasks.spawn(serve_admin(listener, admin));
        }
        if let Some(listener) = listeners.redirect {
            tasks.spawn(serve_redirects(listener));
        }
        let main = MainListener {
            gateway: gateway.clone(),
            tls: self.tls.map(crate::tls::acceptor),
            builder: Arc::new(connection_builder(&limits)),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            idle: Duration::from_secs(limits.keep_alive_idle_seconds),
        };
        main.accept_until(listeners.main, &graceful, shutdown).await;

        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        tracing::info!("shutting down: no new connections, draining in-flight requests");
        let grace = Duration::from_secs(limits.shutdown_grace_seconds);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "grace period over: closing the remaining connections"
            );
        }
        // The uses noted since the last minute's write, so that a graceful stop loses none.
        let now = shared.clock.now_ms();
        if let Err(error) = shared
            .activity
            .flush(shared.store.as_ref(), now, Duration::ZERO)
            .await
        {
            tracing::warn!(%error, "the sessions' last uses of the last minute were not written");
        }
        Ok(())
    }
}

/// Serves `gateway` on `listener` in plain HTTP, with its configured limits, until
/// `shutdown` completes. The caller owns binding.
pub async fn run(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(gateway)
        .serve(Listeners::main_only(listener), shutdown)
        .await
}

/// hyper's connection settings from the limits: HTTP/1.1 header timeout and read buffer,
/// HTTP/2 concurrency and header size. (HTTP/1.1 heads are held to `max_header_bytes` by
/// the gateway itself: hyper's only limit on a head is its read buffer.)
fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Its sleeps are kept from one request's head to the next, rather than made and put
        // into tokio's timer wheel for every request.
        .timer(HeadTimer::new())
        // hyper's timer runs from the moment a connection waits for a request's head, so it
        // also bounds how long a kept-alive HTTP/1.1 connection may sit idle.
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_seconds))
        .max_buf_size(limits.read_buffer_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

struct MainListener {
    gateway: Arc<Gateway>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl MainListener {
    async fn accept_until(
        &self,
        listener: TcpListener,
        graceful: &GracefulShutdown,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            // A slot first: at the connection limit, new clients wait in the accept queue.
            let slot = tokio::select! {
                slot = self.slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                () = &mut shutdown => return,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let _ = stream.set_nodelay(true);
            let client = ClientInfo::new(peer, self.tls.is_some());
            let connection = Connection {
                gateway: self.gateway.clone(),
                builder: self.builder.clone(),
                watcher: graceful.watcher(),
                client,
            };
            let tls = self.tls.clone();
            let idle = self.idle;
            tokio::spawn(async move {
                let _slot = slot;
                let metrics = connection.gateway.shared().metrics.clone();
                metrics.connections_open.inc();
                let stream = IdleTimeout::new(stream, idle);
                match tls {
                    None => connection.serve(stream).await,
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(idle, acceptor.accept(stream));
                        match handshake.await {
                            Ok(Ok(stream)) => connection.serve(stream).await,
                            Ok(Err(error)) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
                metrics.connections_open.dec();
            });
        }
    }
}

/// One accepted client connection.
struct Connection {
    gateway: Arc<Gateway>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    client: ClientInfo,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let gateway = self.gateway;
        let client = self.client;
        let peer = client.peer;
        let state = Arc::new(ConnectionState::default());
        let service = service_fn(move |request: Request<Incoming>| {
            let (gateway, client, state) = (gateway.clone(), client.clone(), state.clone());
            async move {
                let request = request.map(crate::body::from_client);
                let response = gateway.handle(request, client, &state).await;
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        if let Err(error) = self.watcher.watch(connection).await {
            tracing::debug!(%error, %peer, "connection ended with an error");
        }
    }
}

/// Serves the admin endpoints (HTTP/1.1) until aborted.
async fn serve_admin(listener: TcpListener, admin: Arc<Admin>) {
    let builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    serve_plain(listener, builder, move |request| {
        let admin = admin.clone();
        async move { admin.handle(request).await }
    })
    .await
}

/// Answers every request with a 308 to the same host and path over HTTPS, until aborted.
async fn serve_redirects(listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    serve_plain(listener, builder, |request| async move {
        redirect_to_https(&request)
    })
    .await
}

/// A small plain-HTTP listener (admin, redirect) answering with `answer`, until aborted; its
/// connections end with it.
async fn serve_plain<F, Fut>(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    answer: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let answer = answer.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let answer = answer.clone();
            async move { Ok::<_, std::convert::Infallible>(answer(request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        connections.spawn(connection);
    }
}

/// The 308 answer of the redirect listener; 400 without a usable Host.
fn redirect_to_https<B>(request: &Request<B>) -> Response<Body> {
    let host = crate::proxy::request_host(request);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = host
        .as_ref()
        .and_then(|host| host.to_str().ok())
        .map(|host| https_location(host, path))
        .and_then(|l| http::HeaderValue::from_str(&l).ok());
    let mut response = Response::new(empty());
    match location {
        Some(location) => {
            *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
        }
        None => *response.status_mut() = StatusCode::BAD_REQUEST,
    }
    response
}

/// `https://` + the host without its port (the HTTPS port is the default) + the path.
fn https_location(host: &str, path: &str) -> String {
    let name = match host.rsplit_once(':') {
        // An IPv6 literal keeps its colons: only a port after `]` is removed.
        Some((name, port))
            if port.bytes().all(|b| b.is_ascii_digit())
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => host,
    };
    format!("https://{name}{path}")
}

#[cfg(test)]
mod tests;
