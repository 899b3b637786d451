//! Rotating and revoking sessions: what changes and what stays.

use super::*;

pub(crate) async fn rotate_replaces_hashes_and_expiry_in_place(fixture: impl Fixture) {
    let store = fixture.store();
    let older = session(1, "u", 1_000, 5_000);
    let younger = session(2, "u", 2_000, 6_000);
    store.create(&older).await.expect("create");
    store.create(&younger).await.expect("create");

    let new_access = token_hash("access 1 rotated");
    let new_refresh = token_hash("refresh 1 rotated");
    let rotated = store
        .rotate(
            &older.user,
            older.session_id(),
            rotation(new_access, new_refresh, 50_000, 4_000),
        )
        .await
        .expect("rotate")
        .expect("the session exists");

    let expected = Session {
        access_hash: new_access,
        refresh_hash: new_refresh,
        expire_at_ms: 50_000,
        updated_at_ms: 4_000,
        ..older.clone()
    };
    assert_eq!(rotated, expected);
    assert_eq!(rotated.id, older.id);
    assert_eq!(rotated.created_at_ms, 1_000);
    assert_eq!(
        store
            .get(&older.user, older.session_id())
            .await
            .expect("get"),
        Some(expected.clone())
    );

    assert_eq!(
        store
            .find_access(&older.user, &older.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&older.user, &older.refresh_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store.find_access("u", &new_access).await.expect("find"),
        Some(grant(&expected))
    );
    assert_eq!(
        store.find_refresh("u", &new_refresh).await.expect("find"),
        Some(expected.clone())
    );

    // Still one record, still listed by creation time, the other session untouched.
    assert_eq!(count(store).await, 2);
    assert_eq!(listed(store, "u").await, [[1; 12], [2; 12]]);
    // The listing shows the rotated record, not the copy made at creation.
    assert_eq!(
        store.list_user("u").await.expect("list"),
        [expected.clone(), younger.clone()]
    );
    assert_eq!(
        store
            .find_access(&younger.user, &younger.access_hash)
            .await
            .expect("find"),
        Some(grant(&younger))
    );
}

pub(crate) async fn rotate_of_a_missing_session_is_none_and_indexes_nothing(fixture: impl Fixture) {
    let store = fixture.store();
    let s = session(1, "u", 1_000, 5_000);
    store.create(&s).await.expect("create");

    let new_access = token_hash("a");
    let new_refresh = token_hash("r");
    let rotated = store
        .rotate(
            "u",
            SessionId([7; 12]),
            rotation(new_access, new_refresh, 9_000, 2_000),
        )
        .await
        .expect("rotate");
    assert_eq!(rotated, None);
    assert_eq!(
        store.find_access("u", &new_access).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_refresh("u", &new_refresh).await.expect("find"),
        None
    );
    assert_eq!(count(store).await, 1);

    // Revoked, then rotated: still gone.
    store.revoke(&s.user, s.session_id()).await.expect("revoke");
    let rotated = store
        .rotate(
            &s.user,
            s.session_id(),
            rotation(new_access, new_refresh, 9_000, 2_000),
        )
        .await
        .expect("rotate");
    assert_eq!(rotated, None);
    assert_eq!(count(store).await, 0);
    assert_eq!(
        store.find_access("u", &new_access).await.expect("find"),
        None
    );
}

pub(crate) async fn revoke_removes_the_session_and_every_index_entry(fixture: impl Fixture) {
    let store = fixture.store();
    let gone = session(1, "u", 1_000, 5_000);
    let kept = session(2, "u", 2_000, 5_000);
    store.create(&gone).await.expect("create");
    store.create(&kept).await.expect("create");

    let revoked = store
        .revoke(&gone.user, gone.session_id())
        .await
        .expect("revoke");
    assert_eq!(revoked, Some(gone.clone()));

    assert_eq!(
        store
            .find_access(&gone.user, &gone.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&gone.user, &gone.refresh_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store.get(&gone.user, gone.session_id()).await.expect("get"),
        None
    );
    assert_eq!(listed(store, "u").await, [[2; 12]]);
    assert_eq!(count(store).await, 1);

    assert_eq!(
        store
            .revoke(&gone.user, gone.session_id())
            .await
            .expect("revoke"),
        None
    );
    assert_eq!(count(store).await, 1);
    assert_eq!(
        store
            .revoke(&kept.user, kept.session_id())
            .await
            .expect("revoke"),
        Some(kept)
    );
    assert_eq!(count(store).await, 0);
}

pub(crate) async fn revoke_leaves_other_sessions_working(fixture: impl Fixture) {
    let store = fixture.store();
    let gone = session(1, "u", 1_000, 5_000);
    let kept = session(2, "u", 2_000, 6_000);
    store.create(&gone).await.expect("create");
    store.create(&kept).await.expect("create");

    store
        .revoke(&gone.user, gone.session_id())
        .await
        .expect("revoke");
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
        store.get(&kept.user, kept.session_id()).await.expect("get"),
        Some(kept)
    );
}

pub(crate) async fn revoke_user_removes_only_that_user(fixture: impl Fixture) {
    let store = fixture.store();
    let mine = [
        session(1, "ab", 1_000, 9_000),
        session(2, "ab", 2_000, 9_000),
        session(3, "ab", 3_000, 9_000),
    ];
    let theirs = [
        session(4, "abc", 1_500, 9_000),
        session(5, "a", 2_500, 9_000),
    ];
    for s in mine.iter().chain(&theirs) {
        store.create(s).await.expect("create");
    }

    assert_eq!(store.revoke_user("ab").await.expect("revoke_user"), 3);

    for s in &mine {
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
    assert!(listed(store, "ab").await.is_empty());
    for s in &theirs {
        assert_eq!(
            store
                .find_access(&s.user, &s.access_hash)
                .await
                .expect("find"),
            Some(grant(s))
        );
    }
    assert_eq!(listed(store, "abc").await, [[4; 12]]);
    assert_eq!(listed(store, "a").await, [[5; 12]]);
    assert_eq!(count(store).await, 2);

    assert_eq!(store.revoke_user("ab").await.expect("revoke_user"), 0);
    assert_eq!(store.revoke_user("nobody").await.expect("revoke_user"), 0);
    assert_eq!(count(store).await, 2);
}

pub(crate) async fn rotate_remembers_the_replaced_refresh_token_until_it_expires(
    fixture: impl Fixture,
) {
    let store = fixture.store();
    let s = session(1, "u", 1_000, 5_000);
    store.create(&s).await.expect("create");
    let (access, refresh) = (
        token_hash("access 1 rotated"),
        token_hash("refresh 1 rotated"),
    );
    store
        .rotate("u", s.session_id(), rotation(access, refresh, 9_000, 4_000))
        .await
        .expect("rotate")
        .expect("exists");

    let remembered = store.find_rotated("u", &s.refresh_hash).await;
    assert_eq!(
        remembered.expect("find_rotated"),
        Some(RotatedToken {
            session_id: s.session_id(),
            rotated_at_ms: 4_000,
        })
    );
    // The current refresh token and tokens never issued are not rotated-away ones.
    assert_eq!(store.find_rotated("u", &refresh).await.expect("find"), None);
    let unknown = token_hash("never issued");
    assert_eq!(store.find_rotated("u", &unknown).await.expect("find"), None);

    // A rotation that keeps the refresh token remembers nothing new.
    let again = token_hash("access 1 rotated again");
    store
        .rotate("u", s.session_id(), rotation(again, refresh, 9_000, 4_500))
        .await
        .expect("rotate")
        .expect("exists");
    assert_eq!(store.find_rotated("u", &refresh).await.expect("find"), None);

    // Remembered until the replaced token's own expiry, then forgotten by the sweep; the
    // session, extended by the rotation, stays.
    assert_eq!(store.sweep_expired(4_999).await.expect("sweep"), 0);
    assert!(
        store
            .find_rotated("u", &s.refresh_hash)
            .await
            .expect("find")
            .is_some()
    );
    assert_eq!(store.sweep_expired(5_000).await.expect("sweep"), 0);
    assert_eq!(
        store
            .find_rotated("u", &s.refresh_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(listed(store, "u").await, [[1; 12]]);
}
