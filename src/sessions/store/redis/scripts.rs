//! The Lua scripts that change a user's sessions. Redis runs each script whole, with nothing
//! else in between, so every change (a login, a rotation, a revocation, a user's revocation,
//! a sweep) is one atomic step over the user's three keys; with `appendfsync always` it is
//! on disk before Redis answers, and so before the gateway does.
//!
//! Every script takes the user's keys as `KEYS[1]` (sessions), `KEYS[2]` (tokens),
//! `KEYS[3]` (expiries), see [`super::layout`]. Those that change something answer
//! `{delta, earliest, ...}`: how the number of sessions changed, and the user's earliest
//! expiry left (`''` when the user holds nothing any more, nil when unchanged), which the
//! caller writes into the sweep's index.

use std::sync::LazyLock;

use redis::Script;

/// The functions every script shares.
const PRELUDE: &str = r#"
local S, T, E = KEYS[1], KEYS[2], KEYS[3]
local MAX_TTL = 3153600000000

-- The session id a token field points at, or nil.
local function holder(field)
  local value = redis.call('HGET', T, field)
  if value then return string.sub(value, 1, 12) end
  return nil
end

-- Removes a session and those of its token fields that still point at it; its record, or
-- nil if there was none.
local function remove(id)
  local record = redis.call('HGET', S, id)
  if not record then return nil end
  redis.call('HDEL', S, id)
  redis.call('ZREM', E, id)
  local access = 'a' .. string.sub(record, 1, 16)
  if holder(access) == id then redis.call('HDEL', T, access) end
  local refresh = 'r' .. string.sub(record, 65, 80)
  if holder(refresh) == id then redis.call('HDEL', T, refresh) end
  return record
end

-- Writes a session, replacing any with its id and evicting any other that holds one of its
-- tokens (a token belongs to one session); the evicted ids.
local function put(id, record, expiry)
  remove(id)
  local access = 'a' .. string.sub(record, 1, 16)
  local refresh = 'r' .. string.sub(record, 65, 80)
  local evicted = {}
  for _, field in ipairs({access, refresh}) do
    local other = holder(field)
    if other and remove(other) then evicted[#evicted + 1] = other end
  end
  redis.call('HSET', S, id, record)
  redis.call('HSET', T, access, id .. string.sub(record, 129, 136), refresh, id)
  redis.call('ZADD', E, expiry, id)
  return evicted
end

-- After a change: the keys go at once when they hold nothing; given the gateway's time of
-- the change, they expire `grace` ms after the latest expiry they hold (reckoned from that
-- time, so the gateway's and Redis's clocks need not agree). The earliest expiry left, or ''.
local function settle(now, grace)
  local first = redis.call('ZRANGE', E, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('DEL', S, T, E)
    return ''
  end
  if now then
    local last = redis.call('ZRANGE', E, -1, -1, 'WITHSCORES')
    local ttl = math.floor(tonumber(last[2]) - now + grace)
    for _, key in ipairs({S, T, E}) do
      if ttl > MAX_TTL then
        redis.call('PERSIST', key)
      else
        redis.call('PEXPIRE', key, math.max(ttl, 1))
      end
    end
  end
  return first[2]
end
"#;

/// ARGV: id, record, expiry (score), now (ms), grace (ms). Answers `{delta, earliest,
/// evicted ids}`.
const CREATE: &str = r#"
local existed = redis.call('HEXISTS', S, ARGV[1])
local evicted = put(ARGV[1], ARGV[2], ARGV[3])
local first = settle(tonumber(ARGV[4]), tonumber(ARGV[5]))
return {1 - existed - #evicted, first, evicted}
"#;

/// ARGV: id, new access hash, new refresh hash, new expiry (8 bytes), now (8 bytes), new
/// expiry (score), now (ms), grace (ms). Answers `{delta, earliest, new record}`, the record
/// nil when there is no such session.
const ROTATE: &str = r#"
local id = ARGV[1]
local old = redis.call('HGET', S, id)
if not old then return {0, false, false} end
local old_refresh = string.sub(old, 65, 128)
if old_refresh ~= ARGV[3] then
  -- The old refresh token lives until the old expiry: remember it until then.
  local field = 'x' .. string.sub(old_refresh, 1, 16)
  redis.call('HSET', T, field, id .. ARGV[5] .. string.sub(old, 129, 136) .. old_refresh)
  redis.call('ZADD', E, redis.call('ZSCORE', E, id), field)
end
local record = ARGV[2] .. ARGV[3] .. ARGV[4] .. ARGV[5] .. string.sub(old, 145)
local evicted = put(id, record, ARGV[6])
local first = settle(tonumber(ARGV[7]), tonumber(ARGV[8]))
return {-#evicted, first, record}
"#;

/// ARGV: id. Answers `{delta, earliest, the removed record}` (nil, nil when there was none).
const REVOKE: &str = r#"
local record = remove(ARGV[1])
if not record then return {0, false, false} end
return {-1, settle(nil, nil), record}
"#;

/// No ARGV. Answers `{delta, earliest, how many were removed}`.
const REVOKE_USER: &str = r#"
local removed = 0
for _, id in ipairs(redis.call('HKEYS', S)) do
  if remove(id) then removed = removed + 1 end
end
if removed == 0 then return {0, false, 0} end
return {-removed, settle(nil, nil), removed}
"#;

/// ARGV: now (ms), grace (ms). Removes what expired at or before now. Answers `{delta,
/// earliest, how many sessions were removed}`.
const PRUNE: &str = r#"
local removed = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', E, '-inf', ARGV[1])) do
  if #member == 12 then
    if remove(member) then removed = removed + 1 end
  else
    redis.call('HDEL', T, member)
    redis.call('ZREM', E, member)
  end
end
return {-removed, settle(tonumber(ARGV[1]), tonumber(ARGV[2])), removed}
"#;

/// ARGV: a rotated-away token's field, its value, its expiry (score), the rotation time
/// (ms), grace (ms): remembers it as a rotation would have (for migration). Answers `{0,
/// earliest, 1}`.
const REMEMBER: &str = r#"
redis.call('HSET', T, ARGV[1], ARGV[2])
redis.call('ZADD', E, ARGV[3], ARGV[1])
return {0, settle(tonumber(ARGV[4]), tonumber(ARGV[5])), 1}
"#;

/// ARGV: a refresh token's field. Answers `{id, record}` of the session holding it, or nil.
const FIND_REFRESH: &str = r#"
local value = redis.call('HGET', T, ARGV[1])
if not value then return false end
local id = string.sub(value, 1, 12)
local record = redis.call('HGET', S, id)
if not record then return false end
return {id, record}
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

pub(super) static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CREATE));
pub(super) static ROTATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(ROTATE));
pub(super) static REVOKE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REVOKE));
pub(super) static REVOKE_USER_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REVOKE_USER));
pub(super) static PRUNE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(PRUNE));
pub(super) static REMEMBER_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REMEMBER));
pub(super) static FIND_REFRESH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FIND_REFRESH));
