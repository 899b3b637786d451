//! `sessiongate migrate --from <config> --to <config>`: copies a stopped gateway's session
//! store into another (sled into Redis, Redis into sled, or between two of a kind), then reads
//! the copy back and compares it with the original entry by entry.
//!
//! The target must be empty, so that the copy holds exactly what the original does; the
//! original is only read. Rotated-away refresh tokens whose session is gone are left out and
//! counted: they can do nothing any more.

use std::sync::Arc;

use futures_util::future::try_join_all;

use crate::sessions::StoreError;
use crate::sessions::store::dump::{Dump, Entry, holds};

/// Entries read and written at a time.
const PAGE: usize = 1_000;

/// Entries compared at once.
const CHECK_PARALLEL: usize = 64;

/// What a migration copied and checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Sessions.
    pub sessions: u64,
    /// Remembered rotated-away refresh tokens.
    pub rotated: u64,
    /// Rotated-away tokens left out: their session is gone.
    pub orphans: u64,
}

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Reading the original failed.
    #[error("reading the original store: {0}")]
    From(StoreError),
    /// Writing or reading the copy failed.
    #[error("the target store: {0}")]
    To(StoreError),
    /// The target already holds sessions.
    #[error("the target store is not empty ({0}): migrate into an empty store")]
    NotEmpty(String),
    /// The copy read back differs from the original.
    #[error("the copy does not match the original: {0}")]
    Mismatch(String),
}

/// Copies every entry of `from` into the empty `to`, then checks that `to` holds each of
/// them exactly and as many sessions as `from`.
pub async fn migrate(from: Arc<dyn Dump>, to: Arc<dyn Dump>) -> Result<Migrated, MigrateError> {
    if let Some(entry) = first_entry(to.as_ref()).await.map_err(MigrateError::To)? {
        return Err(MigrateError::NotEmpty(describe(&entry)));
    }
    let mut copied = Migrated::default();
    let mut cursor = Vec::new();
    loop {
        let page = from.dump(&cursor, PAGE).await.map_err(MigrateError::From)?;
        to.load(&page.entries).await.map_err(MigrateError::To)?;
        copied.orphans += page.orphans as u64;
        for entry in &page.entries {
            match entry {
                Entry::Session(_) => copied.sessions += 1,
                Entry::Rotated(_) => copied.rotated += 1,
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    check(from.as_ref(), to.as_ref()).await?;
    let (held, expected) = (
        to.count().await.map_err(MigrateError::To)?,
        from.count().await.map_err(MigrateError::From)?,
    );
    if held != expected || held as u64 != copied.sessions {
        return Err(MigrateError::Mismatch(format!(
            "the copy holds {held} sessions, the original {expected} ({} copied)",
            copied.sessions
        )));
    }
    Ok(copied)
}

/// Reads `from` again, page by page, and asks `to` for each entry.
async fn check(from: &dyn Dump, to: &dyn Dump) -> Result<(), MigrateError> {
    let mut cursor = Vec::new();
    loop {
        let page = from.dump(&cursor, PAGE).await.map_err(MigrateError::From)?;
        for part in page.entries.chunks(CHECK_PARALLEL) {
            let held = try_join_all(part.iter().map(|entry| holds(to, entry)))
                .await
                .map_err(MigrateError::To)?;
            if let Some((entry, _)) = part.iter().zip(held).find(|(_, held)| !held) {
                return Err(MigrateError::Mismatch(format!(
                    "{} is not in the copy as it is in the original",
                    describe(entry)
                )));
            }
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(()),
        }
    }
}

/// The first entry a store holds, if any.
async fn first_entry(store: &dyn Dump) -> Result<Option<Entry>, StoreError> {
    let mut cursor = Vec::new();
    loop {
        let page = store.dump(&cursor, 1).await?;
        if let Some(entry) = page.entries.into_iter().next() {
            return Ok(Some(entry));
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(None),
        }
    }
}

/// An entry as an error names it: what it is, its id and its user (never a token).
fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Session(session) => {
            format!("session {} of user {}", session.session_id(), session.user)
        }
        Entry::Rotated(rotated) => format!(
            "a rotated-away token of session {} of user {}",
            rotated.session_id, rotated.user
        ),
    }
}
