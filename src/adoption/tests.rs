use super::*;

use http::header::USER_AGENT;

use crate::auth::token_hash;
use crate::sessions::store::sled::tests::open;
use crate::sessions::tombstones::{Tombstoning, all_ended_mark};
use crate::sessions::{Clock, Device, ManualClock, RotatedEntry, Session};

const USER: &str = "5fc1d2e3a4b5c6d7e8f90a1b";
/// The cut-over, in seconds (the fixture's clock is a day later).
const BEFORE_S: i64 = 1_790_000_000;

fn claims(iat: Option<f64>, lifetime_s: f64, api_key: bool) -> Claims {
    let iat_s = iat.unwrap_or(BEFORE_S as f64 - 60.0);
    Claims {
        sub: USER.into(),
        exp: iat_s + lifetime_s,
        nbf: None,
        iat,
        api_key,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn SessionStore>,
    adoption: Adoption,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    // A day after the cut-over: tokens issued before it may still be alive.
    let clock = Arc::new(ManualClock::new());
    clock.advance_seconds(BEFORE_S + 86_400 - clock.now_ms() / 1000);
    let sled: Arc<dyn SessionStore> = Arc::new(open(dir.path().join("sessions")));
    let before_ms = BEFORE_S * 1000;
    let store: Arc<dyn SessionStore> = Arc::new(Tombstoning::new(sled, clock.clone(), before_ms));
    let adoption = Adoption::new(before_ms, store.clone(), Arc::new(Metrics::new()), None);
    Fixture {
        _dir: dir,
        store,
        adoption,
        clock,
    }
}

#[tokio::test]
async fn only_session_tokens_issued_before_the_instant_are_adoptable() {
    let f = fixture();
    let hash = token_hash("a token");
    let adoptable = |claims: Claims, kind| {
        let adoption = &f.adoption;
        async move {
            adoption
                .adoptable(&claims, &hash, kind)
                .await
                .expect("store")
        }
    };
    let before = (BEFORE_S - 60) as f64;
    // An access token of 5 minutes and a refresh token of 14 days, issued a minute before.
    assert_eq!(
        adoptable(claims(Some(before), 300.0, false), TokenKind::Access).await,
        Some((BEFORE_S - 60) * 1000)
    );
    assert_eq!(
        adoptable(
            claims(Some(before), 14.0 * 86400.0, false),
            TokenKind::Refresh
        )
        .await,
        Some((BEFORE_S - 60) * 1000)
    );
    // At or after the instant: never.
    let at = BEFORE_S as f64;
    assert_eq!(
        adoptable(claims(Some(at), 300.0, false), TokenKind::Access).await,
        None
    );
    assert_eq!(
        adoptable(claims(Some(at + 1.0), 300.0, false), TokenKind::Refresh).await,
        None
    );
    // No `iat`, an API key, or a lifetime no session token of Share has: never.
    assert_eq!(
        adoptable(claims(None, 300.0, false), TokenKind::Access).await,
        None
    );
    assert_eq!(
        adoptable(claims(Some(before), 300.0, true), TokenKind::Access).await,
        None
    );
    assert_eq!(
        adoptable(claims(Some(before), 86400.0, false), TokenKind::Access).await,
        None
    );
    assert_eq!(
        adoptable(
            claims(Some(before), 31.0 * 86400.0, false),
            TokenKind::Refresh
        )
        .await,
        None
    );
}

#[tokio::test]
async fn a_tombstoned_token_and_a_token_older_than_a_revoke_all_are_not_adoptable() {
    let f = fixture();
    let issued = claims(Some((BEFORE_S - 60) as f64), 300.0, false);
    let hash = token_hash("a token");
    f.store
        .retire(&[RotatedEntry {
            user: USER.into(),
            hash,
            session_id: SessionId([1; 12]),
            rotated_at_ms: f.clock.now_ms(),
            expire_at_ms: f.clock.now_ms() + 60_000,
        }])
        .await
        .expect("retire");
    let adoptable = |hash| f.adoption.adoptable(&issued, hash, TokenKind::Access);
    assert_eq!(adoptable(&hash).await.expect("store"), None);
    let other = token_hash("another token");
    assert!(adoptable(&other).await.expect("store").is_some());

    // Every session of the user ends: none of their tokens issued before is adoptable.
    f.store.revoke_user(USER).await.expect("revoke_user");
    assert_eq!(adoptable(&other).await.expect("store"), None);
    // Another user's are.
    let mut someone_else = issued.clone();
    someone_else.sub = "5fc1d2e3a4b5c6d7e8f90a1c".into();
    let found = f
        .adoption
        .adoptable(&someone_else, &other, TokenKind::Access)
        .await
        .expect("store");
    assert!(found.is_some());
}

#[tokio::test]
async fn an_adopted_access_token_is_a_session_until_it_expires_and_its_end_is_remembered() {
    let f = fixture();
    let issued = claims(Some((BEFORE_S - 60) as f64), 300.0, false);
    let hash = token_hash("an access token");
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, "ShareX/15.0.0".parse().expect("a header value"));
    let session = f
        .adoption
        .adopt_access(&issued, &hash, &headers, f.clock.now_ms())
        .await
        .expect("store")
        .expect("adopted");
    assert_eq!(session.created_at_ms, (BEFORE_S - 60) * 1000);
    assert_eq!(session.expire_at_ms, (BEFORE_S + 240) * 1000);
    assert_eq!(session.device.browser, "ShareX");
    let grant = f.store.find_access(USER, &hash).await.expect("find");
    assert_eq!(grant.map(|g| g.session_id), Some(session.session_id()));

    // Revoked, it leaves a tombstone: the token is not adopted again.
    f.store
        .revoke(USER, session.session_id())
        .await
        .expect("revoke")
        .expect("it existed");
    assert_eq!(f.store.find_access(USER, &hash).await.expect("find"), None);
    let again = f
        .adoption
        .adopt_access(&issued, &hash, &headers, f.clock.now_ms())
        .await
        .expect("store");
    assert!(again.is_none(), "{again:?}");
}

