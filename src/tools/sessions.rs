//! `sessiongate sessions list|revoke|count`: the admin session routes from the command line.
//!
//! By default it asks the running gateway's admin listener (`admin_listen`, with the admin
//! token of the same configuration). With `--direct` it opens the configured store itself and
//! calls the same [`SessionAdmin`] the listener does: a sled store only while no gateway holds
//! it (stop the gateway first), a Redis store whether gateways run or not. Either way the
//! answers are the same JSON, printed as a table or text, or as JSON with `--json`.
//!
//! Exit codes (the binary's): 0 done, 1 failed (no such session, the gateway unreachable or
//! refusing the token, the store failing), 64 bad arguments.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use crate::admin::client::admin_request;
use crate::admin::routes::percent_encoded;
use crate::admin::sessions::{RequestId, SESSION_ID_RULE, SessionAdmin, USER_RULE, parse_user};
use crate::config::Settings;
use crate::sessions::tombstones::ending_sessions_through;
use crate::sessions::{Activity, Clock, SessionId, SystemClock, open_store};

/// The usage of `sessiongate sessions`, shown with its argument errors.
pub const USAGE: &str = "\
usage: sessiongate sessions list --user <id> [--json] [--direct] [--config <file>]
       sessiongate sessions revoke (--user <id> | --session <id>) [--json] [--direct] [--config <file>]
       sessiongate sessions count [--json] [--direct] [--config <file>]";

/// How long the admin listener has to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What `sessiongate sessions` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsCommand {
    /// The action.
    pub action: Action,
    /// `--config`: the configuration (else the defaults and the `SESSIONGATE_*` variables).
    pub config: Option<PathBuf>,
    /// `--json`: print the answer as JSON.
    pub json: bool,
    /// `--direct`: open the store instead of asking the gateway.
    pub direct: bool,
}

/// One of the actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `list --user <id>`.
    List(String),
    /// `revoke --user <id>`.
    RevokeUser(String),
    /// `revoke --session <id>`.
    RevokeSession(SessionId),
    /// `count`.
    Count,
}

/// Why the command failed (exit 1; bad arguments are [`parse`]'s, exit 64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

/// Parses the arguments after `sessions`. The error names the argument at fault.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<SessionsCommand, String> {
    let mut args = args.into_iter();
    let action = args
        .next()
        .ok_or("sessions needs an action: list, revoke or count")?;
    let (mut user, mut session, mut config) = (None, None, None);
    let (mut json, mut direct) = (false, false);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| match args.next() {
            Some(v) if !v.starts_with("--") => Ok(v),
            _ => Err(format!("{arg} needs {what}")),
        };
        match arg.as_str() {
            "--user" if user.is_none() => user = Some(value("a user id")?),
            "--session" if session.is_none() => session = Some(value("a session id")?),
            "--config" if config.is_none() => config = Some(PathBuf::from(value("a file")?)),
            "--user" | "--session" | "--config" => return Err(format!("{arg} is given twice")),
            "--json" => json = true,
            "--direct" => direct = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let user = user
        .map(|raw| {
            parse_user(&raw)
                .map(str::to_string)
                .ok_or_else(|| format!("--user: expected {USER_RULE} (got {raw:?})"))
        })
        .transpose()?;
    let session = session
        .map(|raw| {
            SessionId::parse(&raw)
                .ok_or_else(|| format!("--session: expected {SESSION_ID_RULE} (got {raw:?})"))
        })
        .transpose()?;
    let action = match (action.as_str(), user, session) {
        ("list", Some(user), None) => Action::List(user),
        ("list", None, None) => return Err("list needs --user <id>".into()),
        ("list", _, Some(_)) => return Err("--session is an option of revoke, not list".into()),
        ("revoke", Some(user), None) => Action::RevokeUser(user),
        ("revoke", None, Some(id)) => Action::RevokeSession(id),
        ("revoke", Some(_), Some(_)) => {
            return Err("revoke takes --user <id> or --session <id>, not both".into());
        }
        ("revoke", None, None) => return Err("revoke needs --user <id> or --session <id>".into()),
        ("count", None, None) => Action::Count,
        ("count", _, _) => return Err("count takes no --user or --session".into()),
        (other, _, _) => {
            return Err(format!(
                "unknown sessions action {other:?}: expected list, revoke or count"
            ));
        }
    };
    Ok(SessionsCommand {
        action,
        config,
        json,
        direct,
    })
}

