//! Configuration: the TOML file, the environment overrides, and `validate()`.
//!
//! Every field has a documented default, unknown keys are refused, and validation errors name
//! the key and the bad value, so `sessiongate --check-config` tells an operator exactly what
//! to fix. The signing secret never appears in the file: the file names the environment
//! variable (or a file) that holds it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::routes::RoutePattern;

/// The smallest read buffer hyper accepts.
const MIN_READ_BUFFER_BYTES: usize = 8 * 1024;
/// The largest read buffer allowed: far past where larger reads stop saving CPU.
const MAX_READ_BUFFER_BYTES: usize = 16 << 20;

/// The whole configuration, as read from `config/sessiongate.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gateway listens on. Default `127.0.0.1:8080`; override `SESSIONGATE_LISTEN`.
    pub listen: String,
    /// Address of the admin listener (`/metrics`, `/healthz`, `/readyz`). Loopback by
    /// default: `127.0.0.1:9090`; override `SESSIONGATE_ADMIN_LISTEN`. Empty: no admin listener.
    pub admin_listen: String,
    /// Worker threads of the runtime. 0 (the default): one per CPU core. Override
    /// `SESSIONGATE_WORKERS`.
    pub workers: usize,
    /// Base URL of the uploader's API server, `http://host:port[/base]`. Default
    /// `http://127.0.0.1:3000`; override `SESSIONGATE_UPSTREAM`.
    pub upstream: String,
    /// Directory of the sled session database, created if missing. Relative paths are taken
    /// from the working directory. Default `data/sessions`; override `SESSIONGATE_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Path prefix under which clients call the API, e.g. `/api` (the Share web client's).
    /// Empty: no prefix. Requests outside the prefix are answered 404. Default `/api`.
    pub api_prefix: String,
    /// Remove `api_prefix` before forwarding (`/api/auth/login` reaches the uploader as
    /// `/auth/login`), as the web client's own dev proxy does. Default `true`.
    pub strip_prefix: bool,
    /// Token verification.
    pub auth: AuthConfig,
    /// Forwarding to the upstream.
    pub proxy: ProxyConfig,
    /// Session tracking.
    pub sessions: SessionsConfig,
    /// Which uploader routes are public, take API keys, or create, rotate or end sessions.
    pub routes: RoutesConfig,
    /// Connection timeouts and limits.
    pub limits: LimitsConfig,
    /// TLS termination on the main listener.
    pub tls: TlsConfig,
    /// Logging.
    pub log: LogConfig,
}

/// Connection hygiene: timeouts and limits, each answered clearly.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Seconds a client has to send a request's headers; then the connection is closed (a
    /// slow client cannot hold a worker). Default 10.
    pub header_read_timeout_seconds: u64,
    /// Seconds an idle keep-alive connection is kept open. Default 75.
    pub keep_alive_idle_seconds: u64,
    /// Largest request head (request line and headers), in bytes; larger is answered 431.
    /// Default 16384.
    pub max_header_bytes: usize,
    /// HTTP/1.1 read buffer, in bytes: the most hyper reads from a client connection at once.
    /// It also bounds the head hyper will hold at all (a longer one is answered hyper's bare
    /// 431 and the connection closed); heads between `max_header_bytes` and this get the
    /// gateway's JSON 431. Larger reads cost less CPU per byte of an upload (benches/README.md);
    /// each connection's buffer grows to this only while a body or a long head comes in (the
    /// worst case is `max_connections` times this). Default 262144.
    pub read_buffer_bytes: usize,
    /// Most client connections open at once; further ones wait to be accepted. Default 10000.
    pub max_connections: usize,
    /// Largest request body, in bytes, answered 413 beyond. 0 (the default): no limit, since
    /// uploads are large.
    pub max_request_body_bytes: u64,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT. Default 30.
    pub shutdown_grace_seconds: u64,
}

/// TLS on the main listener. Both `cert` and `key` set: the listener speaks TLS 1.2/1.3 with
/// ALPN `h2` and `http/1.1`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first. Override `SESSIONGATE_TLS_CERT`.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, RSA or EC). Override `SESSIONGATE_TLS_KEY`.
    pub key: Option<PathBuf>,
    /// Optional plain-HTTP listener that answers every request with a 308 redirect to HTTPS.
    pub redirect_listen: Option<String>,
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (the default) or `json`.
    pub format: String,
    /// Filter, e.g. `info` (the default) or `sessiongate=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout_seconds: 10,
            keep_alive_idle_seconds: 75,
            max_header_bytes: 16 * 1024,
            read_buffer_bytes: 256 * 1024,
            max_connections: 10_000,
            max_request_body_bytes: 0,
            shutdown_grace_seconds: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// How access tokens are verified.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Environment variable holding the HS256 signing secret. Default `JWT_SECRET`, the
    /// uploader's own variable.
    pub secret_env: String,
    /// File holding the secret instead (trailing newline ignored). Takes precedence over
    /// `secret_env` when set. Default: unset.
    pub secret_file: Option<PathBuf>,
    /// The only accepted JWT algorithm. Default `HS256`; `HS384` and `HS512` are accepted too.
    pub algorithm: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds. Default 5.
    pub leeway_seconds: u64,
    /// Required `iss` claim. Unset (the default): `iss` is not checked, since the uploader
    /// omits it when its `WEB_URI` is unset.
    pub issuer: Option<String>,
}

