//! Sessions: the model, the clock, device parsing, and the store.
//!
//! A [`Session`] is what the uploader calls a session record: one login on one device,
//! found by the SHA-512 of its current access or refresh token. The gateway learns them from
//! the uploader's login traffic ([`crate::lifecycle`]) and keeps them in a
//! [`SessionStore`].

pub mod activity;
pub mod clock;
pub mod device;
pub mod metered;
pub mod open;
pub mod store;
pub mod sweeper;
pub mod tombstones;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

pub use activity::Activity;
pub use clock::{Clock, ManualClock, SystemClock};
pub use device::Device;
pub use metered::MeteredStore;
pub use open::{open_dump, open_store};
pub use store::{
    RedisStore, RedisTarget, RotatedEntry, Rotation, SessionStore, SledStore, StoreError, Touch,
};
pub use sweeper::Sweeper;

use crate::auth::TokenHash;

/// A session id: 12 bytes shown as 24 lowercase hex characters, laid out like a MongoDB
/// ObjectId (4 bytes of seconds, 5 random bytes fixed per process, a 3-byte counter), so the
/// web client sees familiar ids and ids made in the same second still sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 12]);

impl SessionId {
    /// A fresh id for a session created at `now_ms`.
    pub fn generate(now_ms: i64) -> SessionId {
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(rand::random);
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff))
            .fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 12];
        let seconds = (now_ms / 1000).clamp(0, u32::MAX as i64) as u32;
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(process);
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        SessionId(bytes)
    }

    /// Parses 24 hex characters (either case). Anything else is `None`.
    pub fn parse(text: &str) -> Option<SessionId> {
        if text.len() != 24 {
            return None;
        }
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(SessionId(bytes))
    }
}

impl SessionId {
    /// The 24 lowercase hex digits, without a heap allocation.
    pub fn hex(&self) -> [u8; 24] {
        let mut digits = [0u8; 24];
        hex::encode_to_slice(self.0, &mut digits).expect("24 digits for 12 bytes");
        digits
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.hex();
        f.write_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"))
    }
}

/// One session, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The session id.
    #[serde(with = "hex_array")]
    pub id: [u8; 12],
    /// The user id: the tokens' `sub`.
    pub user: String,
    /// SHA-512 of the current access token.
    #[serde(with = "hex_array")]
    pub access_hash: TokenHash,
    /// SHA-512 of the current refresh token.
    #[serde(with = "hex_array")]
    pub refresh_hash: TokenHash,
    /// The device, from the login request's User-Agent.
    pub device: Device,
    /// "City, Region Country" from the configured header, or "unknown".
    pub location: String,
    /// When the session was created (login), ms since the epoch.
    pub created_at_ms: i64,
    /// When its tokens were last rotated, ms since the epoch.
    pub updated_at_ms: i64,
    /// When it ends: the current refresh token's `exp`, ms since the epoch.
    pub expire_at_ms: i64,
}

impl Session {
    /// The session id.
    pub fn session_id(&self) -> SessionId {
        SessionId(self.id)
    }
}

/// Serde for fixed-size byte arrays: lowercase hex strings in JSON (the records earlier
/// versions stored), the raw bytes in binary formats (the records in the per-user index).
mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let mut bytes = [0u8; N];
        if d.is_human_readable() {
            let text = <&str>::deserialize(d)?;
            hex::decode_to_slice(text, &mut bytes).map_err(serde::de::Error::custom)?;
        } else {
            let raw = <&[u8]>::deserialize(d)?;
            if raw.len() != N {
                return Err(serde::de::Error::invalid_length(
                    raw.len(),
                    &"the array's length",
                ));
            }
            bytes.copy_from_slice(raw);
        }
        Ok(bytes)
    }
}
