//! Sessions for the benchmarks, the same every time for the same inputs: what the uploader
//! would have issued, HS256 tokens included, so that a token can be made again from its
//! number alone (the store keeps only hashes).
//!
//! Shared by `benches/check.rs` and the `seed_sessions` and `store_scale` examples (included
//! with `#[path]`; it is not a module of the library).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sessiongate::auth::token_hash;
use sessiongate::sessions::{Device, Session, SessionId};

/// Lifetime of a refresh token (the uploader's `14d`): the session's expiry.
pub const REFRESH_LIFETIME_S: i64 = 14 * 24 * 3600;

/// The User-Agent every seeded session logged in with.
pub const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36";

/// An API client's User-Agent, as in the uploader's API document.
pub const POSTMAN_UA: &str = "PostmanRuntime/7.26.8";

/// The payload of the uploader's tokens.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

/// Makes seeded sessions and their tokens.
pub struct Seeder {
    key: EncodingKey,
    header: Header,
    base_s: i64,
    access_lifetime_s: i64,
    device: Device,
}

/// One seeded login: the session as the gateway stores it, and its access token.
pub struct Login {
    pub session: Session,
    pub access_token: String,
}

impl Seeder {
    /// Logins signed with `secret`, the latest issued at `base_s` (unix seconds), access
    /// tokens living `access_lifetime_s` (the uploader's are 5 minutes; a load test needs
    /// longer).
    pub fn new(secret: &[u8], base_s: i64, access_lifetime_s: i64) -> Seeder {
        Seeder {
            key: EncodingKey::from_secret(secret),
            header: Header::new(Algorithm::HS256),
            base_s,
            access_lifetime_s,
            device: Device::from_user_agent(Some(CHROME_UA)),
        }
    }

    /// The `k`-th most recent login of `user`: issued `k` seconds before the base time, so
    /// every (user, k) has tokens of its own.
    pub fn login(&self, user: &str, k: u64) -> Login {
        let iat = self.base_s - i64::try_from(k).expect("k fits in i64");
        let access_token = self.sign(user, iat, iat + self.access_lifetime_s);
        let refresh_token = self.sign(user, iat, iat + REFRESH_LIFETIME_S);
        let created_at_ms = iat * 1000;
        let session = Session {
            id: SessionId::generate(created_at_ms).0,
            user: user.to_owned(),
            access_hash: token_hash(&access_token),
            refresh_hash: token_hash(&refresh_token),
            device: self.device.clone(),
            location: "unknown".to_owned(),
            created_at_ms,
            updated_at_ms: created_at_ms,
            expire_at_ms: (iat + REFRESH_LIFETIME_S) * 1000,
        };
        Login {
            session,
            access_token,
        }
    }

    /// Session `i` of a store seeded with `users` users, sessions dealt to them in turn:
    /// user `i % users`, its login number `i / users`.
    pub fn nth(&self, i: u64, users: u64) -> Login {
        self.login(&user_id(i % users), i / users)
    }

    fn sign(&self, sub: &str, iat: i64, exp: i64) -> String {
        jsonwebtoken::encode(&self.header, &Claims { sub, iat, exp }, &self.key)
            .expect("HS256 signing cannot fail")
    }
}

/// User number `n` as a MongoDB ObjectId-like id, as the uploader's `sub` looks.
pub fn user_id(n: u64) -> String {
    format!("5f4bff12{n:016x}")
}

/// Now, in unix seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// This process's resident set size and its peak, in KiB (`VmRSS`, `VmHWM`).
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub use sessiongate::tools::compact::disk_bytes;

/// A small deterministic random number generator (SplitMix64), so that runs pick the same
/// sessions.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        z % n
    }
}

/// Percentile `p` (0..=100) of sorted `values`.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
