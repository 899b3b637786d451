//! One virtual user's ledger: its sessions as far as answered operations tell, and the
//! random operations that change them.

use http::{Method, StatusCode};
use rand::RngExt;
use rand::rngs::StdRng;
use serde_json::json;
use share_stand_in::{StandIn, User};

use crate::client::{Answer, Api, sha512_hex};

/// Upper bound on one user's operations in one cycle (the kill normally comes first).
const MAX_OPS_PER_CYCLE: usize = 2_000;
/// A user with more live sessions than this revokes them all.
const MAX_LIVE: usize = 8;
/// Stand-in seconds within which the stand-in still accepts an access token (it lives 5
/// minutes). Logout is forwarded, and the stand-in checks the token there, so only sessions
/// this fresh are logged out.
const FRESH_FOR_LOGOUT_S: i64 = 240;

/// One user's sessions, as far as answered operations tell.
pub(crate) struct Ledger {
    pub(crate) index: usize,
    account: User,
    pub(crate) sessions: Vec<Tracked>,
    pub(crate) tally: Tally,
}

/// A session and the latest tokens answered for it.
pub(crate) struct Tracked {
    pub(crate) access: String,
    pub(crate) refresh: String,
    /// The stand-in's time just before the request that issued the tokens (their `iat` is at
    /// or after it).
    issued_from: i64,
    pub(crate) state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Created (or last refreshed) by an answered request, not revoked since.
    Live,
    /// Revoked by an answered request (or found revoked after a cut-off revocation).
    Revoked,
    /// A refresh was cut off by the kill: the tokens above may have been rotated away.
    RefreshCutOff,
    /// A revocation was cut off by the kill.
    RevokeCutOff,
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) logins: usize,
    pub(crate) refreshes: usize,
    pub(crate) revoked_one: usize,
    pub(crate) revoked_all: usize,
    pub(crate) logouts: usize,
    pub(crate) unanswered: usize,
    pub(crate) revoked_checked: usize,
    pub(crate) live_checked: usize,
    pub(crate) pending_resolved_live: usize,
    pub(crate) pending_resolved_gone: usize,
}

impl Tally {
    pub(crate) fn add(&mut self, other: &Tally) {
        self.logins += other.logins;
        self.refreshes += other.refreshes;
        self.revoked_one += other.revoked_one;
        self.revoked_all += other.revoked_all;
        self.logouts += other.logouts;
        self.unanswered += other.unanswered;
        self.revoked_checked += other.revoked_checked;
        self.live_checked += other.live_checked;
        self.pending_resolved_live += other.pending_resolved_live;
        self.pending_resolved_gone += other.pending_resolved_gone;
    }
}

/// What one operation came to.
pub(crate) enum Outcome {
    Answered,
    /// No answer: the gateway is gone; this user stops until the restart.
    CutOff,
}

impl Ledger {
    pub(crate) fn new(account: User) -> Ledger {
        let index = usize::from_str_radix(&account.id[20..], 16).expect("a hex index");
        Ledger {
            index,
            account,
            sessions: Vec::new(),
            tally: Tally::default(),
        }
    }

    pub(crate) fn who(&self) -> String {
        format!("user{}", self.index)
    }

    pub(crate) fn live(&self) -> Vec<usize> {
        (0..self.sessions.len())
            .filter(|&i| self.sessions[i].state == State::Live)
            .collect()
    }

    /// Random operations until the gateway stops answering.
    pub(crate) async fn load(
        &mut self,
        api: &Api,
        uploader: &StandIn,
        rng: &mut StdRng,
    ) -> Result<(), String> {
        for _ in 0..MAX_OPS_PER_CYCLE {
            let live = self.live();
            let pick = |rng: &mut StdRng| live[rng.random_range(0..live.len())];
            let roll = rng.random_range(0..100);
            let outcome = if live.is_empty() || roll < 25 {
                self.login(api, uploader).await?
            } else if live.len() > MAX_LIVE || roll < 30 {
                let caller = pick(rng);
                self.revoke_all(api, caller).await?
            } else if roll < 55 {
                let session = pick(rng);
                self.refresh(api, uploader, session).await?
            } else if roll < 70 {
                let (target, caller) = (pick(rng), pick(rng));
                self.revoke_one(api, target, caller).await?
            } else if roll < 80 {
                let now = uploader.now();
                let fresh: Vec<usize> = live
                    .iter()
                    .copied()
                    .filter(|&i| now - self.sessions[i].issued_from < FRESH_FOR_LOGOUT_S)
                    .collect();
                match fresh.is_empty() {
                    true => self.login(api, uploader).await?,
                    false => {
                        let session = fresh[rng.random_range(0..fresh.len())];
                        self.logout(api, session).await?
                    }
                }
            } else {
                let caller = pick(rng);
                self.list_live(api, caller).await?
            };
            if let Outcome::CutOff = outcome {
                self.tally.unanswered += 1;
                return Ok(());
            }
        }
        Ok(())
    }

