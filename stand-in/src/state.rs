//! The state shared by the server task and the [`StandIn`](crate::StandIn) handle.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{StandInConfig, User};
use crate::record::RecordedRequest;
use crate::tokens::Tokens;

/// Accounts, recorded requests, the clock and the token keys.
pub(crate) struct State {
    /// Signs and verifies tokens.
    pub tokens: Tokens,
    /// The accounts; passwords change with `PUT /account/change-password`.
    users: Mutex<Vec<User>>,
    /// Every request received, in order.
    requests: Mutex<Vec<RecordedRequest>>,
    /// Seconds added to the real clock.
    clock_offset: Mutex<i64>,
}

impl State {
    /// The state for `config`, with no requests and no clock offset.
    pub fn new(config: StandInConfig) -> State {
        State {
            tokens: Tokens::new(&config.secret, config.issuer),
            users: Mutex::new(config.users),
            requests: Mutex::new(Vec::new()),
            clock_offset: Mutex::new(0),
        }
    }

    /// Unix seconds, real time plus the offset.
    pub fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the system clock is after 1970")
            .as_secs();
        i64::try_from(real).expect("unix seconds fit in i64") + *lock(&self.clock_offset)
    }

    /// Moves the clock `seconds` forward (or back, if negative).
    pub fn advance_clock(&self, seconds: i64) {
        *lock(&self.clock_offset) += seconds;
    }

    /// Remembers `request`.
    pub fn record(&self, request: RecordedRequest) {
        lock(&self.requests).push(request);
    }

    /// Every request remembered, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// Forgets the requests remembered so far.
    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    /// The account with this email and password.
    pub fn login(&self, email: &str, password: &str) -> Option<User> {
        lock(&self.users)
            .iter()
            .find(|user| user.email == email && user.password == password)
            .cloned()
    }

    /// Sets the password of the account `id` to `new` if it is `old`; whether it was.
    pub fn change_password(&self, id: &str, old: &str, new: &str) -> bool {
        let mut users = lock(&self.users);
        let user = users.iter_mut().find(|user| user.id == id);
        match user {
            Some(user) if user.password == old => {
                user.password = new.to_owned();
                true
            }
            _ => false,
        }
    }
}

/// Locks `mutex`, carrying on after a panic elsewhere (the data stays usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
