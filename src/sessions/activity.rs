//! When each session was last used (`lastActiveAt`), kept in memory and written to the store
//! in batches, so that no request waits for a store write.
//!
//! A use is noted at most once a minute per session (the time is accurate to a minute), and
//! written at most once a minute per session, by [`Activity::flush`] (run every minute, and
//! at a graceful shutdown): a crash loses at most the last minute of uses.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use super::{SessionId, SessionStore, Touch};

/// How stale a noted use may be: uses closer together than this are noted once.
pub const RESOLUTION_MS: i64 = 60_000;

/// The uses of sessions not yet in the store, and the latest noted of each.
#[derive(Default)]
pub struct Activity {
    noted: DashMap<SessionId, Noted, foldhash::quality::RandomState>,
}

struct Noted {
    user: String,
    at_ms: i64,
    /// The use last written to the store (0: none).
    written_ms: i64,
}

impl Activity {
    /// Notes that `user`'s session `id` was used at `now_ms`. Cheap when it was noted less
    /// than a minute ago (a read of the map).
    pub fn note(&self, user: &str, id: SessionId, now_ms: i64) {
        if let Some(noted) = self.noted.get(&id)
            && now_ms - noted.at_ms < RESOLUTION_MS
        {
            return;
        }
        let mut noted = self.noted.entry(id).or_insert_with(|| Noted {
            user: user.to_string(),
            at_ms: now_ms,
            written_ms: 0,
        });
        noted.at_ms = noted.at_ms.max(now_ms);
    }

    /// The latest use noted of a session, written or not.
    pub fn last_noted(&self, id: SessionId) -> Option<i64> {
        self.noted.get(&id).map(|noted| noted.at_ms)
    }

    /// Writes every use noted since the last write to `store`, in one batch; forgets the
    /// sessions whose last use is written and older than `keep` (the store has it).
    pub async fn flush(
        &self,
        store: &dyn SessionStore,
        now_ms: i64,
        keep: Duration,
    ) -> Result<usize, super::StoreError> {
        let due: Vec<Touch> = self
            .noted
            .iter()
            .filter(|entry| entry.at_ms > entry.written_ms)
            .map(|entry| Touch {
                user: entry.user.clone(),
                id: *entry.key(),
                at_ms: entry.at_ms,
            })
            .collect();
        if !due.is_empty() {
            store.touch(&due).await?;
            for touch in &due {
                if let Some(mut noted) = self.noted.get_mut(&touch.id) {
                    noted.written_ms = noted.written_ms.max(touch.at_ms);
                }
            }
        }
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        self.noted
            .retain(|_, noted| noted.at_ms > noted.written_ms || now_ms - noted.at_ms < keep_ms);
        Ok(due.len())
    }

    /// Flushes every minute (by `clock`) until dropped (aborted).
    pub async fn run(self: Arc<Self>, store: Arc<dyn SessionStore>, clock: Arc<dyn super::Clock>) {
        let mut interval = tokio::time::interval(Duration::from_millis(RESOLUTION_MS as u64));
        interval.tick().await;
        loop {
            interval.tick().await;
            let keep = Duration::from_millis(10 * RESOLUTION_MS as u64);
            if let Err(error) = self.flush(store.as_ref(), clock.now_ms(), keep).await {
                tracing::warn!(%error, "writing the sessions' last uses failed; kept for the next try");
            }
        }
    }
}

#[cfg(test)]
mod tests;
