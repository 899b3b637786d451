//! The Lua scripts that change a user's sessions. Redis runs each script whole, with nothing
//! else in between, so every change (a login, a rotation, a revocation, a user's revocation,
//! a sweep) is one atomic step over the user's keys; with `appendfsync always` it is on disk
//! before Redis answers, and so before the gateway does.
//!
//! Every script takes the user's hash as `KEYS[1]` (see [`super::layout`]): its 12-byte
//! fields are sessions, the others tokens. Those that change something answer `{delta, index, score, rest}`: how
//! the number of sessions changed, and what the sweep's index of users should learn:
//! `lower` (the user now holds something expiring at `score`, perhaps earlier than the index
//! says), `set` (the user's earliest expiry is exactly `score`), `remove` (the user holds
//! nothing) or `keep`.

use std::sync::LazyLock;

use redis::Script;

/// The functions every script shares.
const PRELUDE: &str = r#"
local K = KEYS[1]
local MAX_TTL = 3153600000000

-- The session id a token field points at, or nil.
local function holder(field)
  local value = redis.call('HGET', K, field)
  if value then return string.sub(value, 1, 12) end
  return nil
end

-- Removes a session and those of its token fields that still point at it; its record, or
-- nil if there was none.
local function remove(id)
  local record = redis.call('HGET', K, id)
  if not record then return nil end
  redis.call('HDEL', K, id)
  local access = 'a' .. string.sub(record, 1, 16)
  if holder(access) == id then redis.call('HDEL', K, access) end
  local refresh = 'r' .. string.sub(record, 65, 80)
  if holder(refresh) == id then redis.call('HDEL', K, refresh) end
  redis.call('HDEL', K, 'l' .. id)
  return record
end

