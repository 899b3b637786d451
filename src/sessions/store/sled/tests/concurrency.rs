//! Writers racing, and writes waiting off the caller's thread.

use super::*;

/// and the store ends consistent.
#[test]
fn racing_writers_never_hang_the_store() {
    // A hung store blocks the runtime's threads, so the deadline is kept by this thread.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(race_writers());
        let _ = done.send(());
    });
    finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("every write returns within a minute");
}

async fn race_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let sessions: Vec<Session> = (0..8).map(|n| session(n, "u", 0, 9_000)).collect();
    for s in &sessions {
        store.create(s).await.expect("create");
    }
    let mut writers = tokio::task::JoinSet::new();
    for worker in 0u8..8 {
        let store = store.clone();
        let ids: Vec<SessionId> = sessions.iter().map(Session::session_id).collect();
        writers.spawn(async move {
            for round in 0u8..40 {
                let id = ids[usize::from(worker.wrapping_add(round)) % ids.len()];
                let access = token_hash(&format!("access {worker} {round}"));
                let refresh = token_hash(&format!("refresh {worker} {round}"));
                if (worker + round) % 5 == 0 {
                    store.revoke("u", id).await.expect("revoke");
                } else {
                    store
                        .rotate("u", id, rotation(access, refresh, 9_000, 0))
                        .await
                        .expect("rotate");
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer finished");
    }
    // Every session that is left holds its latest tokens, and nothing else is indexed.
    let left = store.list_user("u").await.expect("list");
    assert_eq!(store.by_access.len(), left.len());
    for s in &left {
        assert_eq!(
            store
                .find_access(&s.user, &s.access_hash)
                .await
                .expect("find"),
            Some(grant(s))
        );
    }
    // The copy of the access index ends equal to the tree.
    access_copy::assert_copy_matches_tree(&store).await;
}

/// A write waits for the store on tokio's blocking pool, not on the thread that called it,
/// which meanwhile serves its other tasks (in the gateway, other connections). The writers'
/// lock, held here by the test, stands in for a slow disk. With the transaction run on the
/// caller's thread, the runtime's only thread waited on the lock and the other task never ran.
#[test]
fn a_write_waiting_for_the_store_leaves_the_callers_thread_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let s = session(1, "u", 0, 9_000);
    let held = store.writer.lock().expect("the writers' lock");
    let (ran, other_task_ran) = std::sync::mpsc::channel();
    let runtime_thread = {
        let (store, s) = (store.clone(), s.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let write = tokio::spawn(async move { store.create(&s).await });
                // Long enough for the write to have started and reached the lock.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let _ = ran.send(());
                write.await.expect("the write's task")
            })
        })
    };
    let freed = other_task_ran.recv_timeout(std::time::Duration::from_secs(10));
    drop(held);
    let created = runtime_thread.join().expect("the runtime's thread");
    assert!(
        freed.is_ok(),
        "another task ran while the write waited for the store"
    );
    assert_eq!(created.expect("create"), Vec::<SessionId>::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert_eq!(
        rt.block_on(store.get(&s.user, s.session_id()))
            .expect("get"),
        Some(s)
    );
}
