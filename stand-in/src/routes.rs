//! Express 4 routing, as the uploader's `server/index.js` sets it up.
//!
//! The uploader mounts routers with `app.use('/auth', ...)`, `app.use('/account', ...)` and so
//! on, with Express's default settings: matching is ASCII case-insensitive, a trailing slash
//! is optional, the query is ignored, and a mount point swallows one slash after it, so that
//! `/ACCOUNT//sessions/` reaches the same handler as `/account/sessions`. `HEAD` is answered
//! by `GET` handlers. Nothing is percent-decoded before matching.

use http::Method;

/// The handler a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST /auth/login`
    Login,
    /// `POST /auth/two-factor`
    TwoFactor,
    /// `POST /auth/refresh`
    Refresh,
    /// `POST /auth/logout`
    Logout,
    /// `PUT /account/change-password`
    ChangePassword,
    /// `GET /account`
    Account,
    /// `GET /account/sessions`
    ListSessions,
    /// `DELETE /account/sessions` and `DELETE /account/sessions/:session_id`
    RevokeSessions,
    /// `POST /upload` and `POST /3rd-party/upload`
    Upload,
    /// `GET /slow`
    Slow,
    /// `GET /big`
    Big,
    /// Everything else.
    Echo,
}

/// The route Express would pick for `method` on `path` (the path without the query).
pub(crate) fn route(method: &Method, path: &str) -> Route {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let routed = if let Some(sub) = mounted(path, "/auth") {
        auth_route(method, &sub)
    } else if let Some(sub) = mounted(path, "/account") {
        account_route(method, &sub)
    } else if let Some(sub) = mounted(path, "/upload") {
        upload_route(method, &sub)
    } else if let Some(sub) = mounted(path, "/3rd-party/upload") {
        upload_route(method, &sub)
    } else if method == Method::GET && is(path, "/slow") {
        Some(Route::Slow)
    } else if method == Method::GET && is(path, "/big") {
        Some(Route::Big)
    } else {
        None
    };
    routed.unwrap_or(Route::Echo)
}

/// Routes of the `/auth` router.
fn auth_route(method: &Method, sub: &str) -> Option<Route> {
    if *method != Method::POST {
        return None;
    }
    [
        ("/login", Route::Login),
        ("/two-factor", Route::TwoFactor),
        ("/refresh", Route::Refresh),
        ("/logout", Route::Logout),
    ]
    .into_iter()
    .find(|(pattern, _)| is(sub, pattern))
    .map(|(_, route)| route)
}

/// Routes of the `/account` router.
fn account_route(method: &Method, sub: &str) -> Option<Route> {
    match *method {
        Method::GET if is(sub, "/") => Some(Route::Account),
        Method::GET if is(sub, "/sessions") => Some(Route::ListSessions),
        Method::DELETE if is(sub, "/sessions") || has_param(sub, "/sessions/") => {
            Some(Route::RevokeSessions)
        }
        Method::PUT if is(sub, "/change-password") => Some(Route::ChangePassword),
        _ => None,
    }
}

/// Routes of the `/upload` and `/3rd-party/upload` routers.
fn upload_route(method: &Method, sub: &str) -> Option<Route> {
    (*method == Method::POST && is(sub, "/")).then_some(Route::Upload)
}

/// The path the router mounted at `mount` sees, if `path` is under it: Express's
/// `^<mount>\/?(?=\/|$)` (case-insensitive) followed by the removal of the matched text.
fn mounted(path: &str, mount: &str) -> Option<String> {
    let head = path.get(..mount.len())?;
    if !head.eq_ignore_ascii_case(mount) {
        return None;
    }
    let mut rest = &path[mount.len()..];
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    // The optional slash is greedy, but only kept when the lookahead still holds after it.
    if rest.starts_with('/') && (rest.len() == 1 || rest[1..].starts_with('/')) {
        rest = &rest[1..];
    }
    Some(if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    })
}

/// Whether `path` matches the parameterless `pattern`: Express's `^<pattern>\/?$`,
/// case-insensitive (a pattern ending in `/` makes that slash optional instead).
fn is(path: &str, pattern: &str) -> bool {
    let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.eq_ignore_ascii_case(pattern)
}

/// Whether `path` is `prefix` followed by one non-empty segment and an optional slash:
/// Express's `^<prefix>(?:([^\/]+?))\/?$`, case-insensitive.
fn has_param(path: &str, prefix: &str) -> bool {
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let param = &path[prefix.len()..];
    let param = param.strip_suffix('/').unwrap_or(param);
    head.eq_ignore_ascii_case(prefix) && !param.is_empty() && !param.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Route {
        route(&Method::GET, path)
    }

    fn delete(path: &str) -> Route {
        route(&Method::DELETE, path)
    }

    #[test]
    fn sessions_spellings_express_would_route() {
        for path in [
            "/account/sessions",
            "/account/sessions/",
            "/ACCOUNT/Sessions",
            "/account//sessions",
            "/Account//SESSIONS/",
        ] {
            assert_eq!(get(path), Route::ListSessions, "{path}");
            assert_eq!(route(&Method::HEAD, path), Route::ListSessions, "{path}");
            assert_eq!(delete(path), Route::RevokeSessions, "{path}");
        }
        for path in [
            "/account/sessions/abc",
            "/account//sessions/ABC/",
            "/ACCOUNT/SESSIONS/x",
        ] {
            assert_eq!(delete(path), Route::RevokeSessions, "{path}");
            assert_eq!(get(path), Route::Echo, "{path}");
        }
    }

    #[test]
    fn spellings_express_would_not_route() {
        for path in [
            "/account/sessions//",
            "/account///sessions",
            "/accounts/sessions",
            "/account/%73essions",
            "/api/account/sessions",
            "//account/sessions",
        ] {
            assert_eq!(get(path), Route::Echo, "{path}");
        }
        assert_eq!(delete("/account/sessions//"), Route::Echo);
        assert_eq!(delete("/account/sessions/a/b"), Route::Echo);
        assert_eq!(route(&Method::POST, "/account/sessions"), Route::Echo);
    }

    #[test]
    fn mounted_routers() {
        assert_eq!(get("/account"), Route::Account);
        assert_eq!(get("/account/"), Route::Account);
        assert_eq!(get("/account//"), Route::Account);
        assert_eq!(route(&Method::POST, "/Auth/Login/"), Route::Login);
        assert_eq!(route(&Method::GET, "/auth/login"), Route::Echo);
        assert_eq!(route(&Method::POST, "/auth/loginx"), Route::Echo);
        assert_eq!(route(&Method::POST, "/authx/login"), Route::Echo);
        assert_eq!(route(&Method::POST, "/upload"), Route::Upload);
        assert_eq!(route(&Method::POST, "/3RD-PARTY/upload/"), Route::Upload);
        assert_eq!(route(&Method::POST, "/upload/x"), Route::Echo);
        assert_eq!(
            route(&Method::PUT, "/account/change-password"),
            Route::ChangePassword
        );
        assert_eq!(get("/slow/"), Route::Slow);
        assert_eq!(get("/BIG"), Route::Big);
    }
}
