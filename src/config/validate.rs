//! Checking the configuration: every value, each error naming the key and the bad value, and
//! the parsed forms of the values that need parsing.

use std::net::SocketAddr;

use http::HeaderName;
use http::uri::Authority;

use super::{Config, Settings};
use crate::proxy::IdentityHeaders;
use crate::routes::{RoutePattern, RoutePatterns, RoutePolicy};
use crate::sessions::{Clock, SystemClock};

/// The smallest read buffer hyper accepts.
const MIN_READ_BUFFER_BYTES: usize = 8 * 1024;
/// The largest read buffer allowed: far past where larger reads stop saving CPU.
const MAX_READ_BUFFER_BYTES: usize = 16 << 20;

/// A configuration error, naming the key and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (serde's message names the key).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A key has a bad value.
    #[error("config key `{key}`: {message} (got {value:?})")]
    Invalid {
        /// The key, dotted (`auth.algorithm`).
        key: String,
        /// The bad value.
        value: String,
        /// What is wrong with it.
        message: String,
    },
}

pub(super) fn invalid(key: &str, value: impl ToString, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

impl Config {
    /// Checks every value; the error names the key. The same checks as [`Config::settings`],
    /// for a configuration that is only checked.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.clone().settings().map(drop)
    }

    /// Checks every value and parses those that need it, once: the configuration the gateway
    /// runs with. The error names the key and the bad value.
    pub fn settings(self) -> Result<Settings, ConfigError> {
        let listen = self.listen_addr()?;
        let admin = self.admin_addr()?;
        if self.workers > 1024 {
            return Err(invalid(
                "workers (or SESSIONGATE_WORKERS)",
                self.workers,
                "expected 0 (one per core) up to 1024",
            ));
        }
        self.validate_limits()?;
        let redirect = self.validate_tls()?;
        let redis_urls = self.validate_store()?;
        match self.log.format.as_str() {
            "text" | "json" => {}
            other => return Err(invalid("log.format", other, "expected text or json")),
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", &self.log.level, e))?;
        let (upstream_authority, upstream_base_path) = self.upstream_uri()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "", "must not be empty"));
        }
        let prefix = &self.api_prefix;
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
            return Err(invalid(
                "api_prefix",
                prefix,
                "must be empty or start with '/' and not end with '/'",
            ));
        }
        let algorithm = self.algorithm()?;
        if self.auth.secret_env.is_empty() && self.auth.secret_file.is_none() {
            return Err(invalid(
                "auth.secret_env",
                "",
                "name a variable or set auth.secret_file",
            ));
        }
        if self.proxy.upstream_timeout_seconds == 0 {
            return Err(invalid(
                "proxy.upstream_timeout_seconds",
                0,
                "must be at least 1",
            ));
        }
        let header = |key: &str, name: &str| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(key, name, "not a valid header name"))
        };
        let identity = IdentityHeaders {
            user: header("proxy.user_header", &self.proxy.user_header)?,
            session: header("proxy.session_header", &self.proxy.session_header)?,
        };
        let location_header = match &self.sessions.location_header {
            Some(name) => Some(header("sessions.location_header", name)?),
            None => None,
        };
        let endpoint = &self.sessions.endpoint;
        if !endpoint.starts_with('/') || endpoint.len() < 2 || endpoint.ends_with('/') {
            return Err(invalid(
                "sessions.endpoint",
                endpoint,
                "must start with '/' and not end with '/'",
            ));
        }
        if self.sessions.capture_limit_bytes < 1024 {
            return Err(invalid(
                "sessions.capture_limit_bytes",
                self.sessions.capture_limit_bytes,
                "must be at least 1024",
            ));
        }
        if self.sessions.sweep_interval_seconds == 0 {
            return Err(invalid(
                "sessions.sweep_interval_seconds",
                0,
                "must be at least 1",
            ));
        }
        if !(1..=1 << 20).contains(&self.sessions.cache_mib) {
            return Err(invalid(
                "sessions.cache_mib",
                self.sessions.cache_mib,
                "expected 1 to 1048576 (MiB)",
            ));
        }
        let adopt_before_ms = match &self.sessions.adopt_issued_before {
            Some(instant) => Some(adoption_instant(instant)?),
            None => None,
        };
        let routes = RoutePolicy::new(&self.sessions.endpoint, self.route_patterns()?);
        Ok(Settings {
            listen,
            admin,
            redirect,
            upstream_authority,
            upstream_base_path,
            algorithm,
            identity,
            location_header,
            routes,
            redis_urls,
            adopt_before_ms,
            admin_token: None,
            config: self,
        })
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, value) in [
            (
                "limits.header_read_timeout_seconds",
                l.header_read_timeout_seconds,
            ),
            ("limits.keep_alive_idle_seconds", l.keep_alive_idle_seconds),
            ("limits.shutdown_grace_seconds", l.shutdown_grace_seconds),
        ] {
            if value == 0 {
                return Err(invalid(key, value, "must be at least 1"));
            }
        }
        if l.max_header_bytes < 1024 {
            return Err(invalid(
                "limits.max_header_bytes",
                l.max_header_bytes,
                "must be at least 1024",
            ));
        }
        // hyper refuses a read buffer under 8 KiB (it panics); one under the head limit would
        // make that limit unreachable.
        let least = l.max_header_bytes.max(MIN_READ_BUFFER_BYTES);
        if !(least..=MAX_READ_BUFFER_BYTES).contains(&l.read_buffer_bytes) {
            return Err(invalid(
                "limits.read_buffer_bytes",
                l.read_buffer_bytes,
                format!(
                    "expected {least} (8192 or limits.max_header_bytes, the larger) to {MAX_READ_BUFFER_BYTES}"
                ),
            ));
        }
        if l.max_connections == 0 {
            return Err(invalid("limits.max_connections", 0, "must be at least 1"));
        }
        Ok(())
    }

    /// The store's settings; the Redis URLs when the backend is Redis.
    fn validate_store(&self) -> Result<Vec<String>, ConfigError> {
        let store = &self.store;
        let urls = match store.backend.as_str() {
            "sled" => Vec::new(),
            "redis" => self.redis_urls()?,
            other => {
                return Err(invalid(
                    "store.backend (or SESSIONGATE_STORE_BACKEND)",
                    other,
                    "expected sled or redis",
                ));
            }
        };
        let prefix = &store.redis_key_prefix;
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(invalid(
                "store.redis_key_prefix",
                prefix,
                "must not be empty nor hold '{' or '}' (they mark Redis Cluster hash tags)",
            ));
        }
        if !(1..=60_000).contains(&store.timeout_ms) {
            return Err(invalid(
                "store.timeout_ms",
                store.timeout_ms,
                "expected 1 to 60000 (ms)",
            ));
        }
        Ok(urls)
    }

    /// The Redis URLs of `store.redis_url`: one, or with `store.redis_cluster` one or more
    /// separated by commas, each `redis://` or `rediss://` with a host. An error shows the URL
    /// with any password masked.
    fn redis_urls(&self) -> Result<Vec<String>, ConfigError> {
        let key = "store.redis_url (or SESSIONGATE_REDIS_URL)";
        let urls: Vec<String> = self
            .store
            .redis_url
            .split(',')
            .map(|url| url.trim().to_string())
            .collect();
        if urls.len() > 1 && !self.store.redis_cluster {
            return Err(invalid(
                key,
                masked(&self.store.redis_url),
                "several URLs need store.redis_cluster = true",
            ));
        }
        for url in &urls {
            let parsed = http::Uri::try_from(url.as_str()).ok();
            let scheme_ok = parsed
                .as_ref()
                .and_then(|u| u.scheme_str())
                .is_some_and(|s| s == "redis" || s == "rediss");
            let host_ok = parsed
                .as_ref()
                .and_then(|u| u.host())
                .is_some_and(|h| !h.is_empty());
            if !scheme_ok || !host_ok {
                return Err(invalid(
                    key,
                    masked(url),
                    "expected redis://host:port or rediss://host:port",
                ));
            }
        }
        Ok(urls)
    }

    /// The TLS settings; the redirect listener's address, if there is one.
    fn validate_tls(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => Err(invalid(
                "tls.key",
                "",
                "tls.cert is set, so tls.key must be too",
            )),
            (None, Some(_)) => Err(invalid(
                "tls.cert",
                "",
                "tls.key is set, so tls.cert must be too",
            )),
            (None, None) if t.redirect_listen.is_some() => Err(invalid(
                "tls.redirect_listen",
                t.redirect_listen.as_deref().unwrap_or_default(),
                "redirects to HTTPS need tls.cert and tls.key",
            )),
            _ => match &t.redirect_listen {
                Some(addr) => addr
                    .parse::<SocketAddr>()
                    .map(Some)
                    .map_err(|_| invalid("tls.redirect_listen", addr, "expected host:port")),
                None => Ok(None),
            },
        }
    }

    /// The admin listener's address, if there is one.
    fn admin_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.admin_listen.is_empty() {
            return Ok(None);
        }
        self.admin_listen.parse().map(Some).map_err(|_| {
            invalid(
                "admin_listen",
                &self.admin_listen,
                "expected host:port, e.g. 127.0.0.1:9090",
            )
        })
    }

    /// The listen address, parsed.
    fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                &self.listen,
                "expected host:port, e.g. 127.0.0.1:8080",
            )
        })
    }

    /// The upstream base URL, parsed: `http` scheme, a host, no query. Its authority, and
    /// its path without a trailing slash (the base every forwarded path goes under).
    fn upstream_uri(&self) -> Result<(Authority, String), ConfigError> {
        let bad = |why: &str| invalid("upstream", &self.upstream, why);
        let uri: http::Uri = self
            .upstream
            .parse()
            .map_err(|_| bad("not a URL, expected e.g. http://127.0.0.1:3000"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// upstreams are supported"));
        }
        if uri.query().is_some() {
            return Err(bad("must not have a query"));
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        let authority = uri
            .into_parts()
            .authority
            .ok_or_else(|| bad("has no host"))?;
        Ok((authority, base_path))
    }

    /// The configured JWT algorithm.
    fn algorithm(&self) -> Result<jsonwebtoken::Algorithm, ConfigError> {
        match self.auth.algorithm.as_str() {
            "HS256" => Ok(jsonwebtoken::Algorithm::HS256),
            "HS384" => Ok(jsonwebtoken::Algorithm::HS384),
            "HS512" => Ok(jsonwebtoken::Algorithm::HS512),
            other => Err(invalid(
                "auth.algorithm",
                other,
                "expected HS256, HS384 or HS512",
            )),
        }
    }

    /// Every route list, parsed, with its key.
    fn route_patterns(&self) -> Result<RoutePatterns, ConfigError> {
        let parse = |key: &str, list: &[String]| -> Result<Vec<RoutePattern>, ConfigError> {
            list.iter()
                .map(|text| RoutePattern::parse(text).map_err(|why| invalid(key, text, why)))
                .collect()
        };
        let r = &self.routes;
        Ok(RoutePatterns {
            public: parse("routes.public", &r.public)?,
            api_key: parse("routes.api_key", &r.api_key)?,
            login: parse("routes.login", &r.login)?,
            refresh: parse("routes.refresh", &r.refresh)?,
            logout: parse("routes.logout", &r.logout)?,
            end_all_sessions: parse("routes.end_all_sessions", &r.end_all_sessions)?,
        })
    }
}

/// A URL with the password of its user-info (`redis://user:secret@host`) masked, for errors.
fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

/// `sessions.adopt_issued_before`: an RFC 3339 instant, not in the future, in ms.
fn adoption_instant(instant: &str) -> Result<i64, ConfigError> {
    const KEY: &str = "sessions.adopt_issued_before";
    let parsed =
        time::OffsetDateTime::parse(instant, &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                invalid(
                    KEY,
                    instant,
                    "expected an RFC 3339 instant, such as 2026-12-03T09:00:00Z",
                )
            })?;
    let ms = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| invalid(KEY, instant, "out of range"))?;
    if ms > SystemClock.now_ms() {
        return Err(invalid(
            KEY,
            instant,
            "is in the future: only tokens issued before the gateway was put in front of the uploader may be adopted",
        ));
    }
    Ok(ms)
}
