//! Route policy: which kind of route a request is, decided on one canonical spelling of its
//! path.
//!
//! The gateway classifies and forwards the *same* normalised path, so no spelling can be
//! classified one way and routed another way by the uploader. Normalisation decodes
//! percent-encoded unreserved characters, resolves dot segments and collapses repeated
//! slashes; it refuses spellings that different servers read differently (encoded `/`, `\`
//! or control characters, `..` above the root). Matching then follows Express 4's defaults:
//! case-insensitive, one optional trailing slash.

use std::borrow::Cow;

use http::Method;

/// Why a request path was refused (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    /// Not an origin-form path (`*`, or no leading `/`).
    #[error("the request target is not a path")]
    NotAPath,
    /// A `%` not followed by two hex digits.
    #[error("the path has a malformed percent-encoding")]
    BadEncoding,
    /// `%2F`, `%5C`, a backslash or a control character: servers disagree on their meaning.
    #[error("the path contains an encoded slash, a backslash or a control character")]
    AmbiguousCharacter,
    /// `..` would climb above the root.
    #[error("the path climbs above the root")]
    AboveRoot,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("the path is too long")]
    TooLong,
}

/// Longest request path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Returns the canonical spelling of a request path: unreserved characters decoded, other
/// escapes and raw non-ASCII bytes as upper-case `%XX`, `.`/`..` resolved, no empty segments, a trailing slash kept.
pub fn normalise_path(raw: &str) -> Result<String, PathRejection> {
    canonical_path(raw).map(Cow::into_owned)
}

/// [`normalise_path`], borrowing `raw` when it is canonical already (most paths are: plain
/// ASCII, no escapes, no dot or empty segments), so that the request path allocates nothing.
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, PathRejection> {
    if is_canonical(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    rewrite_path(raw).map(Cow::Owned)
}

/// Whether [`rewrite_path`] would give `raw` back unchanged: it starts with `/`, is within
/// the limit, holds only ASCII that needs no escape or decoding, and has no `.` or `..`
/// segment and no empty one but a final one (the trailing slash). One pass over the bytes.
fn is_canonical(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.len() > MAX_PATH_LEN {
        return false;
    }
    let dot_segment = |segment: &[u8]| segment == b"." || segment == b"..";
    let mut start = 1;
    for (at, &b) in bytes.iter().enumerate().skip(1) {
        if b == b'%' || b == b'\\' || !b.is_ascii() || b.is_ascii_control() {
            return false;
        }
        if b == b'/' {
            let segment = &bytes[start..at];
            if segment.is_empty() || dot_segment(segment) {
                return false;
            }
            start = at + 1;
        }
    }
    !dot_segment(&bytes[start..])
}

/// The canonical spelling, built anew.
fn rewrite_path(raw: &str) -> Result<String, PathRejection> {
    if raw.len() > MAX_PATH_LEN {
        return Err(PathRejection::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(PathRejection::NotAPath);
    }
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for raw_segment in raw[1..].split('/') {
        let segment = decode_unreserved(raw_segment)?;
        trailing_slash = matches!(segment.as_str(), "" | "." | "..");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathRejection::AboveRoot)?;
            }
            _ => segments.push(segment),
        }
    }
    let mut path = String::with_capacity(raw.len());
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        path.push('/');
    }
    // Escaping non-ASCII bytes can lengthen a path: the limit holds for what is forwarded.
    if path.len() > MAX_PATH_LEN {
        return Err(PathRejection::TooLong);
    }
    Ok(path)
}

/// Decodes `%XX` escapes of unreserved characters; keeps the others escaped (upper-case).
fn decode_unreserved(segment: &str) -> Result<String, PathRejection> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathRejection::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathRejection::BadEncoding)?;
            let value = u8::from_str_radix(hex, 16).map_err(|_| PathRejection::BadEncoding)?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(value as char);
            } else if value == b'/' || value == b'\\' || value.is_ascii_control() {
                return Err(PathRejection::AmbiguousCharacter);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else if b == b'\\' || b.is_ascii_control() {
            return Err(PathRejection::AmbiguousCharacter);
        } else if !b.is_ascii() {
            // Raw non-ASCII bytes (hyper lets UTF-8 through) are escaped: one spelling.
            out.push('%');
            out.push_str(&format!("{b:02X}"));
            i += 1;
        } else {
            out.push(b as char);
            i += 1;
        }
    }
    Ok(out)
}

/// Removes `prefix` (case-insensitively) from a normalised path; `None` if the path is
/// outside it. An empty prefix matches everything.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let head = path.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    match &path[prefix.len()..] {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// The path segments that matching looks at: no leading empty segment, and one trailing
/// slash ignored (Express's non-strict routing).
fn match_segments(path: &str) -> Vec<&str> {
    with_match_segments(path, <[&str]>::to_vec)
}

