//! The shared store: sessions in Redis or Redis Cluster, so that several gateway replicas
//! see the same sessions. A session created, rotated or revoked through one replica is seen
//! by every replica on its next request: nothing is cached, every check asks Redis.
//!
//! - [`layout`]: the keys (a user's one hash, under a hash tag) and how values are encoded;
//! - [`scripts`]: each change as one Lua script, atomic over the user's keys;
//! - [`link`]: the connection, its time bound, and how its failures are sorted.
//!
//! A change is acknowledged by Redis before the call returns, and so before the gateway
//! answers; how durable that acknowledgement is depends on the server's `appendfsync`
//! (README, "Several replicas"). The check is one `HGET` on a multiplexed connection, which
//! pipelines the checks of concurrent requests.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::{AsyncCommands, Script, Value};

use super::{AccessGrant, RotatedEntry, RotatedToken, Rotation, SessionStore, StoreError, Touch};
use crate::auth::TokenHash;
use crate::sessions::store::dump::{Dump, Entry};
use crate::sessions::{Session, SessionId};

mod dump;
mod layout;
mod link;
mod scripts;

use layout::*;
pub use link::RedisTarget;
use link::{Link, classify};
use scripts::*;

/// How long a user's keys outlive the latest expiry they were given: the sweep normally
/// removes what expired long before; the keys' own expiry only keeps a user who never comes
/// back (and a store no gateway sweeps) from holding memory for ever.
const KEY_GRACE_MS: i64 = 60 * 60 * 1000;

/// Users pruned per round of a sweep, and at once.
const SWEEP_BATCH: usize = 256;
const SWEEP_PARALLEL: usize = 16;

/// The Redis-backed store. Clones share one connection.
#[derive(Clone)]
pub struct RedisStore {
    link: Link,
    prefix: String,
    global: GlobalKeys,
    timeout: Duration,
}

/// What a change did, as its script answers (see [`scripts`]).
struct Changed {
    /// How the number of sessions changed.
    delta: i64,
    /// What the sweep's index of users learns.
    index: IndexUpdate,
    /// The rest of the answer.
    rest: Value,
}

/// A change to a user's entry in the sweep's index of users.
enum IndexUpdate {
    /// The user holds something that expires at this score: lower the entry to it.
    Lower(String),
    /// The user's earliest expiry is exactly this score.
    Set(String),
    /// The user holds nothing.
    Remove,
    /// Nothing to write.
    Keep,
}

impl RedisStore {
    /// Connects to `target`, keeping every key under `prefix` (`<prefix>:...`). Returns at
    /// once for a single server, even if it is down (calls then fail until it answers); a
    /// cluster must answer, to give its slots.
    pub async fn connect(target: &RedisTarget, prefix: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore {
            link: Link::open(target).await?,
            prefix: prefix.to_string(),
            global: GlobalKeys::new(prefix),
            timeout: target.timeout,
        })
    }

    fn key(&self, user: &str) -> String {
        user_key(&self.prefix, user)
    }

    /// Runs one Redis call within the time bound.
    async fn call<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(classify),
            Err(_) => Err(StoreError::Timeout(self.timeout.as_millis() as u64)),
        }
    }

    /// Runs a script over `user`'s keys.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        user: &str,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.key(self.key(user));
        for arg in args {
            invocation.arg(*arg);
        }
        let mut link = self.link.clone();
        self.call(invocation.invoke_async(&mut link)).await
    }

    /// Runs a script that changes `user`'s sessions, then brings the sweep's index and the
    /// session count up to date with what it did.
    async fn change(
        &self,
        script: &Script,
        user: &str,
        args: &[&[u8]],
    ) -> Result<Changed, StoreError> {
        let answer: Vec<Value> = self.run(script, user, args).await?;
        let Ok([Value::Int(delta), Value::BulkString(index), score, rest]) =
            <[Value; 4]>::try_from(answer)
        else {
            return Err(corrupt(
                "a script's answer is not {delta, index, score, rest}",
            ));
        };
        let score = || match &score {
            Value::BulkString(score) => String::from_utf8(score.clone()).map_err(corrupt),
            other => Err(corrupt(format!("a script answered the score {other:?}"))),
        };
        let index = match index.as_slice() {
            b"lower" => IndexUpdate::Lower(score()?),
            b"set" => IndexUpdate::Set(score()?),
            b"remove" => IndexUpdate::Remove,
            b"keep" => IndexUpdate::Keep,
            other => return Err(corrupt(format!("a script answered the index {other:?}"))),
        };
        let changed = Changed { delta, index, rest };
        self.keep_books(user, &changed).await;
        Ok(changed)
    }

    /// Writes what a change did into the sweep's index and the count. The change itself is
    /// already done: a failure here is logged, and the next sweep of the user (or the keys'
    /// own expiry) catches up.
    async fn keep_books(&self, user: &str, changed: &Changed) {
        let mut pipe = redis::pipe();
        let users = &self.global.users;
        match &changed.index {
            IndexUpdate::Lower(score) => {
                pipe.cmd("ZADD")
                    .arg(users)
                    .arg("LT")
                    .arg(score)
                    .arg(user)
                    .ignore();
            }
            IndexUpdate::Set(score) => {
                pipe.zadd(users, user, score.as_str()).ignore();
            }
            IndexUpdate::Remove => {
                pipe.zrem(users, user).ignore();
            }
            IndexUpdate::Keep => {}
        }
        if changed.delta != 0 {
            pipe.incr(&self.global.count, changed.delta).ignore();
        }
        if matches!(changed.index, IndexUpdate::Keep) && changed.delta == 0 {
            return;
        }
        let mut link = self.link.clone();
        if let Err(error) = self.call(pipe.query_async::<()>(&mut link)).await {
            tracing::warn!(%error, "the store's sweep index and count were not updated");
        }
    }
}

