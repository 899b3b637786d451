//! What one request's access-log line and request metrics say of it, gathered as the request
//! goes through the gateway, and written once it is answered.

use std::time::{Duration, Instant};

use http::{Method, Request, StatusCode, Uri};

use crate::auth::Caller;
use crate::metrics::Metrics;
use crate::proxy::ClientInfo;
use crate::routes;

/// Most of a request's path the access log keeps: every path the gateway serves fits; a longer
/// one (refused anyway, 414 or 431) is cut, so that long requests cannot flood the log.
const MAX_LOGGED_PATH_LEN: usize = routes::MAX_PATH_LEN;

/// One request, as the access log and the metrics will tell it.
#[derive(Debug)]
pub struct AccessLog {
    /// When the request's head was handed to the gateway.
    started: Instant,
    /// The request's method and URI, as received (the request itself moves on); the URI only
    /// when the access log is on (the log level is set once, at start-up), else it would be
    /// copied and dropped for nothing.
    method: Method,
    uri: Option<Uri>,
    /// The client connection.
    pub client: ClientInfo,
    /// The route class, once classified.
    pub route_class: &'static str,
    /// The caller, once authenticated (or once a login or refresh names them).
    pub caller: Option<Caller>,
    /// Time the upstream took to answer with headers, if the request went upstream.
    pub upstream_time: Option<Duration>,
}

impl AccessLog {
    /// `request` from `client`, starting now, not yet classified.
    pub fn start<B>(request: &Request<B>, client: ClientInfo) -> AccessLog {
        AccessLog {
            started: Instant::now(),
            method: request.method().clone(),
            uri: enabled().then(|| request.uri().clone()),
            client,
            route_class: "invalid",
            caller: None,
            upstream_time: None,
        }
    }

    /// Counts the request, answered with `status`, and writes its access-log line (never the
    /// query, a token or a cookie).
    pub fn finish(self, metrics: &Metrics, status: StatusCode) {
        let elapsed = self.started.elapsed();
        let method = &self.method;
        metrics.observe_request(self.route_class, method, status, elapsed.as_secs_f64());
        let Some(uri) = &self.uri else {
            return;
        };
        let path = uri.path();
        let caller = self.caller.as_ref();
        tracing::info!(
            target: "sessiongate::access",
            %method,
            path = %logged_path(path),
            status = status.as_u16(),
            route = self.route_class,
            ms = elapsed.as_secs_f64() * 1000.0,
            upstream_ms = self.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            client = %self.client.peer.ip(),
            session = caller.map(|c| tracing::field::display(c.session_id)),
            user = caller.map(|c| c.user.as_str()),
        );
    }
}

/// Whether access-log lines are written.
fn enabled() -> bool {
    tracing::enabled!(target: "sessiongate::access", tracing::Level::INFO)
}

/// The path as the access log shows it: whole, or its first [`MAX_LOGGED_PATH_LEN`] bytes and
/// an ellipsis.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.len() <= MAX_LOGGED_PATH_LEN {
        return path.into();
    }
    let mut end = MAX_LOGGED_PATH_LEN;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::{MAX_LOGGED_PATH_LEN, logged_path};

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
}
