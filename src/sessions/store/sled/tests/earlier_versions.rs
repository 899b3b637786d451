//! Stores written by earlier versions keep working.

use super::*;

#[tokio::test]
async fn a_store_written_by_earlier_versions_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let own_key = session(1, "u", 1_000, 50_000);
    let json = session(2, "u", 2_000, 9_000);
    let json_with_copy = session(3, "u", 3_000, 50_000);
    let current = session(4, "u", 2_500, 50_000);
    for s in [&own_key, &json, &json_with_copy, &current] {
        store.create(s).await.expect("create");
    }
    write_as_earlier_version(&store, &own_key, Earlier::OwnKey);
    write_as_earlier_version(&store, &json, Earlier::Json);
    write_as_earlier_version(&store, &json_with_copy, Earlier::JsonWithCopy);
    drop(store);
    let store = open(&dir);
    for s in [&own_key, &json, &json_with_copy, &current] {
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
                .find_refresh(&s.user, &s.refresh_hash)
                .await
                .expect("find")
                .as_ref(),
            Some(s)
        );
    }
    // Listed together, oldest first, whichever way each is kept.
    assert_eq!(
        store.list_user("u").await.expect("list"),
        [
            own_key.clone(),
            json.clone(),
            current.clone(),
            json_with_copy.clone()
        ]
    );

    // Revoking and sweeping remove the old records with all their index entries.
    assert_eq!(
        store
            .revoke(&own_key.user, own_key.session_id())
            .await
            .expect("revoke"),
        Some(own_key.clone())
    );
    assert!(
        store
            .by_user
            .get(user_key(&own_key))
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .find_access(&own_key.user, &own_key.access_hash)
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(store.sweep_expired(10_000).await.expect("sweep"), 1);
    assert_eq!(
        store.get(&json.user, json.session_id()).await.expect("get"),
        None
    );
    assert!(store.by_user.get(user_key(&json)).expect("read").is_none());

    // A rotation moves the session into a bucket.
    let rotated = store
        .rotate(
            &json_with_copy.user,
            json_with_copy.session_id(),
            rotation(token_hash("a2"), token_hash("r2"), 60_000, 4_000),
        )
        .await
        .expect("rotate")
        .expect("exists");
    assert_eq!(pointer(&store, &rotated)[0], BUCKET_REF_FORMAT);
    assert!(
        store
            .by_user
            .get(user_key(&json_with_copy))
            .expect("read")
            .is_none()
    );
    assert_eq!(
        store.list_user("u").await.expect("list"),
        [current.clone(), rotated.clone()]
    );
    assert_eq!(
        store
            .get(&rotated.user, rotated.session_id())
            .await
            .expect("get"),
        Some(rotated)
    );
    assert_eq!(store.count(), 2);
    assert_eq!(store.by_expiry.len(), 2);
    access_copy::assert_buckets_match(&store);

    // Revoking a user removes sessions kept either way.
    let mut older = session(5, "u", 500, 50_000);
    older.access_hash = token_hash("a5");
    store.create(&older).await.expect("create");
    write_as_earlier_version(&store, &older, Earlier::OwnKey);
    assert_eq!(store.revoke_user("u").await.expect("revoke_user"), 3);
    assert_eq!(store.by_user.len(), 0);
    assert_eq!(store.sessions.len(), 0);
    assert_eq!(store.count(), 0);
}