#[tokio::test]
async fn only_sessions_that_may_hold_older_tokens_leave_tombstones() {
    let f = fixture();
    let now = f.clock.now_ms();
    let session = |n: u8, updated_at_ms: i64| Session {
        id: [n; 12],
        user: USER.into(),
        access_hash: token_hash(&format!("access {n}")),
        refresh_hash: token_hash(&format!("refresh {n}")),
        device: Device::from_user_agent(None),
        location: "unknown".into(),
        created_at_ms: updated_at_ms,
        updated_at_ms,
        expire_at_ms: now + 14 * 86_400_000,
    };
    // Learned before the instant: its tokens may be adoptable, and are tombstoned.
    let older = session(1, (BEFORE_S - 60) * 1000);
    // Learned long after it: its tokens never are, and nothing is written.
    let newer = session(2, now);
    for s in [&older, &newer] {
        f.store.create(s).await.expect("create");
        f.store.revoke(USER, s.session_id()).await.expect("revoke");
    }
    let tombstoned = |hash| {
        let store = &f.store;
        async move {
            store
                .find_rotated(USER, hash)
                .await
                .expect("find")
                .is_some()
        }
    };
    assert!(tombstoned(&older.access_hash).await);
    assert!(tombstoned(&older.refresh_hash).await);
    // An access token's tombstone lasts as long as an adoptable access token lives; the
    // refresh token's until the session would have expired.
    f.store
        .sweep_expired(now + MAX_ACCESS_LIFETIME_MS + 1)
        .await
        .expect("sweep");
    assert!(!tombstoned(&older.access_hash).await);
    assert!(tombstoned(&older.refresh_hash).await);
    for hash in [&newer.access_hash, &newer.refresh_hash] {
        assert_eq!(f.store.find_rotated(USER, hash).await.expect("find"), None);
    }
}

#[tokio::test]
async fn once_no_adoptable_token_can_be_alive_nothing_is_tombstoned() {
    let f = fixture();
    // A month and a day after the cut-over: every adoptable token has expired.
    f.clock.advance_seconds(30 * 86_400 + 600);
    let now = f.clock.now_ms();
    let older = Session {
        id: [3; 12],
        user: USER.into(),
        access_hash: token_hash("access 3"),
        refresh_hash: token_hash("refresh 3"),
        device: Device::from_user_agent(None),
        location: "unknown".into(),
        created_at_ms: (BEFORE_S - 60) * 1000,
        updated_at_ms: (BEFORE_S - 60) * 1000,
        expire_at_ms: now + 86_400_000,
    };
    f.store.create(&older).await.expect("create");
    f.store
        .revoke(USER, older.session_id())
        .await
        .expect("revoke");
    f.store.revoke_user(USER).await.expect("revoke_user");
    for hash in [older.access_hash, older.refresh_hash, all_ended_mark(USER)] {
        assert_eq!(f.store.find_rotated(USER, &hash).await.expect("find"), None);
    }
}
