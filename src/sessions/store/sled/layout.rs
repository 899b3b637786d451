//! How the store lies in sled: one tree per concern, so that no request scans the table.
//!
//! | tree         | key                                   | value                        |
//! |--------------|---------------------------------------|------------------------------|
//! | `sessions`   | session id (12 bytes)                 | where its record is: the `by_user` key of its bucket (`encode_bucket_ref`) |
//! | `by_access`  | SHA-512 of the access token           | id, expiry, user ([`AccessGrant`]) |
//! | `by_refresh` | SHA-512 of the refresh token          | session id                   |
//! | `by_user`    | user length (u16), user, bucket number (u32) | a bucket: up to `BUCKET_CAPACITY` of the user's sessions, compact ([`BucketEntries`]) |
//! | `by_user`    | user length (u16), user               | the user's [`BucketsHead`]: the bucket new sessions go to, and how many the buckets hold |
//! | `by_expiry`  | expiry (ms, big-endian), id           | empty: what the sweeper removes |
//! | `rotated`    | SHA-512 of a rotated-away refresh token | id, rotation time, expiry ([`RotatedToken`]) |
//! | `rotated_by_expiry` | expiry, hash                   | empty: what the sweeper removes |
//! | `last_active` | user length (u16), user, session id  | when the session was last used (ms, big-endian) |
//!
//! A refresh token that was rotated away stays in `rotated` until it would have expired, so a
//! second use of it (a stolen copy) can be recognised.
//!
//! The session records live in `by_user`, in a compact binary form, a user's sessions
//! together in buckets: a new session goes to the user's open bucket, and to a new one once
//! that is full; a rotated session stays where it is. Listing a user's sessions reads one
//! value per 8 sessions, not one per session: sled 0.34 splits a leaf above 16 entries
//! whatever their size, so 1,000 sessions under keys of their own lay in 60 or more leaves,
//! each a separate read once out of sled's cache, and in buckets they lie in 8 to 11
//! (benches/README.md). `sessions` only says where each record is; keeping each record once
//! halves the data against earlier versions, which also kept it as JSON in `sessions`.
//!
//! Stores written by earlier versions keep working. Their sessions have a `by_user` key of
//! their own (user, creation time, id), holding the compact record, an older form of it or
//! nothing; in the last two cases `sessions` holds the record as JSON. Such a session is
//! written in the current layout when it next changes.

use super::super::{AccessGrant, RotatedToken, StoreError};
use crate::auth::TokenHash;
use crate::sessions::{Session, SessionId};

/// Most sessions one `by_user` bucket holds. Larger buckets make listings read fewer values
/// but make every change rewrite more: sled rewrites a whole value to change it, and the
/// stale copies take disk until sled reclaims their segments; 8 was the measured balance
/// (benches/README.md). Small in unit tests, so that a few sessions fill several buckets.
pub(super) const BUCKET_CAPACITY: usize = if cfg!(test) { 3 } else { 8 };

/// One of a user's `by_user` entries.
pub(super) enum ByUserEntry {
    /// A bucket.
    Bucket(sled::IVec),
    /// A session under a key of its own, as the previous version wrote: the key and value.
    Own(sled::IVec, sled::IVec),
}

/// Where a session's record is kept.
pub(super) enum RecordPlace {
    /// In a bucket: the bucket's `by_user` key.
    Bucket(Vec<u8>),
    /// Where earlier versions kept it: under a `by_user` key of its own ([`user_key`]), or
    /// as JSON in `sessions`.
    Own,
}

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The first byte of a `sessions` value written by the previous version: the session's own
/// `by_user` key follows. (A JSON record, as earlier versions wrote, starts with `{`.)
pub(super) const RECORD_REF_FORMAT: u8 = 2;

/// The first byte of a `sessions` value that names the bucket holding the session.
pub(super) const BUCKET_REF_FORMAT: u8 = 3;

/// `sessions` value: [`BUCKET_REF_FORMAT`], then the `by_user` key of the session's bucket.
pub(super) fn encode_bucket_ref(bucket_key: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + bucket_key.len());
    value.push(BUCKET_REF_FORMAT);
    value.extend_from_slice(bucket_key);
    value
}

/// What a `sessions` value holds.
pub(super) enum SessionsValue<'a> {
    /// The session itself, as JSON (written by an earlier version).
    Session(Box<Session>),
    /// The session's own `by_user` key (written by the previous version).
    Own(&'a [u8]),
    /// The `by_user` key of the bucket holding the session.
    InBucket(&'a [u8]),
}

pub(super) fn decode_record(value: &[u8]) -> Result<SessionsValue<'_>, StoreError> {
    match value.split_first() {
        Some((&BUCKET_REF_FORMAT, key)) => Ok(SessionsValue::InBucket(key)),
        Some((&RECORD_REF_FORMAT, key)) => Ok(SessionsValue::Own(key)),
        Some((b'{', _)) => serde_json::from_slice(value)
            .map(|session| SessionsValue::Session(Box::new(session)))
            .map_err(corrupt),
        _ => Err(corrupt("unknown session record format")),
    }
}

