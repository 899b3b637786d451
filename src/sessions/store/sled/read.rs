//! Reads: a session by refresh token or id, a rotated-away refresh token, and a user's
//! listing. They read outside any transaction, on tokio's blocking pool.

use futures_util::future::try_join_all;

use super::SledStore;
use super::layout::*;
use crate::auth::TokenHash;
use crate::sessions::store::{RotatedToken, StoreError};
use crate::sessions::{Session, SessionId};

/// A listing reads a user's buckets in parts of about this many, side by side, once there
/// are more than this: about one sled leaf's worth (sled 0.34 splits a leaf above 16
/// entries). Small in unit tests, so that their listings are read in parts.
pub(super) const LIST_PART_BUCKETS: u64 = if cfg!(test) { 2 } else { 16 };

/// Most parts one listing is read in.
const LIST_PARTS_MAX: u64 = 8;

/// Removing many sessions at once first reads what its transaction will need in parts of at
/// least this many sessions, side by side (`SledStore::warm_for_removal`). Small in unit
/// tests, so that their removals go through it.
const WARM_PART_SESSIONS: usize = if cfg!(test) { 1 } else { 32 };

/// Most parts the entries of a removal are read in.
const WARM_PARTS_MAX: usize = 8;

impl SledStore {
    /// The session holding this refresh-token hash
    /// ([`SessionStore::find_refresh`](crate::sessions::SessionStore::find_refresh)).
    pub(super) async fn by_refresh_hash(
        &self,
        hash: TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        self.blocking(move |store| match store.by_refresh.get(hash)? {
            Some(id) => store.read(SessionId(grant_id(&id))),
            None => Ok(None),
        })
        .await
    }

    /// What `rotated` remembers of a rotated-away refresh token
    /// ([`SessionStore::find_rotated`](crate::sessions::SessionStore::find_rotated)).
    pub(super) async fn rotated_away(
        &self,
        hash: TokenHash,
    ) -> Result<Option<RotatedToken>, StoreError> {
        self.blocking(move |store| match store.rotated.get(hash)? {
            Some(value) => decode_rotated(&value).map(Some),
            None => Ok(None),
        })
        .await
    }

    /// A user's sessions, oldest first
    /// ([`SessionStore::list_user`](crate::sessions::SessionStore::list_user)).
    pub(super) async fn list(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let prefix = user_prefix(user);
        // Every bucket is numbered at most `open`: new ones are opened in turn, and a rotated
        // session goes back to the bucket it was in. The count only balances the parts: the
        // last runs to the end of the user's keys, so nothing beyond it is missed. A user
        // with few buckets is listed at once, by the task that read its head.
        let (buckets, listed) = {
            let prefix = prefix.clone();
            self.blocking(move |store| {
                let buckets = match store.by_user.get(&prefix)? {
                    Some(head) => u64::from(BucketsHead::decode(&head)?.open) + 1,
                    None => 0,
                };
                let listed = (buckets <= LIST_PART_BUCKETS)
                    .then(|| store.list_part(prefix, None, None))
                    .transpose()?;
                Ok((buckets, listed))
            })
            .await?
        };
        let mut sessions = match listed {
            Some(sessions) => sessions,
            None => {
                // Out of the page cache, each of a large user's leaves is a read from disk,
                // and a disk answers several reads at once about as fast as one: so the parts
                // are read side by side.
                // Parts meet at bucket numbers; the first starts at the user's first key and
                // the last runs to its end (`None`).
                let parts = buckets.div_ceil(LIST_PART_BUCKETS).min(LIST_PARTS_MAX);
                let per_part = buckets.div_ceil(parts);
                let split = |part: u64| {
                    (0 < part && part < parts)
                        .then(|| u32::try_from(part * per_part).ok())
                        .flatten()
                };
                let readers = (0..parts).map(|part| {
                    let (prefix, from, to) = (prefix.clone(), split(part), split(part + 1));
                    self.blocking(move |store| store.list_part(prefix, from, to))
                });
                try_join_all(readers).await?.concat()
            }
        };
        // Buckets keep no order. A session moving into a bucket while this read ran could
        // be seen in both places; it is listed once.
        sessions.sort_unstable_by_key(|s| (s.created_at_ms, s.id));
        sessions.dedup_by_key(|s| s.id);
        Ok(sessions)
    }

