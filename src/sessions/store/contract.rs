//! What every [`SessionStore`] must do, whatever keeps its sessions: one suite, run against
//! each backend by [`contract_tests!`] (see the backends' `tests` modules), so that the
//! backends cannot drift apart.

use async_trait::async_trait;

mod activity;
mod changes;
mod expiry;
mod found;
mod restart;

pub(crate) use activity::*;
pub(crate) use changes::*;
pub(crate) use expiry::*;
pub(crate) use found::*;
pub(crate) use restart::*;

use super::{AccessGrant, RotatedToken, Rotation, SessionStore};
use crate::auth::{TokenHash, token_hash};
use crate::sessions::{Device, Session, SessionId};

/// A backend's store under test, and how to restart it.
#[async_trait]
pub(crate) trait Fixture: Send + Sized {
    /// A new, empty store.
    async fn start() -> Self;

    /// The store.
    fn store(&self) -> &dyn SessionStore;

    /// Closes the store and opens it again from what it made durable.
    async fn restart(&mut self);
}

/// Runs every test of the suite against the backend of `$fixture` (a [`Fixture`]).
macro_rules! contract_tests {
    ($fixture:ty) => {
        $crate::sessions::store::contract::contract_tests!(@each $fixture;
            created_session_is_found_by_access_and_refresh_hash,
            list_user_gives_only_that_user_oldest_first,
            rotate_replaces_hashes_and_expiry_in_place,
            rotate_of_a_missing_session_is_none_and_indexes_nothing,
            revoke_removes_the_session_and_every_index_entry,
            revoke_leaves_other_sessions_working,
            revoke_user_removes_only_that_user,
            touch_keeps_the_latest_use_and_forgets_it_with_the_session,
            find_by_id_finds_a_session_whoever_holds_it,
            a_retired_token_is_known_until_it_expires,
            rotate_remembers_the_replaced_refresh_token_until_it_expires,
            sweep_removes_exactly_the_expired_sessions,
            sweep_respects_an_expiry_extended_by_rotate,
            sweep_at_the_end_of_time_removes_everything,
            identical_tokens_evict_the_older_session,
            a_shared_access_hash_alone_evicts_the_older_session,
            a_restart_gives_back_the_same_store,
        );
    };
    (@each $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let fixture =
                    <$fixture as $crate::sessions::store::contract::Fixture>::start().await;
                $crate::sessions::store::contract::$name(fixture).await;
            }
        )*
    };
}
pub(crate) use contract_tests;

/// A session numbered `n`: id `[n; 12]`, tokens "access n" and "refresh n".
pub(crate) fn session(n: u8, user: &str, created_at_ms: i64, expire_at_ms: i64) -> Session {
    Session {
        id: [n; 12],
        user: user.into(),
        access_hash: token_hash(&format!("access {n}")),
        refresh_hash: token_hash(&format!("refresh {n}")),
        device: Device::from_user_agent(Some("ShareX/15.0.0")),
        location: "Berlin, Berlin DE".into(),
        created_at_ms,
        updated_at_ms: created_at_ms,
        expire_at_ms,
    }
}

/// The ids of a user's sessions, in the order `list_user` gives them.
pub(crate) async fn listed(store: &dyn SessionStore, user: &str) -> Vec<[u8; 12]> {
    store
        .list_user(user)
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect()
}

/// How many sessions the store holds.
pub(crate) async fn count(store: &dyn SessionStore) -> usize {
    store.count().await.expect("count")
}

pub(crate) fn grant(session: &Session) -> AccessGrant {
    AccessGrant::of(session)
}

/// New tokens for a session, `now_ms` the time of the refresh.
pub(crate) fn rotation(
    access_hash: TokenHash,
    refresh_hash: TokenHash,
    expire_at_ms: i64,
    now_ms: i64,
) -> Rotation {
    Rotation {
        access_hash,
        refresh_hash,
        expire_at_ms,
        now_ms,
    }
}
