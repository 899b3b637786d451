//! How the store lies in Redis. Each user's sessions are one hash, under the hash tag
//! `{u:<user>}` (so that Redis Cluster keeps any key of the user's in one slot), which a
//! script changes whole:
//!
//! | key                     | type | holds |
//! |-------------------------|------|-------|
//! | `<prefix>:{u:<user>}`   | hash | session id (12 bytes) → the session's record ([`encode_record`]); `a` + first 16 bytes of an access token's SHA-512 → id, expiry; `r` + a refresh token's → id; `x` + a rotated-away refresh token's → id, rotation time, expiry, its whole hash; `l` + a session id → its last use (ms, decimal) |
//! | `<prefix>:{g}:users`    | zset | user → the user's earliest expiry, or earlier: the users the sweep visits |
//! | `<prefix>:{g}:count`    | string | how many sessions the store holds |
//!
//! Records and token fields share one hash because a key of its own costs about a hundred
//! bytes whatever it holds, a second key a user cost more than a third of a one-session user's
//! memory (benches/README.md, "The Redis store's memory"); fields of 12 bytes are sessions,
//! the others (17 bytes) tokens.
//!
//! A user's hash expires (a Redis TTL) an hour after the latest expiry it was given, so a user
//! who never comes back leaves nothing behind even without a sweep; the sweep visits the
//! users whose earliest expiry has passed, removes what expired and writes down their new
//! earliest. Nothing expired is ever accepted meanwhile: the check compares each expiry with
//! the gateway's clock. Expiries are kept in the records themselves rather than in an index of
//! their own (a sorted set of every session's expiry took about 100 bytes a session).
//!
//! Token fields key by 16 bytes (128 bits) of the hash, as the sled store's in-memory index
//! does: two stored tokens sharing them is as unlikely as a 128-bit collision, and a token
//! that is not stored cannot be made to match one. The record keeps both hashes whole.

use super::super::dump::RotatedEntry;
use super::super::{AccessGrant, RotatedToken, StoreError};
use crate::auth::TokenHash;
use crate::sessions::{Device, Session, SessionId};

/// Bytes of a token's SHA-512 that key its field in the tokens hash.
pub(super) const FIELD_HASH_BYTES: usize = 16;

/// The key of a user's hash. The user comes last, after the tag's opening, so no two users'
/// keys are alike even when a user id holds `}`.
pub(super) fn user_key(prefix: &str, user: &str) -> String {
    format!("{prefix}:{{u:{user}}}")
}

/// Bytes of a session id, the field of its record in its user's hash (token fields are
/// longer).
pub(super) const SESSION_FIELD_BYTES: usize = 12;

/// The keys shared by all users: the sweep's index and the session count.
#[derive(Clone)]
pub(super) struct GlobalKeys {
    /// user → earliest expiry.
    pub(super) users: String,
    /// sessions held.
    pub(super) count: String,
}

impl GlobalKeys {
    pub(super) fn new(prefix: &str) -> GlobalKeys {
        GlobalKeys {
            users: format!("{prefix}:{{g}}:users"),
            count: format!("{prefix}:{{g}}:count"),
        }
    }
}

/// The field of an access token in the tokens hash.
pub(super) fn access_field(hash: &TokenHash) -> Vec<u8> {
    field(b'a', hash)
}

/// The field of a current refresh token.
pub(super) fn refresh_field(hash: &TokenHash) -> Vec<u8> {
    field(b'r', hash)
}

/// The field of a session's last use.
pub(super) fn last_active_field(id: &SessionId) -> Vec<u8> {
    let mut field = Vec::with_capacity(1 + 12);
    field.push(b'l');
    field.extend_from_slice(&id.0);
    field
}

/// The field of a rotated-away refresh token.
pub(super) fn rotated_field(hash: &TokenHash) -> Vec<u8> {
    field(b'x', hash)
}

fn field(kind: u8, hash: &TokenHash) -> Vec<u8> {
    let mut field = Vec::with_capacity(1 + FIELD_HASH_BYTES);
    field.push(kind);
    field.extend_from_slice(&hash[..FIELD_HASH_BYTES]);
    field
}

/// Offsets of a record's fixed part, which the scripts read and splice (`string.sub`, 1-based
/// there): the access hash, the refresh hash, the expiry, the last rotation, the creation
/// (8 bytes each, big-endian), then the device and location in postcard.
pub(super) const RECORD_FIXED_BYTES: usize = 64 + 64 + 8 + 8 + 8;

/// What a record holds after its fixed part, as written.
#[derive(serde::Serialize)]
struct RecordTailRef<'a> {
    device: &'a Device,
    location: &'a str,
}

/// What a record holds after its fixed part, as read.
#[derive(serde::Deserialize)]
struct RecordTail {
    device: Device,
    location: String,
}