/// Most segments [`with_match_segments`] keeps on the stack; longer paths go to the heap.
const STACK_SEGMENTS: usize = 16;

/// Calls `f` with the segments of [`match_segments`], without a heap allocation for paths of
/// up to [`STACK_SEGMENTS`] segments (every route the uploader has).
fn with_match_segments<'p, R>(path: &'p str, f: impl FnOnce(&[&'p str]) -> R) -> R {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return f(&[]);
    }
    let mut stack = [""; STACK_SEGMENTS];
    let mut count = 0;
    for part in slash_separated(trimmed) {
        if count == STACK_SEGMENTS {
            return f(&slash_separated(trimmed).collect::<Vec<_>>());
        }
        stack[count] = part;
        count += 1;
    }
    f(&stack[..count])
}

/// The parts of `text` between slashes, as `str::split('/')` gives them, found byte by byte:
/// a path's parts are a few bytes long, shorter than what the char searcher's set-up saves.
fn slash_separated(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let part = rest?;
        Some(match part.bytes().position(|b| b == b'/') {
            Some(at) => {
                rest = Some(&part[at + 1..]);
                &part[..at]
            }
            None => {
                rest = None;
                part
            }
        })
    })
}

/// One part of a [`RoutePattern`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    /// Matches this text, case-insensitively (stored lower-case).
    Literal(String),
    /// `:name`: any one segment.
    Param,
    /// `*` (last only): one or more segments.
    Rest,
}

/// A `"METHOD /path"` pattern from the config: the method or `*` for any; path segments
/// are literals, `:name` for one segment, or a final `*` for one or more segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    method: Option<Method>,
    segments: Vec<PatternSegment>,
}

impl RoutePattern {
    /// Parses `"POST /auth/login"`, `"GET /upload/:id/raw"`, `"* /user/*"`.
    pub fn parse(text: &str) -> Result<RoutePattern, String> {
        let (method, path) = text
            .split_once(' ')
            .ok_or("expected \"METHOD /path\", e.g. \"POST /auth/login\"")?;
        let method = match method {
            "*" => None,
            m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(Method::from_bytes(m.as_bytes()).map_err(|_| "bad method")?)
            }
            _ => return Err("the method must be upper-case, or * for any".into()),
        };
        let path = path.trim();
        if !path.starts_with('/') {
            return Err("the path must start with '/'".into());
        }
        let parts = match_segments(path);
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "" => return Err("empty path segment".into()),
                "*" if i + 1 == parts.len() => PatternSegment::Rest,
                "*" => return Err("'*' may only end a pattern".into()),
                p if p.starts_with(':') && p.len() > 1 => PatternSegment::Param,
                p if p.contains(['%', '\\', '?', '#']) => {
                    return Err("literal segments may not contain % \\ ? #".into());
                }
                p => PatternSegment::Literal(p.to_ascii_lowercase()),
            };
            segments.push(segment);
        }
        Ok(RoutePattern { method, segments })
    }

    /// Whether a request with this method and normalised path matches.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.matches_segments(method, &match_segments(path))
    }

    /// [`RoutePattern::matches`] on a path already split by [`match_segments`].
    fn matches_segments(&self, method: &Method, parts: &[&str]) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let mut parts = parts.iter();
        for segment in &self.segments {
            match segment {
                PatternSegment::Rest => return parts.next().is_some(),
                PatternSegment::Param => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                PatternSegment::Literal(text) => match parts.next() {
                    Some(part) if part.eq_ignore_ascii_case(text) => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

/// The route lists of the configuration (`[routes]`), parsed: which routes are public, take
/// API keys, or create, rotate or end sessions.
#[derive(Debug, Clone, Default)]
pub struct RoutePatterns {
    /// Forwarded without any token check.
    pub public: Vec<RoutePattern>,
    /// Forwarded without a session check: the uploader checks its own API keys there.
    pub api_key: Vec<RoutePattern>,
    /// A 2xx JSON response with `access_token` and `refresh_token` creates a session.
    pub login: Vec<RoutePattern>,
    /// Rotates the session of the body's `refresh_token`.
    pub refresh: Vec<RoutePattern>,
    /// Ends the caller's session.
    pub logout: Vec<RoutePattern>,
    /// On a 2xx response, ends every session of the caller (password change).
    pub end_all_sessions: Vec<RoutePattern>,
}

/// See [`RoutePolicy::first_segments`].
fn first_segments(p: &RoutePatterns) -> Option<Vec<String>> {
    let lists = [
        &p.public,
        &p.api_key,
        &p.login,
        &p.refresh,
        &p.logout,
        &p.end_all_sessions,
    ];
    let mut firsts: Vec<String> = Vec::new();
    for pattern in lists.into_iter().flatten() {
        let Some(PatternSegment::Literal(text)) = pattern.segments.first() else {
            return None;
        };
        if !firsts.contains(text) {
            firsts.push(text.clone());
        }
    }
    Some(firsts)
}

/// What the gateway does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET`/`HEAD` on the sessions endpoint: answered by the gateway.
    ListSessions,
    /// `DELETE` on the sessions endpoint.
    RevokeAllSessions,
    /// `DELETE` on `endpoint/:session_id`, with the raw id segment.
    RevokeSession(String),
    /// Another method on a sessions path: 405 with this `Allow` value.
    SessionsMethodNotAllowed(&'static str),
    /// Creates a session from the response's tokens.
    Login,
    /// Rotates the session of the body's refresh token.
    Refresh,
    /// Ends the caller's session.
    Logout,
    /// Ends all the caller's sessions on a 2xx response.
    EndAllSessions,
    /// Forwarded unchecked: the uploader checks its API keys.
    ApiKey,
    /// Forwarded unchecked.
    Public,
    /// Needs a live session's token.
    Session,
}

impl Route {
    /// A bounded label for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            Route::ListSessions
            | Route::RevokeAllSessions
            | Route::RevokeSession(_)
            | Route::SessionsMethodNotAllowed(_) => "sessions_api",
            Route::Login => "login",
            Route::Refresh => "refresh",
            Route::Logout => "logout",
            Route::EndAllSessions => "end_all_sessions",
            Route::ApiKey => "api_key",
            Route::Public => "public",
            Route::Session => "session",
        }
    }
}

/// The route table: classifies a method and a normalised path (prefix already removed).
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    endpoint: Vec<String>,
    patterns: RoutePatterns,
    /// The first segments (lower-case) of the listed patterns when each starts with a
    /// literal: a path whose first segment is none of them matches no list, and needs a
    /// session without a pattern being looked at (most requests: the uploader's API).
    /// `None` when a pattern starts with `:name` or `*`, or is `/`.
    first_segments: Option<Vec<String>>,
}