-- Writes a session, replacing any with its id and evicting any other that holds one of its
-- tokens (a token belongs to one session); the evicted ids.
local function put(id, record)
  remove(id)
  local access = 'a' .. string.sub(record, 1, 16)
  local refresh = 'r' .. string.sub(record, 65, 80)
  local evicted = {}
  for _, field in ipairs({access, refresh}) do
    local other = holder(field)
    if other and remove(other) then evicted[#evicted + 1] = other end
  end
  redis.call('HSET', K, id, record, access, id .. string.sub(record, 129, 136), refresh, id)
  return evicted
end

-- Whether the hash exists, before a change: a new one gets an expiry whatever.
local function existing()
  return redis.call('EXISTS', K) == 1
end

-- Keeps the hash at least until `grace` ms after `expiry`, reckoned from `now` (the
-- gateway's time of the change, so that the gateway's and Redis's clocks need not agree).
-- An expiry only grows; a hash kept for ever (an expiry past MAX_TTL) stays so.
local function extend(expiry, now, grace, existed)
  local ttl = math.floor(tonumber(expiry) - tonumber(now) + tonumber(grace))
  local have = redis.call('PTTL', K)
  if ttl > MAX_TTL then
    redis.call('PERSIST', K)
  elseif (have == -1 and not existed) or (have >= 0 and have < ttl) then
    redis.call('PEXPIRE', K, math.max(ttl, 1))
  end
end

-- After a removal: the index answer (Redis removes a hash left empty).
local function tidied()
  if redis.call('EXISTS', K) == 0 then return 'remove' end
  return 'keep'
end

-- An expiry, ms, from its 8 big-endian bytes.
local function ms(bytes)
  local value = struct.unpack('>i8', bytes)
  return value
end
"#;

/// ARGV: id, record, expiry (ms), now (ms), grace (ms). Answers `{delta, 'lower', expiry,
/// evicted ids}`.
const CREATE: &str = r#"
local existed = existing()
local had = redis.call('HEXISTS', K, ARGV[1])
local evicted = put(ARGV[1], ARGV[2])
extend(ARGV[3], ARGV[4], ARGV[5], existed)
return {1 - had - #evicted, 'lower', ARGV[3], evicted}
"#;

/// ARGV: id, new access hash, new refresh hash, new expiry (8 bytes), now (8 bytes), new
/// expiry (ms), now (ms), grace (ms). Answers `{delta, 'lower', earliest, new record}`, the
/// record nil (and the index kept) when there is no such session.
const ROTATE: &str = r#"
local id = ARGV[1]
local old = redis.call('HGET', K, id)
if not old then return {0, 'keep', false, false} end
local existed = existing()
local earliest = ARGV[6]
local old_refresh = string.sub(old, 65, 128)
if old_refresh ~= ARGV[3] then
  -- The old refresh token lives until the old expiry: remember it until then.
  local old_expiry = string.sub(old, 129, 136)
  redis.call('HSET', K, 'x' .. string.sub(old_refresh, 1, 16),
    id .. ARGV[5] .. old_expiry .. old_refresh)
  earliest = tostring(math.min(tonumber(earliest), ms(old_expiry)))
end
local record = ARGV[2] .. ARGV[3] .. ARGV[4] .. ARGV[5] .. string.sub(old, 145)
-- The last use stays with the session (taking it out forgets it).
local last = redis.call('HGET', K, 'l' .. id)
local evicted = put(id, record)
if last then redis.call('HSET', K, 'l' .. id, last) end
extend(ARGV[6], ARGV[7], ARGV[8], existed)
return {-#evicted, 'lower', earliest, record}
"#;

/// ARGV: id. Answers `{delta, index, false, the removed record}` (nil when there was none).
const REVOKE: &str = r#"
local record = remove(ARGV[1])
if not record then return {0, 'keep', false, false} end
return {-1, tidied(), false, record}
"#;

/// No ARGV. Answers `{delta, index, false, how many were removed}`.
const REVOKE_USER: &str = r#"
local removed = 0
for _, id in ipairs(redis.call('HKEYS', K)) do
  if #id == 12 and remove(id) then removed = removed + 1 end
end
if removed == 0 then return {0, 'keep', false, 0} end
return {-removed, tidied(), false, removed}
"#;

/// ARGV: now (ms). Removes the sessions and rotated-away tokens that expired at or before
/// now, reading each once. Answers `{delta, 'set' or 'remove', the earliest expiry left, how
/// many sessions were removed}`.
const PRUNE: &str = r#"
local now = tonumber(ARGV[1])
local removed, earliest = 0, nil
local function keep(expiry)
  if not earliest or expiry < earliest then earliest = expiry end
end
local fields = redis.call('HGETALL', K)
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  if #field == 12 then
    local expiry = ms(string.sub(value, 129, 136))
    if expiry <= now then
      if remove(field) then removed = removed + 1 end
    else
      keep(expiry)
    end
  elseif string.sub(field, 1, 1) == 'x' then
    local expiry = ms(string.sub(value, 21, 28))
    if expiry <= now then redis.call('HDEL', K, field) else keep(expiry) end
  end
end
if not earliest then
  redis.call('DEL', K)
  return {-removed, 'remove', false, removed}
end
return {-removed, 'set', string.format('%.0f', earliest), removed}
"#;

/// ARGV: a rotated-away token's field, its value, its expiry (ms), the rotation time (ms),
/// grace (ms): remembers it as a rotation would have (for migration). Answers `{0, 'lower',
/// expiry, 1}`.
const REMEMBER: &str = r#"
local existed = existing()
redis.call('HSET', K, ARGV[1], ARGV[2])
extend(ARGV[3], ARGV[4], ARGV[5], existed)
return {0, 'lower', ARGV[3], 1}
"#;

/// ARGV: pairs of a session id and a time (ms): records each as the session's last use,
/// unless a later one is recorded or the session is gone. Answers `{0, 'keep', false, 0}`.
const TOUCH: &str = r#"
for i = 1, #ARGV, 2 do
  local id, at = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('HEXISTS', K, id) == 1 then
    local recorded = tonumber(redis.call('HGET', K, 'l' .. id) or '0')
    if at > recorded then redis.call('HSET', K, 'l' .. id, ARGV[i + 1]) end
  end
end
return {0, 'keep', false, 0}
"#;

/// ARGV: a refresh token's field. Answers `{id, record}` of the session holding it, or nil.
const FIND_REFRESH: &str = r#"
local value = redis.call('HGET', K, ARGV[1])
if not value then return false end
local id = string.sub(value, 1, 12)
local record = redis.call('HGET', K, id)
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
pub(super) static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TOUCH));
pub(super) static FIND_REFRESH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(FIND_REFRESH));
