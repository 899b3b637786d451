//! The expiry sweep: removes expired sessions, and forgets rotated-away refresh tokens once
//! they would have expired. Expired sessions are refused at once whatever the sweep does
//! (the check compares each expiry with the clock); the sweep only frees space.

use super::SledStore;
use super::layout::*;
use crate::sessions::store::StoreError;

/// Most sessions removed in one sweep transaction.
const SWEEP_BATCH: usize = 1000;

impl SledStore {
    /// Removes sessions whose expiry is at or before `now_ms`, then rotated-away tokens past
    /// theirs ([`SessionStore::sweep_expired`](crate::sessions::SessionStore::sweep_expired)).
    pub(super) async fn sweep(&self, now_ms: i64) -> Result<usize, StoreError> {
        let ids = self
            .blocking(move |store| {
                Ok(expired_keys(&store.by_expiry, now_ms)
                    .keys()
                    .map(|k| k.map(|k| key_id(&k)))
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let mut removed = 0;
        // In bounded batches, so a large backlog never makes one huge transaction.
        for batch in ids.chunks(SWEEP_BATCH).map(<[_]>::to_vec) {
            self.warm_for_removal(&batch).await?;
            removed += self
                .write(move |trees| {
                    let mut removed = 0;
                    for id in &batch {
                        // Re-checked inside the transaction: a refresh may have extended it.
                        if trees.get(id)?.is_some_and(|s| s.expire_at_ms <= now_ms) {
                            trees.remove(id)?;
                            removed += 1;
                        }
                    }
                    Ok(removed)
                })
                .await?;
        }
        self.sweep_rotated(now_ms).await?;
        Ok(removed)
    }

    /// Forgets rotated-away refresh tokens that have expired .
    async fn sweep_rotated(&self, now_ms: i64) -> Result<(), StoreError> {
        let keys = self
            .blocking(move |store| {
                Ok(expired_keys(&store.rotated_by_expiry, now_ms)
                    .keys()
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        for batch in keys.chunks(SWEEP_BATCH).map(<[_]>::to_vec) {
            self.write(move |trees| {
                for key in &batch {
                    trees.rotated.remove(&key[8..])?;
                    trees.rotated_by_expiry.remove(key.as_ref())?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

/// The entries of an expiry-keyed tree whose expiry is at or before `now_ms`.
fn expired_keys(tree: &sled::Tree, now_ms: i64) -> sled::Iter {
    match now_ms.max(0).checked_add(1) {
        Some(end) => tree.range(..end.to_be_bytes().as_slice()),
        None => tree.iter(),
    }
}
