//! A user's sessions in buckets: how they fill, empty, and are listed.

use super::*;

#[tokio::test]
async fn a_users_sessions_fill_buckets_in_turn_and_empty_ones_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    assert_eq!(BUCKET_CAPACITY, 3, "the unit tests' capacity");
    // Created newest first, so that the listing's order comes from sorting, not from the
    // order of the buckets.
    let sessions: Vec<Session> = (1..=7)
        .map(|n| session(n, "u", 10_000 - i64::from(n) * 1_000, 99_000))
        .collect();
    for s in &sessions {
        store.create(s).await.expect("create");
    }
    let other = session(20, "v", 1, 99_000);
    store.create(&other).await.expect("create");
    let prefix = user_prefix("u");

    assert_eq!(
        user_layout(&store, "u"),
        (
            Some(BucketsHead {
                open: 2,
                sessions: 7
            }),
            3
        )
    );
    let oldest_first: Vec<[u8; 12]> = sessions.iter().rev().map(|s| s.id).collect();
    assert_eq!(listed(&store, "u").await, oldest_first);
    assert_eq!(
        pointer(&store, &sessions[4]),
        encode_bucket_ref(&bucket_key(&prefix, 1))
    );

    // Emptying the middle bucket removes it; the others keep their sessions.
    for s in &sessions[3..6] {
        store.revoke(&s.user, s.session_id()).await.expect("revoke");
    }
    assert_eq!(
        user_layout(&store, "u"),
        (
            Some(BucketsHead {
                open: 2,
                sessions: 4
            }),
            2
        )
    );
    assert_eq!(
        listed(&store, "u").await,
        [[7; 12], [3; 12], [2; 12], [1; 12]]
    );
    // A new session goes to the open bucket while it has room.
    let late = session(8, "u", 20_000, 99_000);
    store.create(&late).await.expect("create");
    assert_eq!(
        pointer(&store, &late),
        encode_bucket_ref(&bucket_key(&prefix, 2))
    );

    // With no sessions left the user leaves nothing behind; other users keep theirs.
    assert_eq!(store.revoke_user("u").await.expect("revoke_user"), 5);
    assert_eq!(store.by_user.scan_prefix(&prefix).count(), 0);
    assert_eq!(listed(&store, "v").await, [[20; 12]]);
    drop(store);
    let reopened = open(&dir);
    assert_eq!(
        reopened
            .get(&other.user, other.session_id())
            .await
            .expect("get"),
        Some(other)
    );
    assert!(listed(&reopened, "u").await.is_empty());
}

#[tokio::test]
async fn a_rotated_session_stays_in_its_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let sessions: Vec<Session> = (1..=4)
        .map(|n| session(n, "u", i64::from(n), 9_000))
        .collect();
    for s in &sessions {
        store.create(s).await.expect("create");
    }
    let before = pointer(&store, &sessions[1]);
    let rotated = store
        .rotate(
            &sessions[1].user,
            sessions[1].session_id(),
            rotation(token_hash("a2"), token_hash("r2"), 60_000, 5),
        )
        .await
        .expect("rotate")
        .expect("exists");
    // Bucket 0 was full; the session went back into it, not to the open bucket 1.
    assert_eq!(pointer(&store, &sessions[1]), before);
    assert_eq!(before, encode_bucket_ref(&bucket_key(&user_prefix("u"), 0)));
    assert_eq!(
        store
            .get(&rotated.user, rotated.session_id())
            .await
            .expect("get"),
        Some(rotated.clone())
    );
    let listing = store.list_user("u").await.expect("list");
    assert_eq!(
        listing,
        [
            sessions[0].clone(),
            rotated,
            sessions[2].clone(),
            sessions[3].clone()
        ]
    );
    assert_eq!(user_layout(&store, "u").0.map(|h| h.sessions), Some(4));
}