/// Runs the command with these settings: the text to print, or why not.
pub async fn run(
    command: &SessionsCommand,
    settings: &Settings,
    redis_password: Option<String>,
) -> Result<String, Failure> {
    let request_id = RequestId::generate();
    let answer = if command.direct {
        direct(&command.action, settings, redis_password, &request_id).await?
    } else {
        over_http(&command.action, settings, &request_id).await?
    };
    if command.json {
        let text = serde_json::to_string_pretty(&answer).expect("a JSON value serialises");
        return Ok(format!("{text}\n"));
    }
    Ok(match &command.action {
        Action::List(_) => table(&answer),
        Action::RevokeSession(id) => format!(
            "revoked session {id} of user {} (request id {request_id})\n",
            text(&answer["user"])
        ),
        Action::RevokeUser(user) => format!(
            "revoked {} of user {user} (request id {request_id})\n",
            counted(&answer["revoked"], "session")
        ),
        Action::Count => format!(
            "{} in the store (expired ones not yet swept included)\n",
            counted(&answer["sessions"], "session")
        ),
    })
}

/// The action through the running gateway's admin listener.
async fn over_http(
    action: &Action,
    settings: &Settings,
    request_id: &RequestId,
) -> Result<Value, Failure> {
    let admin = settings.admin.ok_or_else(|| {
        Failure(
            "admin_listen is empty: no admin listener to ask (with the gateway stopped, use \
             --direct)"
                .into(),
        )
    })?;
    let token = settings.admin_token.as_ref().ok_or_else(|| {
        Failure(
            "no admin token: set admin.token_file or SESSIONGATE_ADMIN_TOKEN to the gateway's \
             (or, with the gateway stopped, use --direct)"
                .into(),
        )
    })?;
    let (method, path) = match action {
        Action::List(user) => (
            Method::GET,
            format!("/admin/users/{}/sessions", percent_encoded(user)),
        ),
        Action::RevokeUser(user) => (
            Method::DELETE,
            format!("/admin/users/{}/sessions", percent_encoded(user)),
        ),
        Action::RevokeSession(id) => (Method::DELETE, format!("/admin/sessions/{id}")),
        Action::Count => (Method::GET, "/admin/sessions/count".to_string()),
    };
    let (status, body) = admin_request(admin, method, &path, token, request_id, ANSWER_WITHIN)
        .await
        .map_err(|e| {
            Failure(format!(
                "the admin listener: {e} (is the gateway running? with it stopped, use --direct)"
            ))
        })?;
    let code = body["code"].as_str().unwrap_or_default();
    match (status, code) {
        (StatusCode::OK, _) => Ok(body),
        (StatusCode::NOT_FOUND, "SESSION_NOT_FOUND") => Err(not_found(action)),
        (StatusCode::UNAUTHORIZED, _) => Err(Failure(format!(
            "the admin listener at {admin} refused the admin token (401): it is not the \
             gateway's; check admin.token_file or SESSIONGATE_ADMIN_TOKEN"
        ))),
        (StatusCode::NOT_FOUND, "ADMIN_API_DISABLED") => Err(Failure(format!(
            "the gateway at {admin} has its admin session routes off: give it an admin token \
             (admin.token_file or SESSIONGATE_ADMIN_TOKEN) and restart it"
        ))),
        _ => Err(Failure(format!(
            "the admin listener at {admin} answered {status}: {}",
            body["error"].as_str().unwrap_or(code)
        ))),
    }
}