/// A user's head in `by_user`: which bucket takes the user's new sessions, and how many
/// sessions the user's buckets hold (the head goes when they hold none).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct BucketsHead {
    /// The number of the bucket that new sessions go to while it has room.
    pub(super) open: u32,
    /// Sessions in the user's buckets (not those still kept as an earlier version did).
    pub(super) sessions: u32,
}

impl BucketsHead {
    /// Both numbers, big-endian.
    pub(super) fn encode(self) -> [u8; 8] {
        let mut value = [0u8; 8];
        value[..4].copy_from_slice(&self.open.to_be_bytes());
        value[4..].copy_from_slice(&self.sessions.to_be_bytes());
        value
    }

    pub(super) fn decode(value: &[u8]) -> Result<BucketsHead, StoreError> {
        let value: [u8; 8] = value
            .try_into()
            .map_err(|_| corrupt("a user's head is not 8 bytes"))?;
        let number = |at: usize| {
            u32::from_be_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]])
        };
        Ok(BucketsHead {
            open: number(0),
            sessions: number(4),
        })
    }
}

/// Bytes a bucket number takes at the end of its `by_user` key.
pub(super) const BUCKET_NUMBER_LEN: usize = 4;

/// `by_user` key of a user's bucket: the user's prefix, then the bucket number.
pub(super) fn bucket_key(user_prefix: &[u8], number: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(user_prefix.len() + BUCKET_NUMBER_LEN);
    key.extend_from_slice(user_prefix);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// The first byte of a bucket: the format of the rest ([`BucketEntries`]).
pub(super) const BUCKET_FORMAT: u8 = 3;

/// The entries of a bucket, in the order they were added. Each is the session id (12 bytes),
/// the record's length (u32, big-endian), then the session in postcard (binary serde: the
/// hashes as raw bytes, no field names). The id comes first so that finding or removing one
/// session decodes no other.
pub(super) struct BucketEntries<'a>(&'a [u8]);

pub(super) fn entries(bucket: &[u8]) -> Result<BucketEntries<'_>, StoreError> {
    match bucket.split_first() {
        Some((&BUCKET_FORMAT, rest)) => Ok(BucketEntries(rest)),
        _ => Err(corrupt("a bucket in no known form")),
    }
}

impl<'a> Iterator for BucketEntries<'a> {
    /// The session id and its record.
    type Item = Result<([u8; 12], &'a [u8]), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let entry = (|| {
            let (id, rest) = self.0.split_first_chunk::<12>()?;
            let (len, rest) = rest.split_first_chunk::<4>()?;
            let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
            let (record, rest) = rest.split_at_checked(len)?;
            Some((*id, record, rest))
        })();
        match entry {
            Some((id, record, rest)) => {
                self.0 = rest;
                Some(Ok((id, record)))
            }
            None => {
                self.0 = &[];
                Some(Err(corrupt("a bucket entry is cut short")))
            }
        }
    }
}

