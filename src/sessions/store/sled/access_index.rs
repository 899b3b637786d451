//! The in-memory copy of the `by_access` tree, which the per-request check reads.
//!
//! A lookup in sled's tree takes about 1.7 µs at a million sessions, and far longer when the
//! page it needs is no longer cached (tens of µs, seconds at ten million sessions just after
//! a start). The check runs on every request, so it reads this copy instead: a hash map in
//! memory, filled from `by_access` when the store opens and changed by every transaction
//! that changes `by_access`, right after sled commits it.
//!
//! sled stays the record: the copy is rebuilt from it at every start. The store runs its
//! transactions one at a time and applies each one's changes here before the next begins,
//! so the copy goes through the same states as the tree, in the same order, and a revocation
//! is visible to the check before the call that made it returns.
//!
//! The copy is keyed by the first 16 bytes (128 bits) of the token's SHA-512: two stored
//! tokens sharing them is as unlikely as a collision of a 128-bit hash, and a token that is
//! not stored cannot be made to match one (that would be a second preimage).
//!
//! By its entries' sizes (a 16-byte key, the 12-byte id, the expiry and the user id, inline
//! up to 24 bytes: 64 bytes, in tables sized in powers of two and at most 7/8 full) the copy
//! takes about 75 to 150 bytes a session; benches/README.md has the RSS it adds, as measured.

use std::ops::{Bound, Range};

use compact_str::CompactString;
use dashmap::DashMap;
use foldhash::quality::RandomState;

use super::layout::{corrupt, decode_grant};
use crate::auth::TokenHash;
use crate::sessions::SessionId;
use crate::sessions::store::{AccessGrant, StoreError};

/// How many leading bytes of a token's SHA-512 key the copy.
const KEY_BYTES: usize = 16;

/// Independently locked parts of the map: a writer locks one of them, and growing one
/// moves only its share of the entries (a single table of millions of entries would stall
/// every check while it grows).
const SHARDS: usize = 256;

/// Threads reading `by_access` at start-up, per core: more than one, so that one's
/// wait for the disk overlaps another's decoding.
const LOADERS_PER_CORE: usize = 2;

type Key = [u8; KEY_BYTES];

/// The first bytes of the keys that part `part` of `parts` reads when loading: `0..256`
/// split into contiguous ranges.
fn first_bytes(part: usize, parts: usize) -> Range<u16> {
    let bound = |part: usize| u16::try_from(part * 256 / parts).expect("at most 256");
    bound(part)..bound(part + 1)
}

fn key(hash: &[u8]) -> Key {
    let mut key = [0u8; KEY_BYTES];
    key.copy_from_slice(&hash[..KEY_BYTES]);
    key
}

/// What the copy keeps of a `by_access` entry (an [`AccessGrant`], more compactly).
#[derive(Debug)]
struct Entry {
    session_id: [u8; 12],
    expire_at_ms: i64,
    /// Inline up to 24 bytes (the uploader's user ids are 24 hex digits), so that ten
    /// million entries are not also ten million small heap blocks.
    user: CompactString,
}

/// One change a transaction made to `by_access`, to apply to the copy once it commits.
#[derive(Debug)]
pub(super) enum AccessChange {
    /// The token hash now belongs to this grant.
    Put(TokenHash, AccessGrant),
    /// The token hash belongs to no session any more.
    Remove(TokenHash),
}

/// The copy of `by_access`.
pub(super) struct AccessIndex {
    map: DashMap<Key, Entry, RandomState>,
}