    pub(crate) async fn login(&mut self, api: &Api, uploader: &StandIn) -> Result<Outcome, String> {
        uploader.advance_clock(1);
        let issued_from = uploader.now();
        let credentials = json!({"email": self.account.email, "password": self.account.password});
        let Some(answer) = api
            .send(Method::POST, "/api/auth/login", None, Some(credentials))
            .await
        else {
            return Ok(Outcome::CutOff);
        };
        let (access, refresh) = self.tokens_from(&answer, "login")?;
        self.sessions.push(Tracked {
            access,
            refresh,
            issued_from,
            state: State::Live,
        });
        self.tally.logins += 1;
        Ok(Outcome::Answered)
    }

    async fn refresh(
        &mut self,
        api: &Api,
        uploader: &StandIn,
        session: usize,
    ) -> Result<Outcome, String> {
        uploader.advance_clock(1);
        let issued_from = uploader.now();
        let body = json!({"refresh_token": self.sessions[session].refresh});
        let Some(answer) = api
            .send(Method::POST, "/api/auth/refresh", None, Some(body))
            .await
        else {
            self.sessions[session].state = State::RefreshCutOff;
            return Ok(Outcome::CutOff);
        };
        let (access, refresh) = self.tokens_from(&answer, "refresh")?;
        let tracked = &mut self.sessions[session];
        if access == tracked.access || refresh == tracked.refresh {
            return Err(format!(
                "{}: a refresh gave back the same tokens",
                self.who()
            ));
        }
        (tracked.access, tracked.refresh, tracked.issued_from) = (access, refresh, issued_from);
        self.tally.refreshes += 1;
        Ok(Outcome::Answered)
    }

    /// Revokes `target` by its id, found in the list `caller` sees.
    async fn revoke_one(
        &mut self,
        api: &Api,
        target: usize,
        caller: usize,
    ) -> Result<Outcome, String> {
        let caller_token = self.sessions[caller].access.clone();
        let Some(listed) = api.list(&caller_token).await? else {
            return Ok(Outcome::CutOff);
        };
        let hash = sha512_hex(&self.sessions[target].access);
        let Some((id, _)) = listed.get(&hash) else {
            return Err(format!("{}: a live session is not listed", self.who()));
        };
        let path = format!("/api/account/sessions/{id}");
        let Some(answer) = api
            .send(Method::DELETE, &path, Some(&caller_token), None)
            .await
        else {
            self.sessions[target].state = State::RevokeCutOff;
            return Ok(Outcome::CutOff);
        };
        if answer.status != StatusCode::OK || answer.code() != "SESSION_REVOKED" {
            return Err(format!(
                "{}: DELETE {path}: {}",
                self.who(),
                answer.describe()
            ));
        }
        self.sessions[target].state = State::Revoked;
        self.tally.revoked_one += 1;
        Ok(Outcome::Answered)
    }

    async fn revoke_all(&mut self, api: &Api, caller: usize) -> Result<Outcome, String> {
        let token = self.sessions[caller].access.clone();
        let Some(answer) = api
            .send(Method::DELETE, "/api/account/sessions", Some(&token), None)
            .await
        else {
            for session in &mut self.sessions {
                if session.state == State::Live {
                    session.state = State::RevokeCutOff;
                }
            }
            return Ok(Outcome::CutOff);
        };
        if answer.status != StatusCode::OK || answer.code() != "ALL_SESSIONS_REVOKE" {
            return Err(format!("{}: DELETE all: {}", self.who(), answer.describe()));
        }
        // Every session of the user ends, whatever its tokens are now.
        for session in &mut self.sessions {
            session.state = State::Revoked;
        }
        self.tally.revoked_all += 1;
        Ok(Outcome::Answered)
    }

    async fn logout(&mut self, api: &Api, session: usize) -> Result<Outcome, String> {
        let token = self.sessions[session].access.clone();
        let Some(answer) = api
            .send(Method::POST, "/api/auth/logout", Some(&token), None)
            .await
        else {
            self.sessions[session].state = State::RevokeCutOff;
            return Ok(Outcome::CutOff);
        };
        if answer.status != StatusCode::OK {
            return Err(format!("{}: logout: {}", self.who(), answer.describe()));
        }
        self.sessions[session].state = State::Revoked;
        self.tally.logouts += 1;
        Ok(Outcome::Answered)
    }

    /// Lists with `caller`'s token: every live session must be there.
    async fn list_live(&mut self, api: &Api, caller: usize) -> Result<Outcome, String> {
        let Some(listed) = api.list(&self.sessions[caller].access).await? else {
            return Ok(Outcome::CutOff);
        };
        for i in self.live() {
            if !listed.contains_key(&sha512_hex(&self.sessions[i].access)) {
                return Err(format!(
                    "{}: live session {i} missing from the list",
                    self.who()
                ));
            }
        }
        Ok(Outcome::Answered)
    }

    /// The two tokens of a 200 answer.
    fn tokens_from(&self, answer: &Answer, what: &str) -> Result<(String, String), String> {
        let json = answer.json();
        match (
            answer.status,
            json["access_token"].as_str(),
            json["refresh_token"].as_str(),
        ) {
            (StatusCode::OK, Some(access), Some(refresh)) => Ok((access.into(), refresh.into())),
            _ => Err(format!("{}: {what}: {}", self.who(), answer.describe())),
        }
    }
}
