//! Reading the Redis store out whole, and writing entries into it ([`Dump`]): user by user,
//! in the order of the sweep's index of users; a cursor is the rank of the next user.

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::AsyncCommands;

use super::layout::*;
use super::scripts::{CREATE_SCRIPT, REMEMBER_SCRIPT};
use super::{KEY_GRACE_MS, RedisStore};
use crate::sessions::store::dump::{Dump, Entry, Page};
use crate::sessions::store::{SessionStore, StoreError};

/// Writes in flight at once while loading.
const LOAD_PARALLEL: usize = 64;

#[async_trait]
impl Dump for RedisStore {
    async fn dump(&self, cursor: &[u8], limit: usize) -> Result<Page, StoreError> {
        let rank = match cursor {
            [] => 0,
            bytes => u64::from_be_bytes(bytes.try_into().map_err(|_| corrupt("a dump cursor"))?),
        };
        let limit = limit.max(1) as u64;
        let mut link = self.link.clone();
        let users: Vec<String> = self
            .call(link.zrange(
                &self.global.users,
                rank as isize,
                (rank + limit - 1) as isize,
            ))
            .await?;
        let mut page = Page::default();
        let read = try_join_all(users.iter().map(|user| self.entries_of(user))).await?;
        page.entries = read.into_iter().flatten().collect();
        page.next = (users.len() as u64 == limit).then(|| (rank + limit).to_be_bytes().to_vec());
        Ok(page)
    }

    async fn load(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let grace = KEY_GRACE_MS.to_string();
        for part in entries.chunks(LOAD_PARALLEL) {
            try_join_all(part.iter().filter_map(|entry| match entry {
                Entry::Session(session) => Some(async {
                    let record = encode_record(session)?;
                    let expiry = session.expire_at_ms.to_string();
                    let now = session.updated_at_ms.to_string();
                    let args: [&[u8]; 5] = [
                        &session.id,
                        &record,
                        expiry.as_bytes(),
                        now.as_bytes(),
                        grace.as_bytes(),
                    ];
                    self.change(&CREATE_SCRIPT, &session.user, &args).await?;
                    Ok::<_, StoreError>(())
                }),
                Entry::Rotated(_) => None,
            }))
            .await?;
        }
        for part in entries.chunks(LOAD_PARALLEL) {
            try_join_all(part.iter().filter_map(|entry| match entry {
                Entry::Rotated(token) => Some(async {
                    let (field, value) = (rotated_field(&token.hash), encode_rotated(token));
                    let expiry = token.expire_at_ms.to_string();
                    let now = token.rotated_at_ms.to_string();
                    let args: [&[u8]; 5] = [
                        &field,
                        &value,
                        expiry.as_bytes(),
                        now.as_bytes(),
                        grace.as_bytes(),
                    ];
                    self.change(&REMEMBER_SCRIPT, &token.user, &args).await?;
                    Ok::<_, StoreError>(())
                }),
                Entry::Session(_) => None,
            }))
            .await?;
        }
        Ok(())
    }
}

impl RedisStore {
    /// Everything `user` holds: the sessions, then the rotated-away tokens.
    async fn entries_of(&self, user: &str) -> Result<Vec<Entry>, StoreError> {
        let mut entries: Vec<Entry> = self
            .list_user(user)
            .await?
            .into_iter()
            .map(Entry::Session)
            .collect();
        let mut link = self.link.clone();
        let key = user_key(&self.prefix, user);
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self.call(link.hgetall(key)).await?;
        for (field, value) in fields {
            if field.first() == Some(&b'x') {
                entries.push(Entry::Rotated(decode_rotated_entry(user, &value)?));
            }
        }
        Ok(entries)
    }
}