/// Appends a session to a bucket's value.
pub(super) fn push_entry(bucket: &mut Vec<u8>, session: &Session) -> Result<(), StoreError> {
    bucket.extend_from_slice(&session.id);
    let at = bucket.len();
    bucket.extend_from_slice(&[0; 4]);
    postcard::to_io(session, &mut *bucket).map_err(corrupt)?;
    let len = u32::try_from(bucket.len() - at - 4).map_err(corrupt)?;
    bucket[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A session in a bucket entry.
pub(super) fn decode_entry(record: &[u8]) -> Result<Session, StoreError> {
    postcard::from_bytes(record).map_err(corrupt)
}

/// The session with this id in a bucket, if it is there.
pub(super) fn find_in_bucket(bucket: &[u8], id: &[u8; 12]) -> Result<Option<Session>, StoreError> {
    for entry in entries(bucket)? {
        let (entry_id, record) = entry?;
        if &entry_id == id {
            return decode_entry(record).map(Some);
        }
    }
    Ok(None)
}

/// A bucket's value without the entry of this id.
pub(super) fn without_entry(bucket: &[u8], id: &[u8; 12]) -> Result<Vec<u8>, StoreError> {
    let mut rest = Vec::with_capacity(bucket.len());
    rest.push(BUCKET_FORMAT);
    for entry in entries(bucket)? {
        let (entry_id, record) = entry?;
        if &entry_id != id {
            rest.extend_from_slice(&entry_id);
            rest.extend_from_slice(&u32::try_from(record.len()).map_err(corrupt)?.to_be_bytes());
            rest.extend_from_slice(record);
        }
    }
    Ok(rest)
}

/// The session a `by_user` key of its own holds, from the previous version: it must hold one.
pub(super) fn decode_indexed(value: &[u8]) -> Result<Session, StoreError> {
    decode_copy(value)?.ok_or_else(unreadable_copy)
}

pub(super) fn unreadable_copy() -> StoreError {
    corrupt("a session's record in by_user is in no known form")
}

/// The first byte of a `by_user` value of the previous version's layout, under a session's
/// own key: the format of the rest.
pub(super) const COPY_FORMAT: u8 = 1;

/// `by_user` value of the previous version's layout: [`COPY_FORMAT`], then the session in
/// postcard. Written now only by tests, as that version did.
#[cfg(test)]
pub(super) fn encode_copy(session: &Session) -> Result<Vec<u8>, StoreError> {
    let mut copy = vec![COPY_FORMAT];
    postcard::to_io(session, &mut copy).map_err(corrupt)?;
    Ok(copy)
}

/// The session in a `by_user` value under a session's own key, or `None` if it holds no copy
/// in the previous version's format (empty, or an older form): then the record in `sessions`
/// is read instead.
pub(super) fn decode_copy(value: &[u8]) -> Result<Option<Session>, StoreError> {
    match value.split_first() {
        Some((&COPY_FORMAT, rest)) => postcard::from_bytes(rest).map(Some).map_err(corrupt),
        _ => Ok(None),
    }
}

/// `by_access` value: id (12), expiry (8, big-endian), user (rest).
pub(super) fn encode_grant(session: &Session) -> Vec<u8> {
    let mut value = Vec::with_capacity(20 + session.user.len());
    value.extend_from_slice(&session.id);
    value.extend_from_slice(&session.expire_at_ms.to_be_bytes());
    value.extend_from_slice(session.user.as_bytes());
    value
}

/// The session id at the start of a `by_access` or `by_refresh` value.
pub(super) fn grant_id(value: &[u8]) -> [u8; 12] {
    let mut id = [0u8; 12];
    id.copy_from_slice(&value[..12]);
    id
}

pub(super) fn decode_grant(value: &[u8]) -> Result<AccessGrant, StoreError> {
    if value.len() < 20 {
        return Err(corrupt("short access index entry"));
    }
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&value[12..20]);
    Ok(AccessGrant {
        session_id: SessionId(grant_id(value)),
        expire_at_ms: i64::from_be_bytes(expiry),
        user: std::str::from_utf8(&value[20..]).map_err(corrupt)?.into(),
    })
}

/// `by_user` prefix of a user: length-prefixed so that "ab" never matches "abc".
pub(super) fn user_prefix(user: &str) -> Vec<u8> {
    let len = u16::try_from(user.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + user.len() + 20);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(user.as_bytes());
    key
}

/// The first key after every key that starts with `prefix` (`None`: there is none).
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A session's own `by_user` key, in the previous version's layout: the user's prefix, the
/// creation time, the id.
pub(super) fn user_key(session: &Session) -> Vec<u8> {
    let mut key = user_prefix(&session.user);
    key.extend_from_slice(&session.created_at_ms.to_be_bytes());
    key.extend_from_slice(&session.id);
    key
}

pub(super) fn expiry_key(session: &Session) -> [u8; 20] {
    let mut key = [0u8; 20];
    // Expiries are positive, so big-endian bytes sort in time order.
    key[..8].copy_from_slice(&session.expire_at_ms.max(0).to_be_bytes());
    key[8..].copy_from_slice(&session.id);
    key
}

/// `rotated_by_expiry` key: expiry (big-endian), then the token hash.
pub(super) fn rotated_expiry_key(expire_at_ms: i64, hash: &TokenHash) -> Vec<u8> {
    let mut key = Vec::with_capacity(72);
    key.extend_from_slice(&expire_at_ms.max(0).to_be_bytes());
    key.extend_from_slice(hash);
    key
}

/// The session id at the end of a session's own `by_user` key or a `by_expiry` key.
pub(super) fn key_id(key: &[u8]) -> [u8; 12] {
    let mut id = [0u8; 12];
    id.copy_from_slice(&key[key.len() - 12..]);
    id
}

/// `rotated` value: the session id (12), the rotation time and the token's expiry (8 each,
/// big-endian).
pub(super) fn encode_rotated(id: &[u8; 12], rotated_at_ms: i64, expire_at_ms: i64) -> Vec<u8> {
    let mut value = Vec::with_capacity(28);
    value.extend_from_slice(id);
    value.extend_from_slice(&rotated_at_ms.to_be_bytes());
    value.extend_from_slice(&expire_at_ms.to_be_bytes());
    value
}

pub(super) fn decode_rotated(value: &[u8]) -> Result<RotatedToken, StoreError> {
    if value.len() != 28 {
        return Err(corrupt("short rotated-token entry"));
    }
    let mut rotated_at = [0u8; 8];
    rotated_at.copy_from_slice(&value[12..20]);
    Ok(RotatedToken {
        session_id: SessionId(grant_id(value)),
        rotated_at_ms: i64::from_be_bytes(rotated_at),
    })
}

/// `last_active` key of a session: its user's prefix, then its id (a user's lie together).
pub(super) fn last_active_key(user: &str, id: &[u8; 12]) -> Vec<u8> {
    let mut key = user_prefix(user);
    key.extend_from_slice(id);
    key
}

/// A time in ms from its 8 big-endian bytes (0 for a value of another length).
pub(super) fn decode_ms(value: &[u8]) -> i64 {
    value.try_into().map(i64::from_be_bytes).unwrap_or(0)
}
