//! Reading the sled store out whole, and writing entries into it ([`Dump`]): the sessions in
//! id order, then the rotated-away tokens in hash order. A cursor is the phase (0 sessions,
//! 1 rotated tokens) and the last key read.

use async_trait::async_trait;

use super::SledStore;
use super::layout::*;
use crate::sessions::SessionId;
use crate::sessions::store::StoreError;
use crate::sessions::store::dump::{Dump, Entry, Page, RotatedEntry};

const SESSIONS: u8 = 0;
const ROTATED: u8 = 1;

#[async_trait]
impl Dump for SledStore {
    async fn dump(&self, cursor: &[u8], limit: usize) -> Result<Page, StoreError> {
        let cursor = cursor.to_vec();
        self.blocking(move |store| store.dump_page(&cursor, limit.max(1)))
            .await
    }

    async fn load(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let sessions: Vec<_> = entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Session(session) => Some(session.clone()),
                Entry::Rotated(_) => None,
            })
            .collect();
        let rotated: Vec<RotatedEntry> = entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Rotated(rotated) => Some(rotated.clone()),
                Entry::Session(_) => None,
            })
            .collect();
        self.blocking(move |store| {
            store.import(sessions)?;
            store.transaction(|trees| {
                for token in &rotated {
                    trees.retire(token)?;
                }
                Ok(())
            })?;
            Ok(store.db.flush()?)
        })
        .await?;
        Ok(())
    }
}

impl SledStore {
    fn dump_page(&self, cursor: &[u8], limit: usize) -> Result<Page, StoreError> {
        let (phase, after) = match cursor.split_first() {
            Some((&phase, after)) => (phase, after.to_vec()),
            None => (SESSIONS, Vec::new()),
        };
        let mut page = Page::default();
        let tree = if phase == SESSIONS {
            &self.sessions
        } else {
            &self.rotated
        };
        // Keys after the cursor's (the cursor's own was in the previous page).
        let mut keys = tree.range(after.clone()..).keys().skip_while(|key| {
            key.as_ref()
                .is_ok_and(|key| !after.is_empty() && key.as_ref() == after.as_slice())
        });
        let mut last = None;
        for key in keys.by_ref().take(limit) {
            let key = key?;
            if phase == SESSIONS {
                let id = SessionId(
                    key.as_ref()
                        .try_into()
                        .map_err(|_| corrupt("a session id"))?,
                );
                if let Some(session) = self.read(id)? {
                    page.entries.push(Entry::Session(session));
                }
            } else if let Some(value) = self.rotated.get(&key)? {
                let rotated = decode_rotated(&value)?;
                let expire_at_ms = i64::from_be_bytes(
                    value[20..28]
                        .try_into()
                        .expect("a rotated entry is 28 bytes"),
                );
                match self.read(rotated.session_id)? {
                    Some(session) => page.entries.push(Entry::Rotated(RotatedEntry {
                        user: session.user,
                        hash: key
                            .as_ref()
                            .try_into()
                            .map_err(|_| corrupt("a token hash"))?,
                        session_id: rotated.session_id,
                        rotated_at_ms: rotated.rotated_at_ms,
                        expire_at_ms,
                    })),
                    None => page.orphans += 1,
                }
            }
            last = Some(key);
        }
        page.next = match last {
            Some(key) => Some([&[phase][..], &key].concat()),
            // This tree is done: the rotated tokens come next, then nothing.
            None if phase == SESSIONS => Some(vec![ROTATED]),
            None => None,
        };
        Ok(page)
    }
}
