//! A model of the uploader's Express 4 router: what a mounted router is handed, and which
//! paths reach the uploader's own sessions handlers. Checked against the stand-in's spellings.

use http::Method;

/// The path Express 4 hands to a router mounted at `mount` (case-insensitive, one optional
/// slash swallowed), as the uploader's `app.use` does; `None` if not under it.
pub(crate) fn express_mounted(path: &str, mount: &str) -> Option<String> {
    let head = path.get(..mount.len())?;
    if !head.eq_ignore_ascii_case(mount) {
        return None;
    }
    let mut rest = &path[mount.len()..];
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if rest.starts_with('/') && (rest.len() == 1 || rest[1..].starts_with('/')) {
        rest = &rest[1..];
    }
    Some(if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    })
}

/// Whether Express would route `method path` to the uploader's own sessions handlers:
/// `GET`/`HEAD`/`DELETE /account/sessions` or `DELETE /account/sessions/:id`, matched
/// case-insensitively with an optional trailing slash, nothing decoded.
pub(crate) fn express_routes_to_sessions(method: &Method, path: &str) -> bool {
    let Some(sub) = express_mounted(path, "/account") else {
        return false;
    };
    let sub = sub.strip_suffix('/').unwrap_or(&sub);
    let on_list = sub.eq_ignore_ascii_case("/sessions");
    let with_id = sub.len() > "/sessions/".len()
        && sub[.."/sessions/".len()].eq_ignore_ascii_case("/sessions/")
        && !sub["/sessions/".len()..].contains('/');
    match *method {
        Method::GET | Method::HEAD => on_list,
        Method::DELETE => on_list || with_id,
        _ => false,
    }
}

#[test]
fn the_express_model_agrees_with_the_stand_in_on_known_spellings() {
    // The same cases the stand-in's own router tests use, so the model cannot drift into
    // vacuity.
    for path in [
        "/account/sessions",
        "/ACCOUNT/Sessions/",
        "/account//sessions",
    ] {
        assert!(express_routes_to_sessions(&Method::GET, path), "{path}");
    }
    assert!(express_routes_to_sessions(
        &Method::DELETE,
        "/account//sessions/ABC/"
    ));
    for path in [
        "/account/sessions//",
        "/account///sessions",
        "/account/%73essions",
        "//account/sessions",
    ] {
        assert!(!express_routes_to_sessions(&Method::GET, path), "{path}");
    }
    assert!(!express_routes_to_sessions(
        &Method::DELETE,
        "/account/sessions/a/b"
    ));
    assert!(!express_routes_to_sessions(
        &Method::POST,
        "/account/sessions"
    ));
}