impl RoutePolicy {
    /// Builds the policy from the sessions endpoint path and the parsed route lists.
    pub fn new(endpoint: &str, patterns: RoutePatterns) -> RoutePolicy {
        let endpoint = match_segments(endpoint)
            .into_iter()
            .map(str::to_ascii_lowercase)
            .collect();
        let first_segments = first_segments(&patterns);
        RoutePolicy {
            endpoint,
            patterns,
            first_segments,
        }
    }

    /// Classifies a request. The sessions endpoints come first (they are never forwarded),
    /// then the lifecycle routes, then API-key and public routes; anything else needs a
    /// session.
    pub fn classify(&self, method: &Method, path: &str) -> Route {
        // Split once: every pattern below is matched against the same segments.
        with_match_segments(path, |parts| self.classify_segments(method, parts))
    }

    fn classify_segments(&self, method: &Method, parts: &[&str]) -> Route {
        if let Some(route) = self.sessions_endpoint(method, parts) {
            return route;
        }
        if let (Some(firsts), Some(first)) = (&self.first_segments, parts.first())
            && !firsts.iter().any(|f| first.eq_ignore_ascii_case(f))
        {
            return Route::Session;
        }
        let p = &self.patterns;
        let any = |list: &[RoutePattern]| list.iter().any(|r| r.matches_segments(method, parts));
        if any(&p.login) {
            Route::Login
        } else if any(&p.refresh) {
            Route::Refresh
        } else if any(&p.logout) {
            Route::Logout
        } else if any(&p.end_all_sessions) {
            Route::EndAllSessions
        } else if any(&p.api_key) {
            Route::ApiKey
        } else if any(&p.public) {
            Route::Public
        } else {
            Route::Session
        }
    }

    fn sessions_endpoint(&self, method: &Method, parts: &[&str]) -> Option<Route> {
        let n = self.endpoint.len();
        if parts.len() < n || parts.len() > n + 1 {
            return None;
        }
        let on_endpoint = parts
            .iter()
            .zip(&self.endpoint)
            .all(|(part, seg)| part.eq_ignore_ascii_case(seg));
        if !on_endpoint {
            return None;
        }
        Some(match (parts.get(n), method) {
            (None, &Method::GET | &Method::HEAD) => Route::ListSessions,
            (None, &Method::DELETE) => Route::RevokeAllSessions,
            (None, _) => Route::SessionsMethodNotAllowed("GET, HEAD, DELETE"),
            (Some(id), &Method::DELETE) => Route::RevokeSession((*id).to_string()),
            (Some(_), _) => Route::SessionsMethodNotAllowed("DELETE"),
        })
    }
}

#[cfg(test)]
mod tests;