    /// One session by id ([`SessionStore::get`]).
    pub(super) fn read(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        // Read outside a transaction, so a writer may move or remove the record between
        // reading where it is and reading it. A record that has gone from where `sessions`
        // said is looked for again, a few times: a session that has been removed is gone
        // from `sessions` too.
        for _ in 0..3 {
            let Some(record) = self.sessions.get(id.0)? else {
                return Ok(None);
            };
            let found = match decode_record(&record)? {
                SessionsValue::Session(session) => Some(*session),
                SessionsValue::Own(key) => self
                    .by_user
                    .get(key)?
                    .map(|copy| decode_indexed(&copy))
                    .transpose()?,
                SessionsValue::InBucket(key) => match self.by_user.get(key)? {
                    Some(bucket) => find_in_bucket(&bucket, &id.0)?,
                    None => None,
                },
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The sessions in a part of a user's `by_user` entries
    /// ([`SledStore::user_entries_between`]), in no particular order.
    fn list_part(
        &self,
        prefix: Vec<u8>,
        from: Option<u32>,
        to: Option<u32>,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        for entry in self.user_entries_between(prefix, from, to) {
            match entry? {
                ByUserEntry::Bucket(bucket) => {
                    for entry in entries(&bucket)? {
                        sessions.push(decode_entry(entry?.1)?);
                    }
                }
                ByUserEntry::Own(key, copy) => {
                    if let Some(session) = decode_copy(&copy)? {
                        sessions.push(session);
                    } else if let Some(record) = self.sessions.get(key_id(&key))? {
                        // Indexed by an earlier version, with its JSON record in `sessions`.
                        match decode_record(&record)? {
                            SessionsValue::Session(session) => sessions.push(*session),
                            SessionsValue::Own(_) | SessionsValue::InBucket(_) => {
                                return Err(unreadable_copy());
                            }
                        }
                    }
                }
            }
        }
        Ok(sessions)
    }

    /// Those of a user's `by_user` entries (its head left out) whose keys lie from bucket
    /// number `from` up to, not including, bucket number `to`. `None` for `from` is the start
    /// of the user's keys, for `to` their end, so parts split at bucket numbers cover every
    /// key once, including keys of the previous version's layout.
    fn user_entries_between(
        &self,
        prefix: Vec<u8>,
        from: Option<u32>,
        to: Option<u32>,
    ) -> impl Iterator<Item = Result<ByUserEntry, StoreError>> {
        let prefix_len = prefix.len();
        let start = from.map_or_else(|| prefix.clone(), |n| bucket_key(&prefix, n));
        let end = match to {
            Some(n) => Some(bucket_key(&prefix, n)),
            None => prefix_end(&prefix),
        };
        let range = match end {
            Some(end) => self.by_user.range(start..end),
            None => self.by_user.range(start..),
        };
        range.filter_map(move |entry| match entry {
            Err(e) => Some(Err(e.into())),
            Ok((key, value)) => match key.len() - prefix_len {
                0 => None,
                BUCKET_NUMBER_LEN => Some(Ok(ByUserEntry::Bucket(value))),
                _ => Some(Ok(ByUserEntry::Own(key, value))),
            },
        })
    }

    /// Reads into sled's cache, side by side, what removing the sessions `ids` will read (each
    /// session's record and its entries in `by_access`, `by_refresh` and `by_expiry`), so that
    /// the transaction finds it there. Out of the page cache those lie in leaves of their own,
    /// and the transaction would read them from disk one after another while every other
    /// write waits for the writers' lock; read ahead side by side, the transaction holds the
    /// lock a quarter to a third as long (benches/README.md). A few sessions are left to the
    /// transaction.
    pub(super) async fn warm_for_removal(&self, ids: &[[u8; 12]]) -> Result<(), StoreError> {
        let parts = ids.len() / WARM_PART_SESSIONS;
        if parts < 2 {
            return Ok(());
        }
        let per_part = ids.len().div_ceil(parts.min(WARM_PARTS_MAX));
        try_join_all(ids.chunks(per_part).map(|part| {
            let part = part.to_vec();
            self.blocking(move |store| {
                for id in part {
                    if let Some(session) = store.read(SessionId(id))? {
                        store.by_access.get(session.access_hash)?;
                        store.by_refresh.get(session.refresh_hash)?;
                        store.by_expiry.get(expiry_key(&session))?;
                    }
                }
                Ok(())
            })
        }))
        .await?;
        Ok(())
    }

    /// The recorded last uses of a user's sessions ([`SessionStore::last_active`]).
    ///
    /// [`SessionStore::last_active`]: crate::sessions::SessionStore::last_active
    pub(super) fn recorded_uses(
        &self,
        user: &str,
        ids: &[SessionId],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        ids.iter()
            .map(|id| {
                let value = self.last_active.get(last_active_key(user, &id.0))?;
                Ok(value.map(|v| decode_ms(&v)))
            })
            .collect()
    }
}
