//! The configuration the gateway runs with: every value checked, and those that need parsing
//! parsed, once ([`Config::settings`]).

use std::net::SocketAddr;

use http::HeaderName;
use http::uri::Authority;
use jsonwebtoken::Algorithm;

use super::Config;
use crate::admin::AdminToken;
use crate::proxy::IdentityHeaders;
use crate::routes::RoutePolicy;

/// A checked configuration: the file as written, and its parsed values.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file as written (overrides applied), for the values used as they are.
    pub config: Config,
    /// `listen`.
    pub listen: SocketAddr,
    /// `admin_listen`; `None` when empty.
    pub admin: Option<SocketAddr>,
    /// `tls.redirect_listen`.
    pub redirect: Option<SocketAddr>,
    /// The authority of `upstream`.
    pub upstream_authority: Authority,
    /// The path of `upstream`, without a trailing slash.
    pub upstream_base_path: String,
    /// `auth.algorithm`.
    pub algorithm: Algorithm,
    /// `proxy.user_header` and `proxy.session_header`.
    pub identity: IdentityHeaders,
    /// `sessions.location_header`.
    pub location_header: Option<HeaderName>,
    /// The route table: `sessions.endpoint` and `[routes]`.
    pub routes: RoutePolicy,
    /// `store.redis_url`, split, when the store is Redis (else empty).
    pub redis_urls: Vec<String>,
    /// `sessions.adopt_issued_before`, ms since the epoch.
    pub adopt_before_ms: Option<i64>,
    /// The admin token ([`Config::load_admin_token`]); `None`: the admin session routes are
    /// off. [`Config::settings`] leaves it `None`; [`Config::load`] reads it.
    pub admin_token: Option<AdminToken>,
}

impl Settings {
    /// These settings with this admin token.
    pub fn with_admin_token(mut self, token: Option<AdminToken>) -> Settings {
        self.admin_token = token;
        self
    }
}
