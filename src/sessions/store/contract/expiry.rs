//! The expiry sweep.

use super::*;

pub(crate) async fn sweep_removes_exactly_the_expired_sessions(fixture: impl Fixture) {
    let store = fixture.store();
    let early = session(1, "u", 100, 1_000);
    let due_now = session(2, "v", 100, 2_000);
    let later = session(3, "u", 100, 2_001);
    let much_later = session(4, "w", 100, 1_000_000);
    for s in [&much_later, &later, &early, &due_now] {
        store.create(s).await.expect("create");
    }

    assert_eq!(store.sweep_expired(999).await.expect("sweep"), 0);
    assert_eq!(count(store).await, 4);

    assert_eq!(store.sweep_expired(2_000).await.expect("sweep"), 2);
    for s in [&early, &due_now] {
        assert_eq!(store.get(&s.user, s.session_id()).await.expect("get"), None);
        assert_eq!(
            store
                .find_access(&s.user, &s.access_hash)
                .await
                .expect("find"),
            None
        );
        assert_eq!(
            store
                .find_refresh(&s.user, &s.refresh_hash)
                .await
                .expect("find"),
            None
        );
    }
    for s in [&later, &much_later] {
        assert_eq!(
            store
                .get(&s.user, s.session_id())
                .await
                .expect("get")
                .as_ref(),
            Some(s)
        );
        assert_eq!(
            store
                .find_access(&s.user, &s.access_hash)
                .await
                .expect("find"),
            Some(grant(s))
        );
    }
    assert_eq!(listed(store, "u").await, [[3; 12]]);
    assert!(listed(store, "v").await.is_empty());

    // Nothing left that is due: a second sweep at the same time removes nothing.
    assert_eq!(store.sweep_expired(2_000).await.expect("sweep"), 0);
    assert_eq!(count(store).await, 2);
}

pub(crate) async fn sweep_respects_an_expiry_extended_by_rotate(fixture: impl Fixture) {
    let store = fixture.store();
    let extended = session(1, "u", 100, 1_000);
    let not_extended = session(2, "u", 200, 1_000);
    store.create(&extended).await.expect("create");
    store.create(&not_extended).await.expect("create");

    let access = token_hash("access 1 rotated");
    let refresh = token_hash("refresh 1 rotated");
    store
        .rotate(
            &extended.user,
            extended.session_id(),
            rotation(access, refresh, 10_000, 900),
        )
        .await
        .expect("rotate")
        .expect("exists");

    assert_eq!(store.sweep_expired(5_000).await.expect("sweep"), 1);
    assert_eq!(
        store
            .get(&not_extended.user, not_extended.session_id())
            .await
            .expect("get"),
        None
    );
    let grant = store.find_access("u", &access).await.expect("find");
    assert_eq!(grant.map(|g| g.expire_at_ms), Some(10_000));
    assert_eq!(listed(store, "u").await, [[1; 12]]);

    // At its new expiry it goes.
    assert_eq!(store.sweep_expired(9_999).await.expect("sweep"), 0);
    assert_eq!(store.sweep_expired(10_000).await.expect("sweep"), 1);
    assert_eq!(store.find_access("u", &access).await.expect("find"), None);
    assert_eq!(count(store).await, 0);
}

pub(crate) async fn sweep_at_the_end_of_time_removes_everything(fixture: impl Fixture) {
    let store = fixture.store();
    store
        .create(&session(1, "u", 100, 1_000))
        .await
        .expect("create");
    store
        .create(&session(2, "u", 100, i64::MAX))
        .await
        .expect("create");

    assert_eq!(store.sweep_expired(i64::MAX).await.expect("sweep"), 2);
    assert_eq!(count(store).await, 0);
}
