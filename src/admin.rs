//! The admin listener: `/metrics` (Prometheus text format), `/healthz` (the process is up),
//! `/readyz` (the store answers and the upstream answered recently), and
//! `POST /reload-tls`; and, behind the admin token, the operators' session routes under
//! `/admin/` ([`routes`], calling [`sessions`]). Also the client side of
//! `sessiongate healthcheck` and `sessiongate sessions` ([`client`]).

pub mod client;
pub mod routes;
pub mod sessions;
mod token;

pub use sessions::SessionAdmin;
pub use token::AdminToken;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::body::{Body, full};
use crate::error::{json_message, json_response};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::proxy::Upstream;
use crate::sessions::SessionStore;
use crate::tls::CertStore;

/// How recent an upstream answer must be for `/readyz` to skip probing it.
const UPSTREAM_FRESH: Duration = Duration::from_secs(30);

/// What the admin endpoints look at.
pub struct Admin {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The session store.
    pub store: Arc<dyn SessionStore>,
    /// The upstream, for readiness.
    pub upstream: Arc<Upstream>,
    /// The served certificate, when the main listener speaks TLS.
    pub tls: Option<Arc<CertStore>>,
    /// The operators' session calls.
    pub sessions: SessionAdmin,
    /// The admin token; `None`: the session routes are off.
    pub token: Option<AdminToken>,
}

impl Admin {
    /// The admin endpoints of `gateway`, and the certificate it serves, if any.
    pub fn of(gateway: &Gateway, tls: Option<Arc<CertStore>>) -> Admin {
        let shared = gateway.shared();
        Admin {
            metrics: shared.metrics.clone(),
            store: shared.store.clone(),
            upstream: gateway.upstream().clone(),
            tls,
            sessions: SessionAdmin::new(
                shared.store.clone(),
                shared.clock.clone(),
                shared.activity.clone(),
                Some(shared.metrics.clone()),
            ),
            token: gateway.admin_token().cloned(),
        }
    }
}

impl Admin {
    /// Answers one admin request.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body> {
        if routes::is_admin_path(request.uri().path()) {
            return routes::answer(&self.sessions, self.token.as_ref(), &request).await;
        }
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/metrics") => {
                // The store's own count (a store that does not answer leaves the last one).
                if let Ok(count) = self.store.count().await {
                    let count = i64::try_from(count).unwrap_or(i64::MAX);
                    self.metrics.sessions_active.set(count);
                }
                let mut response = Response::new(full(self.metrics.render()));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            (&Method::GET, "/healthz") => json_response(StatusCode::OK, &json!({"status": "ok"})),
            (&Method::GET, "/readyz") => self.readiness().await,
            (&Method::POST, "/reload-tls") => self.reload_tls(),
            (_, "/metrics" | "/healthz" | "/readyz" | "/reload-tls") => json_message(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "Method not allowed on this path.",
            ),
            _ => json_message(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found."),
        }
    }

    async fn readiness(&self) -> Response<Body> {
        let store = self.store.ping().await;
        let upstream_ok =
            self.upstream.answered_within(UPSTREAM_FRESH) || self.upstream.probe().await;
        let status = if store.is_ok() && upstream_ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let word = |ok: bool| if ok { "ok" } else { "failing" };
        let mut body = json!({
            "status": if status == StatusCode::OK { "ready" } else { "not ready" },
            "store": word(store.is_ok()),
            "store_backend": self.store.backend(),
            "upstream": word(upstream_ok),
        });
        if let Err(error) = store {
            // What failed, never where with what credentials: the error names no URL.
            body["store_error"] = json!(error.kind());
        }
        json_response(status, &body)
    }

    fn reload_tls(&self) -> Response<Body> {
        let Some(tls) = &self.tls else {
            return json_message(
                StatusCode::NOT_FOUND,
                "TLS_OFF",
                "The main listener does not use TLS.",
            );
        };
        match tls.reload() {
            Ok(()) => {
                tracing::info!(serial = %tls.serial_hex(), "TLS certificate reloaded");
                json_response(
                    StatusCode::OK,
                    &json!({"code": "TLS_RELOADED", "serial": tls.serial_hex()}),
                )
            }
            Err(error) => {
                tracing::error!(%error, "TLS reload failed; the previous certificate stays");
                json_message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "TLS_RELOAD_FAILED",
                    &error.to_string(),
                )
            }
        }
    }
}

/// `sessiongate healthcheck`: GETs `/healthz` on the admin listener; true on a 200. A
/// wildcard listen address is reached on loopback.
pub async fn healthcheck(admin: SocketAddr) -> Result<(), String> {
    let target = client::reachable(admin);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect {target}: {e}"))?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write {target}: {e}"))?;
        let mut answer = Vec::new();
        stream
            .take(64 * 1024)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read {target}: {e}"))?;
        let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
        let status_line = String::from_utf8_lossy(status_line).trim().to_string();
        if status_line.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(format!("{target}/healthz answered {status_line:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| format!("{target}/healthz did not answer within 3 s"))?
}