/// What a script answered in place of a value: nil, or bytes.
fn bytes(value: Value) -> Result<Option<Vec<u8>>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(bytes)),
        other => Err(corrupt(format!("expected bytes, got {other:?}"))),
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, session: &Session) -> Result<Vec<SessionId>, StoreError> {
        let record = encode_record(session)?;
        let expiry = session.expire_at_ms.to_string();
        let now = session.created_at_ms.to_string();
        let grace = KEY_GRACE_MS.to_string();
        let args: [&[u8]; 5] = [
            &session.id,
            &record,
            expiry.as_bytes(),
            now.as_bytes(),
            grace.as_bytes(),
        ];
        let changed = self.change(&CREATE_SCRIPT, &session.user, &args).await?;
        let evicted: Vec<Vec<u8>> = redis::from_redis_value(changed.rest).map_err(corrupt)?;
        evicted
            .into_iter()
            .map(|id| {
                <[u8; 12]>::try_from(id.as_slice())
                    .map(SessionId)
                    .map_err(|_| corrupt("an evicted id is not 12 bytes"))
            })
            .collect()
    }

    async fn find_access(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<AccessGrant>, StoreError> {
        let tokens = self.key(user);
        let mut link = self.link.clone();
        let value: Option<Vec<u8>> = self.call(link.hget(tokens, access_field(hash))).await?;
        value.map(|v| decode_grant(user, &v)).transpose()
    }

    async fn find_refresh(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<Session>, StoreError> {
        let found: Option<(Vec<u8>, Vec<u8>)> = self
            .run(&FIND_REFRESH_SCRIPT, user, &[&refresh_field(hash)])
            .await?;
        let Some((id, record)) = found else {
            return Ok(None);
        };
        let session = decode_record(user, &id, &record)?;
        // The field keys by part of the hash: the record has it whole.
        Ok((&session.refresh_hash == hash).then_some(session))
    }

    async fn rotate(
        &self,
        user: &str,
        id: SessionId,
        rotation: Rotation,
    ) -> Result<Option<Session>, StoreError> {
        let expiry = rotation.expire_at_ms.to_be_bytes();
        let now = rotation.now_ms.to_be_bytes();
        let (expiry_score, now_ms) = (
            rotation.expire_at_ms.to_string(),
            rotation.now_ms.to_string(),
        );
        let grace = KEY_GRACE_MS.to_string();
        let args: [&[u8]; 8] = [
            &id.0,
            &rotation.access_hash,
            &rotation.refresh_hash,
            &expiry,
            &now,
            expiry_score.as_bytes(),
            now_ms.as_bytes(),
            grace.as_bytes(),
        ];
        let changed = self.change(&ROTATE_SCRIPT, user, &args).await?;
        bytes(changed.rest)?
            .map(|record| decode_record(user, &id.0, &record))
            .transpose()
    }

    async fn find_rotated(
        &self,
        user: &str,
        hash: &TokenHash,
    ) -> Result<Option<RotatedToken>, StoreError> {
        let tokens = self.key(user);
        let mut link = self.link.clone();
        let value: Option<Vec<u8>> = self.call(link.hget(tokens, rotated_field(hash))).await?;
        match value {
            Some(value) => decode_rotated(&value, hash),
            None => Ok(None),
        }
    }

    async fn revoke(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        let changed = self.change(&REVOKE_SCRIPT, user, &[&id.0]).await?;
        bytes(changed.rest)?
            .map(|record| decode_record(user, &id.0, &record))
            .transpose()
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        let changed = self.change(&REVOKE_USER_SCRIPT, user, &[]).await?;
        redis::from_redis_value(changed.rest).map_err(corrupt)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let mut link = self.link.clone();
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self.call(link.hgetall(self.key(user))).await?;
        let mut sessions = fields
            .iter()
            .filter(|(field, _)| field.len() == SESSION_FIELD_BYTES)
            .map(|(id, record)| decode_record(user, id, record))
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_unstable_by_key(|s| (s.created_at_ms, s.id));
        Ok(sessions)
    }

    async fn get(&self, user: &str, id: SessionId) -> Result<Option<Session>, StoreError> {
        let mut link = self.link.clone();
        let record: Option<Vec<u8>> = self.call(link.hget(self.key(user), &id.0[..])).await?;
        record
            .map(|record| decode_record(user, &id.0, &record))
            .transpose()
    }

    async fn sweep_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        let now = now_ms.to_string();
        let prune_args: [&[u8]; 1] = [now.as_bytes()];
        let mut link = self.link.clone();
        let due: usize = self
            .call(link.zcount(&self.global.users, "-inf", now.as_str()))
            .await?;
        let (mut removed, mut visited) = (0, 0);
        // Each pruned user leaves the range; a user whose index entry could not be updated
        // would stay in it, so the rounds are bounded by how many were due at the start.
        while visited < due + SWEEP_BATCH {
            let users: Vec<String> = self
                .call(link.zrangebyscore_limit(
                    &self.global.users,
                    "-inf",
                    now.as_str(),
                    0,
                    SWEEP_BATCH as isize,
                ))
                .await?;
            if users.is_empty() {
                break;
            }
            visited += users.len();
            for part in users.chunks(SWEEP_PARALLEL) {
                let pruned = try_join_all(
                    part.iter()
                        .map(|user| self.change(&PRUNE_SCRIPT, user, &prune_args)),
                )
                .await?;
                for changed in pruned {
                    removed += redis::from_redis_value::<usize>(changed.rest).map_err(corrupt)?;
                }
            }
        }
        Ok(removed)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let mut link = self.link.clone();
        let count: Option<i64> = self.call(link.get(&self.global.count)).await?;
        Ok(usize::try_from(count.unwrap_or(0)).unwrap_or(0))
    }

    async fn touch(&self, touches: &[Touch]) -> Result<(), StoreError> {
        // One script a user, the users side by side.
        let mut by_user: std::collections::BTreeMap<&str, Vec<Vec<u8>>> = Default::default();
        for touch in touches {
            let args = by_user.entry(touch.user.as_str()).or_default();
            args.push(touch.id.0.to_vec());
            args.push(touch.at_ms.to_string().into_bytes());
        }
        try_join_all(by_user.iter().map(|(user, args)| {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            async move {
                self.run::<Value>(&TOUCH_SCRIPT, user, &args).await?;
                Ok::<_, StoreError>(())
            }
        }))
        .await?;
        Ok(())
    }

    async fn last_active(
        &self,
        user: &str,
        ids: &[SessionId],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<Vec<u8>> = ids.iter().map(last_active_field).collect();
        let mut link = self.link.clone();
        let values: Vec<Option<String>> = self
            .call(
                redis::cmd("HMGET")
                    .arg(self.key(user))
                    .arg(&fields)
                    .query_async(&mut link),
            )
            .await?;
        Ok(values
            .into_iter()
            .map(|v| v.and_then(|v| v.parse().ok()))
            .collect())
    }

    async fn find_by_id(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        // Session ids do not say whose they are: ask each user's hash, a page of users at a
        // time (every user holding anything is in the sweep's index).
        const PAGE: isize = 1000;
        let mut rank = 0;
        loop {
            let mut link = self.link.clone();
            let users: Vec<String> = self
                .call(link.zrange(&self.global.users, rank, rank + PAGE - 1))
                .await?;
            let records = try_join_all(users.iter().map(|user| {
                let mut link = self.link.clone();
                async move {
                    let record: Option<Vec<u8>> =
                        self.call(link.hget(self.key(user), &id.0[..])).await?;
                    Ok::<_, StoreError>(record.map(|record| (user, record)))
                }
            }))
            .await?;
            if let Some((user, record)) = records.into_iter().flatten().next() {
                return decode_record(user, &id.0, &record).map(Some);
            }
            if (users.len() as isize) < PAGE {
                return Ok(None);
            }
            rank += PAGE;
        }
    }

    async fn retire(&self, tokens: &[RotatedEntry]) -> Result<(), StoreError> {
        let entries: Vec<Entry> = tokens.iter().cloned().map(Entry::Rotated).collect();
        self.load(&entries).await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut link = self.link.clone();
        let _: String = self.call(redis::cmd("PING").query_async(&mut link)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
