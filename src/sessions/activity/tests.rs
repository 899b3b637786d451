//! The batching `lastActiveAt` relies on: a use noted once a minute, written once, forgotten
//! only when the store has it, and written by the background task within the minute (what a
//! crash can lose).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::sessions::store::contract::{Fixture, session};
use crate::sessions::store::sled::tests::{SledFixture, open};
use crate::sessions::{Clock, ManualClock};

const ID: SessionId = SessionId([1; 12]);
const KEEP: Duration = Duration::from_secs(600);

async fn stored_use(store: &dyn SessionStore) -> Option<i64> {
    store.last_active("u", &[ID]).await.expect("read")[0]
}

#[tokio::test]
async fn a_use_is_written_once_and_again_only_for_a_later_minute() {
    let fixture = SledFixture::start().await;
    let store = fixture.store();
    store
        .create(&session(1, "u", 1_000, 10_000_000))
        .await
        .expect("create");
    let activity = Activity::default();

    // Two uses within a minute: the first stands.
    activity.note("u", ID, 10_000);
    activity.note("u", ID, 10_000 + RESOLUTION_MS - 1);
    assert_eq!(activity.last_noted(ID), Some(10_000));
    assert_eq!(
        stored_use(store).await,
        None,
        "nothing written before a flush"
    );

    assert_eq!(activity.flush(store, 20_000, KEEP).await.expect("flush"), 1);
    assert_eq!(stored_use(store).await, Some(10_000));
    // Nothing new: nothing written.
    assert_eq!(activity.flush(store, 30_000, KEEP).await.expect("flush"), 0);

    // A use a minute on is noted and written.
    let later = 10_000 + RESOLUTION_MS;
    activity.note("u", ID, later);
    assert_eq!(activity.last_noted(ID), Some(later));
    assert_eq!(activity.flush(store, later, KEEP).await.expect("flush"), 1);
    assert_eq!(stored_use(store).await, Some(later));

    // Written and older than `keep`: forgotten in memory, kept in the store.
    let keep_ms = KEEP.as_millis() as i64;
    assert_eq!(
        activity
            .flush(store, later + keep_ms, KEEP)
            .await
            .expect("flush"),
        0
    );
    assert_eq!(activity.last_noted(ID), None);
    assert_eq!(stored_use(store).await, Some(later));
}

#[tokio::test(start_paused = true)]
async fn the_background_task_writes_each_use_within_the_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn SessionStore> = Arc::new(open(&dir));
    store
        .create(&session(1, "u", 1_000, i64::MAX / 2))
        .await
        .expect("create");
    let clock = Arc::new(ManualClock::new());
    let activity = Arc::new(Activity::default());
    let task = tokio::spawn(activity.clone().run(store.clone(), clock.clone()));

    let used_at = clock.now_ms();
    activity.note("u", ID, used_at);
    let noted = tokio::time::Instant::now();
    // Bounded: two minutes of the runtime's (paused) time, a second at a time.
    while stored_use(store.as_ref()).await.is_none() {
        assert!(
            noted.elapsed() <= Duration::from_millis(2 * RESOLUTION_MS as u64),
            "not written within two minutes"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(stored_use(store.as_ref()).await, Some(used_at));
    assert!(
        noted.elapsed() <= Duration::from_millis(RESOLUTION_MS as u64 + 1_000),
        "written {:?} after the use: a crash would lose more than the minute",
        noted.elapsed()
    );
    task.abort();
}
