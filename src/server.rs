//! Listeners and shutdown: accepts connections, serves HTTP/1.1 and HTTP/2 (prior knowledge)
//! with hyper, runs the expired-session sweeper, and drains on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::metrics::RevokeReason;
use crate::proxy::ClientInfo;

/// How long in-flight requests may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `gateway` on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to a grace period) and returns. The caller owns binding, so
/// tests run the real server on `127.0.0.1:0`.
pub async fn run(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let gateway = Arc::new(gateway);
    match gateway.store.count().await {
        Ok(count) => gateway.metrics.sessions_active.set(count as i64),
        Err(error) => tracing::error!(%error, "counting stored sessions failed"),
    }
    let sweeper = tokio::spawn(sweep_expired(gateway.clone()));
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gateway = gateway.clone();
                let client = ClientInfo { peer, tls: false };
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let gateway = gateway.clone();
                    async move {
                        let request = request.map(|body| body.map_err(Into::into).boxed());
                        Ok::<_, std::convert::Infallible>(gateway.handle(request, client).await)
                    }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection.into_owned());
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: closing the remaining connections");
    }
    sweeper.abort();
    let _ = sweeper.await;
    Ok(())
}

/// Removes expired sessions every `sessions.sweep_interval_seconds`. They are refused the
/// moment they expire; the sweep only frees space.
async fn sweep_expired(gateway: Arc<Gateway>) {
    let mut interval = tokio::time::interval(gateway.sweep_interval);
    loop {
        interval.tick().await;
        match gateway.store.sweep_expired(gateway.clock.now_ms()).await {
            Ok(0) => {}
            Ok(removed) => {
                gateway
                    .metrics
                    .sessions_revoked(RevokeReason::Expired, removed);
                tracing::info!(removed, "expired sessions swept");
            }
            Err(error) => tracing::error!(%error, "sweeping expired sessions failed"),
        }
    }
}