/// How requests are forwarded.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Seconds to wait for the upstream's response headers before answering 504. Bodies are
    /// streamed without a deadline. Default 30.
    pub upstream_timeout_seconds: u64,
    /// Header carrying the caller's user id to the upstream on session routes. Stripped from
    /// every client request first. Default `x-sessiongate-user`.
    pub user_header: String,
    /// Header carrying the caller's session id to the upstream. Stripped from every client
    /// request first. Default `x-sessiongate-session`.
    pub session_header: String,
}

/// How sessions are learned and kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Path of the session endpoints, after the prefix. Default `/account/sessions`.
    pub endpoint: String,
    /// Request header holding the client's location ("City, Region Country"), set by a
    /// trusted CDN or proxy in front of the gateway. Unset (the default): every location is
    /// "unknown". Only set it when that proxy overwrites the header on every request.
    pub location_header: Option<String>,
    /// Largest login/refresh body the gateway reads, in bytes. A larger login response
    /// passes through without creating a session (and is logged); a larger refresh request
    /// is answered 413. Default 65536.
    pub capture_limit_bytes: usize,
    /// Seconds after a refresh during which the replaced refresh token may still be presented
    /// (two tabs racing) and is merely refused. Presented later, it means someone holds a
    /// copy: the whole session is revoked. Default 10.
    pub refresh_reuse_grace_seconds: u64,
    /// Seconds between sweeps of expired sessions. Expired sessions are refused at once
    /// whatever this is; the sweep only frees space. Default 60.
    pub sweep_interval_seconds: u64,
    /// The store's page cache in MiB (sled's `cache_capacity`): the most of sled's pages kept
    /// in memory. A store larger than this is read from disk (the OS's page cache) as it
    /// is used; the token check's copy of the access index is in memory whatever this is.
    /// Default 1024, sled's own default.
    pub cache_mib: u64,
}

/// The uploader's route table, as `"METHOD /path"` patterns (see [`RoutePattern`]).
/// Everything not listed is a session route: it needs a token of a live session.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutesConfig {
    /// Forwarded without any token check.
    pub public: Vec<String>,
    /// Forwarded without a session check: the uploader checks its own API keys there.
    pub api_key: Vec<String>,
    /// A 2xx JSON response with `access_token` and `refresh_token` creates a session.
    pub login: Vec<String>,
    /// Rotates the session of the body's `refresh_token`.
    pub refresh: Vec<String>,
    /// Ends the caller's session.
    pub logout: Vec<String>,
    /// On a 2xx response, ends every session of the caller (password change).
    pub end_all_sessions: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            workers: 0,
            upstream: "http://127.0.0.1:3000".into(),
            data_dir: PathBuf::from("data/sessions"),
            api_prefix: "/api".into(),
            strip_prefix: true,
            auth: AuthConfig::default(),
            proxy: ProxyConfig::default(),
            sessions: SessionsConfig::default(),
            routes: RoutesConfig::default(),
            limits: LimitsConfig::default(),
            tls: TlsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret_env: "JWT_SECRET".into(),
            secret_file: None,
            algorithm: "HS256".into(),
            leeway_seconds: 5,
            issuer: None,
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            upstream_timeout_seconds: 30,
            user_header: "x-sessiongate-user".into(),
            session_header: "x-sessiongate-session".into(),
        }
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            endpoint: "/account/sessions".into(),
            location_header: None,
            capture_limit_bytes: 64 * 1024,
            refresh_reuse_grace_seconds: 10,
            sweep_interval_seconds: 60,
            cache_mib: 1024,
        }
    }
}

impl Default for RoutesConfig {
    /// The Share uploader's route table (release 5.0.0).
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        RoutesConfig {
            public: list(&[
                "POST /auth/register",
                "* /user/*",
                "GET /upload/:id",
                "GET /upload/:id/raw",
            ]),
            api_key: list(&["POST /3rd-party/upload"]),
            login: list(&["POST /auth/login", "POST /auth/two-factor"]),
            refresh: list(&["POST /auth/refresh"]),
            logout: list(&["POST /auth/logout"]),
            end_all_sessions: list(&["PUT /account/change-password"]),
        }
    }
}

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