/// The action on the configured store, opened here (the gateway stopped, for sled).
async fn direct(
    action: &Action,
    settings: &Settings,
    redis_password: Option<String>,
    request_id: &RequestId,
) -> Result<Value, Failure> {
    let config = &settings.config;
    if config.store.backend == "sled" && !config.data_dir.join("db").is_file() {
        return Err(Failure(format!(
            "no session store in {} (no sled `db` file there)",
            config.data_dir.display()
        )));
    }
    let store = open_store(settings, redis_password)
        .await
        .map_err(|error| {
            if error.contains("could not acquire lock") {
                Failure(format!(
                    "the store in {} is in use: stop the gateway first, or leave out --direct to \
                 ask the running gateway",
                    config.data_dir.display()
                ))
            } else {
                Failure(error)
            }
        })?;
    // With adoption on, a session ended here leaves its tombstones as one ended through the
    // gateway does: its pre-cut-over tokens are never adopted again.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = ending_sessions_through(store, clock.clone(), settings.adopt_before_ms);
    let sessions = SessionAdmin::new(store, clock, Arc::new(Activity::default()), None);
    let failed = |e: crate::sessions::StoreError| Failure(e.to_string());
    match action {
        Action::List(user) => sessions.list(user).await.map_err(failed),
        Action::RevokeUser(user) => sessions.revoke_user(user, request_id).await.map_err(failed),
        Action::RevokeSession(id) => sessions
            .revoke_session(*id, request_id)
            .await
            .map_err(failed)?
            .ok_or_else(|| not_found(action)),
        Action::Count => sessions.count().await.map_err(failed),
    }
}

fn not_found(action: &Action) -> Failure {
    match action {
        Action::RevokeSession(id) => Failure(format!("no live session {id}")),
        _ => Failure("not found".into()),
    }
}

/// `1 session`, `2 sessions` (with `noun` = `session`).
fn counted(count: &Value, noun: &str) -> String {
    match count.as_u64() {
        Some(1) => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// A JSON string's text, or the value as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A listing (`{"user", "sessions", "total"}`) as a table, one session a line.
fn table(listing: &Value) -> String {
    let user = text(&listing["user"]);
    let sessions = listing["sessions"].as_array().cloned().unwrap_or_default();
    if sessions.is_empty() {
        return format!("user {user}: no live sessions\n");
    }
    // `2026-11-27T02:23:36.377Z` as `2026-11-27 02:23:36`, the header saying UTC.
    let time = |v: &Value| {
        text(v)
            .chars()
            .take(19)
            .collect::<String>()
            .replace('T', " ")
    };
    // `Chrome 87.0.4280.88, Linux (pc)`, leaving out what is unknown.
    let device = |d: &Value| {
        let known = |field: &str| Some(text(&d[field])).filter(|v| v != "unknown");
        let client = [known("browser"), known("version")].into_iter().flatten();
        let mut parts = vec![client.collect::<Vec<_>>().join(" ")];
        parts.extend(known("os"));
        parts.retain(|p| !p.is_empty());
        let mut shown = parts.join(", ");
        if let Some(platform) = known("platform") {
            shown.push_str(&format!(" ({platform})"));
        }
        match shown.trim() {
            "" => "unknown".to_string(),
            shown => shown.to_string(),
        }
    };
    let mut rows: Vec<[String; 6]> = vec![[
        "SESSION".to_string(),
        "CREATED (UTC)".into(),
        "LAST ACTIVE (UTC)".into(),
        "EXPIRES (UTC)".into(),
        "DEVICE".into(),
        "LOCATION".into(),
    ]];
    for s in &sessions {
        rows.push([
            text(&s["_id"]),
            time(&s["createdAt"]),
            time(&s["lastActiveAt"]),
            time(&s["expireAt"]),
            device(&s["device"]),
            text(&s["location"]),
        ]);
    }
    // Nothing from the store reaches the terminal as a control sequence.
    for row in &mut rows {
        for cell in row.iter_mut() {
            *cell = cell
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let live = counted(&sessions.len().into(), "live session");
    let mut out = format!("user {user}: {live}\n");
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
