//! After a restart: a ledger against what the store says.

use std::collections::HashMap;

use futures_util::StreamExt;
use http::{Method, StatusCode};
use serde_json::json;
use share_stand_in::StandIn;

use crate::client::{Api, sha512_hex};
use crate::ledger::{Ledger, Outcome, State};

/// Checks of revoked tokens in flight at once.
const CHECK_CONCURRENCY: usize = 8;

impl Ledger {
    /// After a restart: the ledger against the store.
    pub(crate) async fn check(mut self, api: &Api, uploader: &StandIn) -> Result<Ledger, String> {
        let who = self.who();
        if self.live().is_empty() {
            // A live token to list with.
            if let Outcome::CutOff = self.login(api, uploader).await? {
                return Err(format!("{who}: no answer to a login after the restart"));
            }
        }
        let unanswered = |what: &str| format!("{who}: no answer to {what} after the restart");
        let lister = self.live()[0];
        let listed = api
            .list(&self.sessions[lister].access)
            .await?
            .ok_or_else(|| unanswered("a list"))?;

        // Sessions a cut-off operation touched: a token works exactly when it is listed.
        for session in &mut self.sessions {
            let cut_off = session.state;
            if !matches!(cut_off, State::RefreshCutOff | State::RevokeCutOff) {
                continue;
            }
            let answer = api
                .send(
                    Method::GET,
                    "/api/account/sessions",
                    Some(&session.access),
                    None,
                )
                .await
                .ok_or_else(|| unanswered("a list"))?;
            let is_listed = listed.contains_key(&sha512_hex(&session.access));
            match (answer.status, is_listed) {
                (StatusCode::OK, true) => {
                    session.state = State::Live;
                    self.tally.pending_resolved_live += 1;
                }
                (StatusCode::UNAUTHORIZED, false) if answer.code() == "SESSION_INVALID" => {
                    // A cut-off refresh that took effect leaves the session with tokens
                    // nobody received: it is no longer followed.
                    session.state = match cut_off {
                        State::RevokeCutOff => State::Revoked,
                        _ => State::RefreshCutOff,
                    };
                    self.tally.pending_resolved_gone += 1;
                }
                _ => {
                    return Err(format!(
                        "{who}: after a cut-off {cut_off:?}, the token is answered {} but is \
                         {}listed",
                        answer.describe(),
                        if is_listed { "" } else { "not " }
                    ));
                }
            }
        }
        self.sessions.retain(|s| s.state != State::RefreshCutOff);

        // Live sessions: listed under their latest access hash, in every live token's list.
        for i in self.live() {
            let token = &self.sessions[i].access;
            let hash = sha512_hex(token);
            if !listed.contains_key(&hash) {
                return Err(format!(
                    "{who}: a session answered as created (or refreshed) is not listed after the \
                     restart (live sessions {}, listed {})",
                    self.live().len(),
                    listed.len()
                ));
            }
            let own = api.list(token).await?.ok_or_else(|| unanswered("a list"))?;
            if own != listed_with_current(&listed, &hash) {
                return Err(format!("{who}: two live tokens see different lists"));
            }
            self.tally.live_checked += 1;
        }

        // Revoked sessions: both tokens refused, and not listed.
        let revoked: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter(|s| s.state == State::Revoked)
            .map(|s| (s.access.clone(), s.refresh.clone()))
            .collect();
        if revoked
            .iter()
            .any(|(access, _)| listed.contains_key(&sha512_hex(access)))
        {
            return Err(format!(
                "{who}: a revoked session is listed after the restart"
            ));
        }
        let count = revoked.len();
        let checks = futures_util::stream::iter(revoked)
            .map(|(access, refresh)| check_revoked(api.clone(), who.clone(), access, refresh))
            .buffer_unordered(CHECK_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        checks.into_iter().collect::<Result<Vec<()>, String>>()?;
        self.tally.revoked_checked += count;
        Ok(self)
    }
}

/// A revoked session's access token and refresh token are both refused with 401.
async fn check_revoked(
    api: Api,
    who: String,
    access: String,
    refresh: String,
) -> Result<(), String> {
    let access = api
        .send(Method::GET, "/api/account/sessions", Some(&access), None)
        .await;
    let body = json!({"refresh_token": refresh});
    let refresh = api
        .send(Method::POST, "/api/auth/refresh", None, Some(body))
        .await;
    for (what, answer) in [("access", access), ("refresh", refresh)] {
        let answer = answer.ok_or_else(|| format!("{who}: no answer to a revoked {what} token"))?;
        if answer.status != StatusCode::UNAUTHORIZED || answer.code() != "SESSION_INVALID" {
            return Err(format!(
                "{who}: the {what} token of a revoked session is answered {} after the restart",
                answer.describe()
            ));
        }
    }
    Ok(())
}

/// `listed` as the holder of `hash` sees it: only that session is `current`.
fn listed_with_current(
    listed: &HashMap<String, (String, bool)>,
    hash: &str,
) -> HashMap<String, (String, bool)> {
    listed
        .iter()
        .map(|(h, (id, _))| (h.clone(), (id.clone(), h == hash)))
        .collect()
}
