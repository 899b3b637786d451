//! What operators and `lastActiveAt` need: the last uses of sessions, a session found by its
//! id alone, and tokens retired as if rotated away.

use super::*;
use crate::sessions::store::{RotatedEntry, RotatedToken, Touch};

fn touch(user: &str, n: u8, at_ms: i64) -> Touch {
    Touch {
        user: user.into(),
        id: SessionId([n; 12]),
        at_ms,
    }
}

pub(crate) async fn touch_keeps_the_latest_use_and_forgets_it_with_the_session(
    mut fixture: impl Fixture,
) {
    let store = fixture.store();
    let (s1, s2, s3) = (
        session(1, "u", 1_000, 90_000),
        session(2, "u", 1_000, 90_000),
        session(3, "v", 1_000, 90_000),
    );
    for s in [&s1, &s2, &s3] {
        store.create(s).await.expect("create");
    }
    store
        .touch(&[
            touch("u", 1, 5_000),
            touch("u", 2, 6_000),
            touch("v", 3, 7_000),
            // An unknown session and another user's are skipped.
            touch("u", 9, 8_000),
            touch("v", 1, 9_000),
        ])
        .await
        .expect("touch");
    let ids = |ns: &[u8]| ns.iter().map(|n| SessionId([*n; 12])).collect::<Vec<_>>();
    assert_eq!(
        store
            .last_active("u", &ids(&[1, 2, 9]))
            .await
            .expect("read"),
        [Some(5_000), Some(6_000), None]
    );
    assert_eq!(
        store.last_active("v", &ids(&[3, 1])).await.expect("read"),
        [Some(7_000), None]
    );
    // An earlier use does not move it back; a later one moves it on.
    store.touch(&[touch("u", 1, 4_000)]).await.expect("touch");
    assert_eq!(
        store.last_active("u", &ids(&[1])).await.expect("read"),
        [Some(5_000)]
    );
    store.touch(&[touch("u", 1, 5_500)]).await.expect("touch");
    // A rotation keeps it.
    let (access, refresh) = (
        token_hash("access 1 rotated"),
        token_hash("refresh 1 rotated"),
    );
    store
        .rotate(
            "u",
            s1.session_id(),
            rotation(access, refresh, 95_000, 5_600),
        )
        .await
        .expect("rotate")
        .expect("exists");
    assert_eq!(
        store.last_active("u", &ids(&[1])).await.expect("read"),
        [Some(5_500)]
    );
    // It goes with its session: the same id created again has no use recorded.
    store.revoke("u", s1.session_id()).await.expect("revoke");
    store.create(&s1).await.expect("create");
    assert_eq!(
        store.last_active("u", &ids(&[1])).await.expect("read"),
        [None]
    );
    // It is durable.
    fixture.restart().await;
    let store = fixture.store();
    assert_eq!(
        store.last_active("u", &ids(&[1, 2])).await.expect("read"),
        [None, Some(6_000)]
    );
    assert!(store.last_active("u", &[]).await.expect("read").is_empty());
}

pub(crate) async fn find_by_id_finds_a_session_whoever_holds_it(fixture: impl Fixture) {
    let store = fixture.store();
    let mine = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_000, 90_000);
    let theirs = session(2, "5fc1d2e3a4b5c6d7e8f90a1c", 1_000, 90_000);
    store.create(&mine).await.expect("create");
    store.create(&theirs).await.expect("create");
    assert_eq!(
        store.find_by_id(theirs.session_id()).await.expect("find"),
        Some(theirs.clone())
    );
    assert_eq!(
        store.find_by_id(SessionId([9; 12])).await.expect("find"),
        None
    );
    store
        .revoke(&theirs.user, theirs.session_id())
        .await
        .expect("revoke");
    assert_eq!(
        store.find_by_id(theirs.session_id()).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_by_id(mine.session_id()).await.expect("find"),
        Some(mine)
    );
}

pub(crate) async fn a_retired_token_is_known_until_it_expires(fixture: impl Fixture) {
    let store = fixture.store();
    let s = session(1, "u", 1_000, 90_000);
    store.create(&s).await.expect("create");
    let retired = RotatedEntry {
        user: "u".into(),
        hash: token_hash("an old access token"),
        session_id: s.session_id(),
        rotated_at_ms: 2_000,
        expire_at_ms: 5_000,
    };
    store
        .retire(std::slice::from_ref(&retired))
        .await
        .expect("retire");
    assert_eq!(
        store.find_rotated("u", &retired.hash).await.expect("find"),
        Some(RotatedToken {
            session_id: s.session_id(),
            rotated_at_ms: 2_000,
        })
    );
    // The session is untouched, and the retired token forgotten once expired.
    assert_eq!(
        store.get("u", s.session_id()).await.expect("get"),
        Some(s.clone())
    );
    assert_eq!(store.sweep_expired(5_000).await.expect("sweep"), 0);
    assert_eq!(
        store.find_rotated("u", &retired.hash).await.expect("find"),
        None
    );
    assert_eq!(count(store).await, 1);
}
