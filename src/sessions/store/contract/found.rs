//! Creating sessions, and finding them by token hash, by id and by user.

use super::*;

pub(crate) async fn created_session_is_found_by_access_and_refresh_hash(fixture: impl Fixture) {
    let store = fixture.store();
    let s = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_000, 9_000);

    let evicted = store.create(&s).await.expect("create");
    assert!(evicted.is_empty());
    assert_eq!(count(store).await, 1);

    let found = store
        .find_access(&s.user, &s.access_hash)
        .await
        .expect("find_access");
    assert_eq!(
        found,
        Some(AccessGrant {
            session_id: SessionId([1; 12]),
            user: "5fc1d2e3a4b5c6d7e8f90a1b".into(),
            expire_at_ms: 9_000,
        })
    );
    let by_refresh = store
        .find_refresh(&s.user, &s.refresh_hash)
        .await
        .expect("find_refresh");
    assert_eq!(by_refresh, Some(s.clone()));
    assert_eq!(
        store.get(&s.user, s.session_id()).await.expect("get"),
        Some(s.clone())
    );

    // The access hash is not a refresh hash and the other way round.
    assert_eq!(
        store
            .find_refresh(&s.user, &s.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_access(&s.user, &s.refresh_hash)
            .await
            .expect("find"),
        None
    );
    let unknown = token_hash("never issued");
    assert_eq!(
        store.find_access(&s.user, &unknown).await.expect("find"),
        None
    );
    assert_eq!(
        store.find_refresh(&s.user, &unknown).await.expect("find"),
        None
    );
    assert_eq!(
        store.get(&s.user, SessionId([9; 12])).await.expect("get"),
        None
    );
    // Another user's tokens and ids are not found.
    let other = "5fc1d2e3a4b5c6d7e8f90a1c";
    assert_eq!(
        store
            .find_access(other, &s.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(other, &s.refresh_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(store.get(other, s.session_id()).await.expect("get"), None);
    assert_eq!(
        store.revoke(other, s.session_id()).await.expect("revoke"),
        None
    );
    assert_eq!(count(store).await, 1);
}

pub(crate) async fn list_user_gives_only_that_user_oldest_first(fixture: impl Fixture) {
    let store = fixture.store();
    // Ids run against creation order, so an id-ordered listing would be caught.
    let newest = session(1, "ab", 3_000, 99_000);
    let oldest = session(2, "ab", 1_000, 99_000);
    let middle = session(3, "ab", 2_000, 99_000);
    let other = session(4, "abc", 500, 99_000);
    let another = session(5, "a", 1_500, 99_000);
    for s in [&newest, &other, &oldest, &another, &middle] {
        store.create(s).await.expect("create");
    }

    assert_eq!(listed(store, "ab").await, [[2; 12], [3; 12], [1; 12]]);
    assert_eq!(listed(store, "abc").await, [[4; 12]]);
    assert_eq!(listed(store, "a").await, [[5; 12]]);
    assert!(listed(store, "b").await.is_empty());
    assert!(listed(store, "").await.is_empty());

    let full = store.list_user("ab").await.expect("list");
    assert_eq!(full, [oldest, middle, newest]);
}

pub(crate) async fn identical_tokens_evict_the_older_session(fixture: impl Fixture) {
    // Two logins of one user in the same second: byte-identical access and refresh tokens.
    let store = fixture.store();
    let first = session(1, "u", 1_000, 9_000);
    let second = Session {
        id: [2; 12],
        created_at_ms: 1_400,
        updated_at_ms: 1_400,
        expire_at_ms: 9_400,
        ..first.clone()
    };
    store.create(&first).await.expect("create");

    let evicted = store.create(&second).await.expect("create");
    assert_eq!(evicted, [first.session_id()]);
    assert_eq!(
        store
            .get(&first.user, first.session_id())
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .find_access(&first.user, &first.access_hash)
            .await
            .expect("find"),
        Some(grant(&second))
    );
    assert_eq!(
        store
            .find_refresh(&first.user, &first.refresh_hash)
            .await
            .expect("find"),
        Some(second.clone())
    );
    assert_eq!(listed(store, "u").await, [[2; 12]]);
    assert_eq!(count(store).await, 1);

    // Revoking the survivor must not leave the shared token working.
    assert_eq!(
        store
            .revoke(&second.user, second.session_id())
            .await
            .expect("revoke"),
        Some(second.clone())
    );
    assert_eq!(
        store
            .find_access(&first.user, &first.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&first.user, &first.refresh_hash)
            .await
            .expect("find"),
        None
    );
    assert!(listed(store, "u").await.is_empty());
    assert_eq!(count(store).await, 0);
}

pub(crate) async fn a_shared_access_hash_alone_evicts_the_older_session(fixture: impl Fixture) {
    let store = fixture.store();
    let first = session(1, "u", 1_000, 9_000);
    let second = Session {
        access_hash: first.access_hash,
        ..session(2, "u", 1_500, 9_500)
    };
    store.create(&first).await.expect("create");

    let evicted = store.create(&second).await.expect("create");
    assert_eq!(evicted, [first.session_id()]);
    assert_eq!(
        store
            .get(&first.user, first.session_id())
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .find_access(&first.user, &first.access_hash)
            .await
            .expect("find"),
        Some(grant(&second))
    );
    // The evicted session's own refresh token is gone with it.
    assert_eq!(
        store
            .find_refresh(&first.user, &first.refresh_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store
            .find_refresh(&second.user, &second.refresh_hash)
            .await
            .expect("find"),
        Some(second.clone())
    );
    assert_eq!(listed(store, "u").await, [[2; 12]]);

    store
        .revoke(&second.user, second.session_id())
        .await
        .expect("revoke");
    assert_eq!(
        store
            .find_access(&first.user, &first.access_hash)
            .await
            .expect("find"),
        None
    );
    assert_eq!(count(store).await, 0);
}
