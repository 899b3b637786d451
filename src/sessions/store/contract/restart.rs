//! What a store gives back after a restart.

use super::*;

pub(crate) async fn a_restart_gives_back_the_same_store(mut fixture: impl Fixture) {
    let kept = session(1, "ab", 1_000, 9_000);
    let revoked = session(2, "ab", 2_000, 9_000);
    let rotated = session(3, "ab", 3_000, 9_000);
    let other_user = session(4, "abc", 500, 9_000);
    let new_access = token_hash("access 3 rotated");
    let new_refresh = token_hash("refresh 3 rotated");
    let rotated_now = Session {
        access_hash: new_access,
        refresh_hash: new_refresh,
        expire_at_ms: 20_000,
        updated_at_ms: 4_000,
        ..rotated.clone()
    };
    {
        let store = fixture.store();
        for s in [&kept, &revoked, &rotated, &other_user] {
            store.create(s).await.expect("create");
        }
        store
            .revoke(&revoked.user, revoked.session_id())
            .await
            .expect("revoke");
        store
            .rotate(
                &rotated.user,
                rotated.session_id(),
                rotation(new_access, new_refresh, 20_000, 4_000),
            )
            .await
            .expect("rotate");
    }

    fixture.restart().await;
    let store = fixture.store();
    assert_eq!(count(store).await, 3);
    assert_eq!(
        store.list_user("ab").await.expect("list"),
        [kept.clone(), rotated_now.clone()]
    );
    assert_eq!(listed(store, "abc").await, [[4; 12]]);

    assert_eq!(
        store
            .find_access(&kept.user, &kept.access_hash)
            .await
            .expect("find"),
        Some(grant(&kept))
    );
    assert_eq!(
        store
            .find_refresh(&kept.user, &kept.refresh_hash)
            .await
            .expect("find"),
        Some(kept.clone())
    );
    assert_eq!(
        store.find_access("ab", &new_access).await.expect("find"),
        Some(grant(&rotated_now))
    );
    assert_eq!(
        store
            .find_access(&rotated.user, &rotated.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&rotated.user, &rotated.refresh_hash)
            .await
            .expect("find"),
        None
    );

    assert_eq!(
        store
            .get(&revoked.user, revoked.session_id())
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .find_access(&revoked.user, &revoked.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&revoked.user, &revoked.refresh_hash)
            .await
            .expect("find"),
        None
    );

    // The expiry index came back too: the sweep sees the old expiries and the new one.
    assert_eq!(store.sweep_expired(9_000).await.expect("sweep"), 2);
    assert_eq!(listed(store, "ab").await, [[3; 12]]);
    assert_eq!(store.sweep_expired(20_000).await.expect("sweep"), 1);
    assert_eq!(count(store).await, 0);
}
