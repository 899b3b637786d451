//! The encoded values: what they give back, and damage found as damage.

use super::*;

#[tokio::test]
async fn a_record_in_no_known_form_is_an_error_not_a_missing_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let kept = session(1, "u", 1_000, 50_000);
    store.create(&kept).await.expect("create");
    let bucket = bucket_key(&user_prefix("u"), 0);
    store.sessions.insert(kept.id, &[9, 9, 9]).expect("damage");
    assert!(matches!(
        store.get(&kept.user, kept.session_id()).await,
        Err(StoreError::Corrupt(_))
    ));
    // The pointer is sound but the bucket it names is cut short.
    store
        .sessions
        .insert(kept.id, encode_bucket_ref(&bucket))
        .expect("repair");
    let whole = store.by_user.get(&bucket).expect("read").expect("present");
    store
        .by_user
        .insert(&bucket, &whole[..whole.len() - 5])
        .expect("damage");
    assert!(matches!(
        store.get(&kept.user, kept.session_id()).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.list_user("u").await,
        Err(StoreError::Corrupt(_))
    ));
    // The bucket is sound but no longer holds the session.
    store
        .by_user
        .insert(&bucket, &[BUCKET_FORMAT])
        .expect("damage");
    assert!(matches!(
        store.revoke(&kept.user, kept.session_id()).await,
        Err(StoreError::Corrupt(_))
    ));
    // A bucket in no known form.
    store.by_user.insert(&bucket, &[7, 7]).expect("damage");
    assert!(matches!(
        store.list_user("u").await,
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn a_bucket_gives_back_its_sessions_exactly() {
    let mut first = session(1, "5fc1d2e3a4b5c6d7e8f90a1b", 1_700_000_000_123, i64::MAX);
    first.location = "Zürich, ZH CH \"quoted\"".into();
    let second = session(2, "5fc1d2e3a4b5c6d7e8f90a1b", 5, 6);
    let mut bucket = vec![BUCKET_FORMAT];
    push_entry(&mut bucket, &first).expect("encodes");
    push_entry(&mut bucket, &second).expect("encodes");
    let decoded: Vec<([u8; 12], Session)> = entries(&bucket)
        .expect("a bucket")
        .map(|e| {
            let (id, record) = e.expect("an entry");
            (id, decode_entry(record).expect("decodes"))
        })
        .collect();
    assert_eq!(
        decoded,
        [(first.id, first.clone()), (second.id, second.clone())]
    );
    assert_eq!(
        find_in_bucket(&bucket, &second.id).expect("reads"),
        Some(second.clone())
    );
    assert_eq!(find_in_bucket(&bucket, &[9; 12]).expect("reads"), None);

    let rest = without_entry(&bucket, &first.id).expect("reads");
    assert_eq!(find_in_bucket(&rest, &first.id).expect("reads"), None);
    assert_eq!(
        find_in_bucket(&rest, &second.id).expect("reads"),
        Some(second)
    );
    assert_eq!(
        without_entry(&rest, &[2; 12]).expect("reads"),
        [BUCKET_FORMAT]
    );
    // Any cut is an error, never a shorter list or a wrong session.
    for cut in 1..bucket.len() {
        let cut = &bucket[..cut];
        let last = entries(cut).expect("a bucket").last();
        let ends_between_entries = cut.len() == 1 || cut.len() == bucket.len() - (rest.len() - 1);
        if !ends_between_entries {
            assert!(matches!(last, Some(Err(_))), "cut at {}", cut.len());
        }
    }
}

#[test]
fn the_compact_copy_gives_back_the_session_exactly() {
    let mut original = session(7, "5fc1d2e3a4b5c6d7e8f90a1b", 1_700_000_000_123, i64::MAX);
    original.location = "Zürich, ZH CH \"quoted\"".into();
    let copy = encode_copy(&original).expect("encodes");
    assert_eq!(copy[0], COPY_FORMAT);
    // Much smaller than the JSON record (the hashes are raw bytes, not hex).
    let json = serde_json::to_vec(&original).expect("json");
    assert!(
        copy.len() * 2 < json.len(),
        "{} vs {}",
        copy.len(),
        json.len()
    );
    assert_eq!(decode_copy(&copy).expect("decodes"), Some(original));
    // A cut copy is an error, not a wrong session.
    assert!(decode_copy(&copy[..copy.len() - 3]).is_err());
}