/// A session's record (its user is in the key).
pub(super) fn encode_record(session: &Session) -> Result<Vec<u8>, StoreError> {
    let mut record = Vec::with_capacity(RECORD_FIXED_BYTES + 64);
    record.extend_from_slice(&session.access_hash);
    record.extend_from_slice(&session.refresh_hash);
    record.extend_from_slice(&session.expire_at_ms.to_be_bytes());
    record.extend_from_slice(&session.updated_at_ms.to_be_bytes());
    record.extend_from_slice(&session.created_at_ms.to_be_bytes());
    let tail = RecordTailRef {
        device: &session.device,
        location: &session.location,
    };
    postcard::to_io(&tail, &mut record).map_err(corrupt)?;
    Ok(record)
}

/// The session `id` of `user` from its record.
pub(super) fn decode_record(user: &str, id: &[u8], record: &[u8]) -> Result<Session, StoreError> {
    let id: [u8; 12] = id
        .try_into()
        .map_err(|_| corrupt("a session id that is not 12 bytes"))?;
    let (fixed, tail) = record
        .split_at_checked(RECORD_FIXED_BYTES)
        .ok_or_else(|| corrupt("a session record cut short"))?;
    let tail: RecordTail = postcard::from_bytes(tail).map_err(corrupt)?;
    Ok(Session {
        id,
        user: user.to_string(),
        access_hash: fixed[..64].try_into().expect("64 bytes"),
        refresh_hash: fixed[64..128].try_into().expect("64 bytes"),
        expire_at_ms: be_i64(&fixed[128..136]),
        updated_at_ms: be_i64(&fixed[136..144]),
        created_at_ms: be_i64(&fixed[144..152]),
        device: tail.device,
        location: tail.location,
    })
}

/// The value of an access token's field: the session id, then its expiry.
pub(super) fn decode_grant(user: &str, value: &[u8]) -> Result<AccessGrant, StoreError> {
    if value.len() != 20 {
        return Err(corrupt("an access token entry is not 20 bytes"));
    }
    Ok(AccessGrant {
        session_id: SessionId(value[..12].try_into().expect("12 bytes")),
        user: user.into(),
        expire_at_ms: be_i64(&value[12..20]),
    })
}

/// A rotated-away token's value, if it is this token's (its whole hash matches).
pub(super) fn decode_rotated(
    value: &[u8],
    hash: &TokenHash,
) -> Result<Option<RotatedToken>, StoreError> {
    if value.len() != 12 + 8 + 8 + 64 {
        return Err(corrupt("a rotated-token entry of the wrong length"));
    }
    if &value[28..] != hash {
        return Ok(None);
    }
    Ok(Some(RotatedToken {
        session_id: SessionId(value[..12].try_into().expect("12 bytes")),
        rotated_at_ms: be_i64(&value[12..20]),
    }))
}

/// A rotated-away token's value: the session id, the rotation time, the token's expiry (8
/// bytes each, big-endian), then its whole hash.
pub(super) fn encode_rotated(entry: &RotatedEntry) -> Vec<u8> {
    let mut value = Vec::with_capacity(12 + 8 + 8 + 64);
    value.extend_from_slice(&entry.session_id.0);
    value.extend_from_slice(&entry.rotated_at_ms.to_be_bytes());
    value.extend_from_slice(&entry.expire_at_ms.to_be_bytes());
    value.extend_from_slice(&entry.hash);
    value
}

/// A rotated-away token's entry from its value, for `user`.
pub(super) fn decode_rotated_entry(user: &str, value: &[u8]) -> Result<RotatedEntry, StoreError> {
    if value.len() != 12 + 8 + 8 + 64 {
        return Err(corrupt("a rotated-token entry of the wrong length"));
    }
    Ok(RotatedEntry {
        user: user.to_string(),
        hash: value[28..].try_into().expect("64 bytes"),
        session_id: SessionId(value[..12].try_into().expect("12 bytes")),
        rotated_at_ms: be_i64(&value[12..20]),
        expire_at_ms: be_i64(&value[20..28]),
    })
}

fn be_i64(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes.try_into().expect("8 bytes"))
}

pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::store::contract::session;

    #[test]
    fn a_record_gives_back_the_session_exactly() {
        let mut original = session(7, "5fc1d2e3a4b5c6d7e8f90a1b", 1_700_000_000_123, i64::MAX);
        original.location = "Zürich, ZH CH \"quoted\"".into();
        original.updated_at_ms = 1_700_000_999_000;
        let record = encode_record(&original).expect("encodes");
        assert_eq!(&record[..64], original.access_hash);
        assert_eq!(&record[64..128], original.refresh_hash);
        assert_eq!(
            decode_record(&original.user, &original.id, &record).expect("decodes"),
            original
        );
        for cut in [0, 100, RECORD_FIXED_BYTES, record.len() - 1] {
            assert!(decode_record(&original.user, &original.id, &record[..cut]).is_err());
        }
    }

    #[test]
    fn each_user_has_a_key_of_their_own_with_a_hash_tag() {
        assert_eq!(user_key("sg", "ab"), "sg:{u:ab}");
        assert_ne!(user_key("sg", "ab"), user_key("sg", "ab}"));
        // An empty user still has a hash tag (`{}` would hash the whole key).
        assert_eq!(user_key("sg", ""), "sg:{u:}");
    }
}
