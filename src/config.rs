//! Configuration: the TOML file, the environment overrides, and `validate()`.
//!
//! Every field has a documented default, unknown keys are refused, and validation errors name
//! the key and the bad value, so `sessiongate --check-config` tells an operator exactly what
//! to fix. The signing secret never appears in the file: the file names the environment
//! variable (or a file) that holds it.

use std::path::PathBuf;

use serde::Deserialize;

mod load;
mod settings;
mod validate;

pub use settings::Settings;
pub use validate::ConfigError;

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
    /// Where sessions are kept: sled (embedded) or Redis (shared by replicas).
    pub store: StoreConfig,
    /// The operators' session routes on the admin listener.
    pub admin: AdminConfig,
}

/// The operators' session routes on the admin listener (`/admin/...`) and the
/// `sessiongate sessions` command, which need a bearer token. Without one the routes are off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// File holding the admin token: at least 32 visible ASCII characters, one trailing
    /// newline ignored. The variable `SESSIONGATE_ADMIN_TOKEN` wins over it. Unset (the
    /// default) and no variable: the admin session routes are off. Never logged.
    pub token_file: Option<PathBuf>,
}

/// Where sessions are kept. `sled` (the default) is an embedded database in `data_dir`,
/// for one gateway process; `redis` keeps them in Redis or Redis Cluster, shared by several
/// gateway replicas, each of which sees every creation and revocation on its next request.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sled` (the default) or `redis`. Override `SESSIONGATE_STORE_BACKEND`.
    pub backend: String,
    /// Redis to use: `redis://host:port[/db]`, or `rediss://` for TLS; with `redis_cluster`,
    /// seed nodes separated by commas. Default `redis://127.0.0.1:6379`; override
    /// `SESSIONGATE_REDIS_URL`. Never logged.
    pub redis_url: String,
    /// The URLs are nodes of a Redis Cluster. Default false.
    pub redis_cluster: bool,
    /// File holding the Redis password (trailing newline ignored). Unset (the default): the
    /// variable `SESSIONGATE_REDIS_PASSWORD` if set, else the URL's own, if any.
    pub redis_password_file: Option<PathBuf>,
    /// PEM file of the certificate authority that signed the Redis server's certificate, for
    /// `rediss://` URLs. Unset (the default): the system's trusted roots.
    pub redis_tls_ca_file: Option<PathBuf>,
    /// Prefix of every key the gateway writes in Redis. Default `sessiongate`.
    pub redis_key_prefix: String,
    /// Milliseconds a store call may take (connecting included) before the request is
    /// answered 503 `STORE_UNAVAILABLE`. Default 1000.
    pub timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: "sled".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster: false,
            redis_password_file: None,
            redis_tls_ca_file: None,
            redis_key_prefix: "sessiongate".into(),
            timeout_ms: 1000,
        }
    }
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
    /// Adopt the sessions of tokens the uploader issued before this instant (RFC 3339, for
    /// example `2026-12-03T09:00:00Z`; usually the cut-over time) and the gateway has never
    /// seen, so that putting the gateway in front of a running Share logs nobody out. Unset
    /// (the default): an unknown token is refused. An instant in the future is refused.
    pub adopt_issued_before: Option<String>,
}

/// The uploader's route table, as `"METHOD /path"` patterns (see [`RoutePattern`](crate::routes::RoutePattern)).
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
            store: StoreConfig::default(),
            admin: AdminConfig::default(),
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
            adopt_issued_before: None,
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

#[cfg(test)]
mod tests;