fn invalid(key: &str, value: impl ToString, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        message: message.to_string(),
    }
}

impl Config {
    /// Reads the file, applies the `SESSIONGATE_*` overrides from the process environment,
    /// and validates the result.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        config.apply_overrides(|name| std::env::var(name).ok());
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (no overrides, no validation).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies the documented environment overrides, reading variables through `env`.
    pub fn apply_overrides(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(v) = env("SESSIONGATE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("SESSIONGATE_UPSTREAM") {
            self.upstream = v;
        }
        if let Some(v) = env("SESSIONGATE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("SESSIONGATE_ADMIN_LISTEN") {
            self.admin_listen = v;
        }
        if let Some(v) = env("SESSIONGATE_WORKERS") {
            // A value that is not a number is reported by validate(), naming the variable.
            self.workers = v.parse().unwrap_or(usize::MAX);
        }
        if let Some(v) = env("SESSIONGATE_TLS_CERT") {
            self.tls.cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("SESSIONGATE_TLS_KEY") {
            self.tls.key = Some(PathBuf::from(v));
        }
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.admin_addr()?;
        if self.workers > 1024 {
            return Err(invalid(
                "workers (or SESSIONGATE_WORKERS)",
                self.workers,
                "expected 0 (one per core) up to 1024",
            ));
        }
        self.validate_limits()?;
        self.validate_tls()?;
        match self.log.format.as_str() {
            "text" | "json" => {}
            other => return Err(invalid("log.format", other, "expected text or json")),
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", &self.log.level, e))?;
        self.upstream_uri()?;
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
        self.algorithm()?;
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
        for (key, name) in [
            ("proxy.user_header", &self.proxy.user_header),
            ("proxy.session_header", &self.proxy.session_header),
        ] {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(key, name, "not a valid header name"))?;
        }
        if let Some(name) = &self.sessions.location_header {
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                invalid("sessions.location_header", name, "not a valid header name")
            })?;
        }
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
        self.route_patterns()?;
        Ok(())
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

    fn validate_tls(&self) -> Result<(), ConfigError> {
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
            _ => {
                if let Some(addr) = &t.redirect_listen {
                    addr.parse::<SocketAddr>()
                        .map_err(|_| invalid("tls.redirect_listen", addr, "expected host:port"))?;
                }
                Ok(())
            }
        }
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
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
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                &self.listen,
                "expected host:port, e.g. 127.0.0.1:8080",
            )
        })
    }

    /// The upstream base URL, parsed: `http` scheme, a host, no query.
    pub fn upstream_uri(&self) -> Result<http::Uri, ConfigError> {
        let bad = |why: &str| invalid("upstream", &self.upstream, why);
        let uri: http::Uri = self
            .upstream
            .parse()
            .map_err(|_| bad("not a URL, expected e.g. http://127.0.0.1:3000"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// upstreams are supported"));
        }
        if uri.authority().is_none() {
            return Err(bad("has no host"));
        }
        if uri.query().is_some() {
            return Err(bad("must not have a query"));
        }
        Ok(uri)
    }

    /// The configured JWT algorithm.
    pub fn algorithm(&self) -> Result<jsonwebtoken::Algorithm, ConfigError> {
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
    pub fn route_patterns(&self) -> Result<RoutePatterns, ConfigError> {
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

    /// Reads the signing secret from the file or environment variable the config names.
    /// The error says where it looked, never what it found.
    pub fn load_secret(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<u8>, ConfigError> {
        let secret = match &self.auth.secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| invalid("auth.secret_file", path.display(), e))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => env(&self.auth.secret_env).ok_or_else(|| {
                invalid(
                    "auth.secret_env",
                    &self.auth.secret_env,
                    "the environment variable it names is not set: the gateway needs the \
                     uploader's signing secret",
                )
            })?,
        };
        if secret.is_empty() {
            let key = match self.auth.secret_file {
                Some(_) => "auth.secret_file",
                None => "auth.secret_env",
            };
            return Err(invalid(key, "", "the secret is empty"));
        }
        Ok(secret.into_bytes())
    }
}

/// The parsed route lists of [`RoutesConfig`].
#[derive(Debug, Clone, Default)]
pub struct RoutePatterns {
    /// See [`RoutesConfig::public`].
    pub public: Vec<RoutePattern>,
    /// See [`RoutesConfig::api_key`].
    pub api_key: Vec<RoutePattern>,
    /// See [`RoutesConfig::login`].
    pub login: Vec<RoutePattern>,
    /// See [`RoutesConfig::refresh`].
    pub refresh: Vec<RoutePattern>,
    /// See [`RoutesConfig::logout`].
    pub logout: Vec<RoutePattern>,
    /// See [`RoutesConfig::end_all_sessions`].
    pub end_all_sessions: Vec<RoutePattern>,
}

#[cfg(test)]
mod tests;