impl AccessIndex {
    /// Reads every entry of `by_access`, in parallel: the keys are hashes, so splitting
    /// them by their first byte gives parts of equal size. On two cores, four threads open a
    /// store of 3M sessions in two thirds of the time one takes (benches/README.md).
    pub(super) fn load(tree: &sled::Tree) -> Result<AccessIndex, StoreError> {
        let index = AccessIndex {
            map: DashMap::with_hasher_and_shard_amount(RandomState::default(), SHARDS),
        };
        let readers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_mul(LOADERS_PER_CORE)
            .clamp(1, 256);
        std::thread::scope(|scope| {
            let parts: Vec<_> = (0..readers)
                .map(|part| {
                    let index = &index;
                    scope.spawn(move || index.load_part(tree, first_bytes(part, readers)))
                })
                .collect();
            parts.into_iter().try_for_each(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })?;
        Ok(index)
    }

    /// Reads the entries of `by_access` whose first byte is in `first`.
    fn load_part(&self, tree: &sled::Tree, first: Range<u16>) -> Result<(), StoreError> {
        // The first part from the tree's start and the last to its end, so that no key
        // (not even a damaged, short one) falls outside every part.
        let byte = |byte: u16| [u8::try_from(byte).expect("a first byte")];
        let start = match first.start {
            0 => Bound::Unbounded,
            start => Bound::Included(byte(start)),
        };
        let end = match first.end {
            256 => Bound::Unbounded,
            end => Bound::Excluded(byte(end)),
        };
        for entry in tree.range((start, end)) {
            let (hash, value) = entry?;
            if hash.len() != std::mem::size_of::<TokenHash>() {
                return Err(corrupt("access index key of the wrong length"));
            }
            self.put(&hash, decode_grant(&value)?);
        }
        Ok(())
    }

    /// The grant of the session holding this token hash.
    pub(super) fn get(&self, hash: &TokenHash) -> Option<AccessGrant> {
        self.map.get(&key(hash)).map(|entry| AccessGrant {
            session_id: SessionId(entry.session_id),
            user: entry.user.clone(),
            expire_at_ms: entry.expire_at_ms,
        })
    }

    /// Applies a committed transaction's changes, in the order it made them.
    pub(super) fn apply(&self, changes: Vec<AccessChange>) {
        for change in changes {
            match change {
                AccessChange::Put(hash, grant) => self.put(&hash, grant),
                AccessChange::Remove(hash) => {
                    self.map.remove(&key(&hash));
                }
            }
        }
    }

    /// How many token hashes it holds: one per stored session.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    fn put(&self, hash: &[u8], grant: AccessGrant) {
        let entry = Entry {
            session_id: grant.session_id.0,
            expire_at_ms: grant.expire_at_ms,
            user: grant.user,
        };
        self.map.insert(key(hash), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_takes_64_bytes_with_its_key() {
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 64);
    }

    #[test]
    fn user_ids_of_any_length_come_back_whole() {
        let index = AccessIndex {
            map: DashMap::with_hasher_and_shard_amount(RandomState::default(), SHARDS),
        };
        let object_id = "5fc1d2e3a4b5c6d7e8f90a1b";
        let long = "a user id far longer than the twenty-four bytes kept inline, ünïcode";
        for (n, user) in [object_id, long, ""].into_iter().enumerate() {
            let hash = [u8::try_from(n).expect("small"); 64];
            let grant = AccessGrant {
                session_id: SessionId([7; 12]),
                expire_at_ms: 42,
                user: user.into(),
            };
            index.put(&hash, grant);
            let found = index.get(&hash).expect("present");
            assert_eq!(found.user, user);
            assert_eq!(found.session_id, SessionId([7; 12]));
            assert_eq!(found.expire_at_ms, 42);
        }
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn the_loading_parts_cover_every_first_byte_once() {
        for parts in [1, 2, 3, 4, 7, 16, 255, 256] {
            let mut next = 0;
            for part in 0..parts {
                let range = first_bytes(part, parts);
                assert_eq!(range.start, next, "{parts} parts: no gap, no overlap");
                assert!(range.end > range.start, "{parts} parts: none empty");
                next = range.end;
            }
            assert_eq!(next, 256, "{parts} parts: up to the last byte");
        }
    }

    #[test]
    fn loading_reads_every_entry_whatever_its_first_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).open().expect("opens");
        let tree = db.open_tree("by_access").expect("tree");
        for byte in 0..=255u8 {
            let mut value = vec![byte; 12];
            value.extend_from_slice(&i64::from(byte).to_be_bytes());
            value.extend_from_slice(format!("user {byte}").as_bytes());
            tree.insert([byte; 64], value).expect("insert");
        }
        let index = AccessIndex::load(&tree).expect("loads");
        assert_eq!(index.len(), 256);
        for byte in 0..=255u8 {
            let grant = index.get(&[byte; 64]).expect("loaded");
            assert_eq!(grant.session_id, SessionId([byte; 12]));
            assert_eq!(grant.expire_at_ms, i64::from(byte));
            assert_eq!(grant.user, format!("user {byte}"));
        }
        // A damaged key, however short, is found and refused.
        tree.insert([], vec![0; 20]).expect("insert");
        assert!(matches!(
            AccessIndex::load(&tree),
            Err(StoreError::Corrupt(_))
        ));
    }
}