#[tokio::test]
async fn importing_the_same_sessions_again_keeps_each_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let sessions: Vec<Session> = (1..=5)
        .map(|n| session(n, "u", i64::from(n), 9_000))
        .collect();
    assert_eq!(store.import(sessions.clone()).expect("import"), 5);
    assert_eq!(store.import(sessions.clone()).expect("import"), 5);
    assert_eq!(store.list_user("u").await.expect("list"), sessions);
    // Again with other tokens: the same ids, so the same sessions, replaced.
    let renewed: Vec<Session> = sessions
        .iter()
        .map(|s| Session {
            access_hash: token_hash(&format!("access again {}", s.id[0])),
            refresh_hash: token_hash(&format!("refresh again {}", s.id[0])),
            ..s.clone()
        })
        .collect();
    assert_eq!(store.import(renewed.clone()).expect("import"), 5);
    assert_eq!(store.list_user("u").await.expect("list"), renewed);
    assert_eq!(store.count(), 5);
    assert_eq!(user_layout(&store, "u").0.map(|h| h.sessions), Some(5));
    access_copy::assert_copy_matches_tree(&store).await;
    access_copy::assert_buckets_match(&store);
}

#[tokio::test]
async fn each_record_is_kept_once_and_sessions_only_points_at_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut kept = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_000, 50_000);
    kept.location = "Zürich, ZH CH".into();
    store.create(&kept).await.expect("create");
    let bucket = bucket_key(&user_prefix(&kept.user), 0);
    let pointer = pointer(&store, &kept);
    let record = store.by_user.get(&bucket).expect("read").expect("present");
    // The pointer is the bucket's key and a format byte: far smaller than any record.
    assert_eq!(pointer, encode_bucket_ref(&bucket));
    assert!(
        record.len() > 2 * pointer.len(),
        "{} vs {}",
        record.len(),
        pointer.len()
    );
    assert_eq!(
        store.get(&kept.user, kept.session_id()).await.expect("get"),
        Some(kept.clone())
    );
    drop(store);
    let reopened = open(&dir);
    assert_eq!(
        reopened
            .get(&kept.user, kept.session_id())
            .await
            .expect("get"),
        Some(kept.clone())
    );
    assert_eq!(
        reopened
            .find_refresh(&kept.user, &kept.refresh_hash)
            .await
            .expect("find"),
        Some(kept)
    );
}

#[tokio::test]
async fn a_large_users_listing_is_read_in_parts_and_misses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    // A realistic creation time: keys of the previous version's layout then sort after
    // every bucket number in use, so only a last part that runs to the user's end finds them.
    let t0 = 1_700_000_000_000;
    let mut expected = Vec::new();
    for n in 1..=30 {
        let s = session(n, "u", t0 + i64::from(n) * 1_000, i64::MAX);
        store.create(&s).await.expect("create");
        expected.push(s);
    }
    // Neighbours on both sides of the user's keys, whose sessions must not be listed.
    for (n, user) in [(101, "t"), (102, "v"), (103, "uu")] {
        store
            .create(&session(n, user, t0, i64::MAX))
            .await
            .expect("create");
    }
    // Gaps: two emptied buckets and a part of a third.
    for n in [4, 5, 6, 13, 14, 15, 20] {
        store.revoke("u", SessionId([n; 12])).await.expect("revoke");
    }
    expected.retain(|s| ![4, 5, 6, 13, 14, 15, 20].contains(&s.id[0]));
    // Sessions kept as earlier versions did: one created long ago, one at about the same
    // time as the rest.
    for (n, created_at_ms) in [(31, 1_000), (32, t0 + 15_500)] {
        let s = session(n, "u", created_at_ms, i64::MAX);
        store.create(&s).await.expect("create");
        write_as_earlier_version(&store, &s, Earlier::OwnKey);
        expected.push(s);
    }
    let mut json = session(33, "u", t0 + 40_000, i64::MAX);
    json.access_hash = token_hash("a33");
    store.create(&json).await.expect("create");
    write_as_earlier_version(&store, &json, Earlier::Json);
    expected.push(json);
    expected.sort_by_key(|s| s.created_at_ms);

    let (head, _) = user_layout(&store, "u");
    let buckets = u64::from(head.expect("a head").open) + 1;
    assert!(
        buckets > 2 * LIST_PART_BUCKETS,
        "the listing must be read in several parts ({buckets} buckets)"
    );
    assert_eq!(store.list_user("u").await.expect("list"), expected);
    assert_eq!(listed(&store, "t").await, [[101; 12]]);
    assert_eq!(listed(&store, "v").await, [[102; 12]]);
    assert_eq!(listed(&store, "uu").await, [[103; 12]]);
}
