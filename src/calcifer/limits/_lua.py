"""The Lua scripts of `RedisLimiter`: each check-and-update runs as one atomic script in Redis.

Money is counted in integer units of 1e-12 USD. Lua numbers are doubles, exact only up to 2**53
(about $9,007 at this scale), so money never passes through a Lua number: amounts travel as decimal
strings, Redis' own HINCRBY adds them as exact 64-bit integers, and the budget check compares the
resulting strings (by length, then lexically — exact for non-negative integers without leading
zeros, which is what Redis prints). Token and request counts stay far below 2**53 and use numbers.

Time comes from ARGV[1] (seconds since the epoch) or, when that is empty, from Redis' TIME, so that
replicas whose clocks differ still agree on rate windows and hold deadlines.

Budget window state: a hash {total, held, settled} (total = settled + held) and a sorted set of
holds, members "<reservation id>:<units>" scored by their deadline. Expired holds are purged before
every read or reserve, so a replica that died mid-request cannot hold budget forever.
"""

from __future__ import annotations

_PRELUDE = """
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function add(key, field, units, sign)
  if units ~= '0' then redis.call('HINCRBY', key, field, sign .. units) end
end

local function purge(h, z, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, member in ipairs(gone) do
    local units = string.match(member, ':(%d+)$')
    add(h, 'total', units, '-')
    add(h, 'held', units, '-')
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end

local function expire(h, z, ttl)
  if ttl ~= '' then
    redis.call('EXPIRE', h, ttl)
    redis.call('EXPIRE', z, ttl)
  end
end
"""

ADMIT = (
    _PRELUDE
    + """
-- One request's admission, all or nothing. KEYS: the rate hash {w = window index, r = requests,
-- t = tokens} of each of nr rates, then (window hash, holds) for each budget level. ARGV: now, tokens,
-- rate window seconds, nr, then each rate's rpm and tpm ('' = none); then, when there are budget
-- levels: units, reservation id, hold ttl, then each level's limit units and window ttl.
-- Returns {0, index of the first rate that refuses, its requests, its tokens, seconds to reset} or
-- {2, index of the first level the hold does not fit in, that level's total}, having changed no
-- counter and held nothing; else {1, seconds to reset, then each rate's requests and tokens}.
local now = clock(ARGV[1])
local tokens = tonumber(ARGV[2])
local span = tonumber(ARGV[3])
local nr = tonumber(ARGV[4])
local index = math.floor(now / span)
local reset = tostring((index + 1) * span - now)
local counts = {}
for i = 1, nr do
  local state = redis.call('HMGET', KEYS[i], 'w', 'r', 't')
  local r, t = 0, 0
  if state[1] and tonumber(state[1]) == index then
    r = tonumber(state[2]) or 0
    t = tonumber(state[3]) or 0
  end
  local rpm, tpm = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  if (rpm ~= '' and r + 1 > tonumber(rpm)) or (tpm ~= '' and t + tokens > tonumber(tpm)) then
    return {0, i, r, t, reset}
  end
  counts[i] = {r + 1, t + tokens}
end
local b = 5 + 2 * nr
local n = (#KEYS - nr) / 2
if n > 0 then
  local units = ARGV[b]
  for i = 1, n do purge(KEYS[nr + 2 * i - 1], KEYS[nr + 2 * i], now) end
  for i = 1, n do
    local h = KEYS[nr + 2 * i - 1]
    local limit = ARGV[b + 1 + 2 * i]
    add(h, 'total', units, '')
    local total = redis.call('HGET', h, 'total') or '0'
    local fits = string.sub(total, 1, 1) == '-' or #total < #limit or (#total == #limit and total <= limit)
    if not fits then
      for j = 1, i do add(KEYS[nr + 2 * j - 1], 'total', units, '-') end
      for j = 1, n do expire(KEYS[nr + 2 * j - 1], KEYS[nr + 2 * j], ARGV[b + 2 + 2 * j]) end
      return {2, i, redis.call('HGET', h, 'total') or '0'}
    end
  end
  for i = 1, n do
    add(KEYS[nr + 2 * i - 1], 'held', units, '')
    redis.call('ZADD', KEYS[nr + 2 * i], now + tonumber(ARGV[b + 2]), ARGV[b + 1] .. ':' .. units)
    expire(KEYS[nr + 2 * i - 1], KEYS[nr + 2 * i], ARGV[b + 2 + 2 * i])
  end
end
local reply = {1, reset}
for i = 1, nr do
  redis.call('HSET', KEYS[i], 'w', string.format('%d', index), 'r', counts[i][1], 't', counts[i][2])
  redis.call('EXPIRE', KEYS[i], 2 * span)
  reply[2 * i + 1] = counts[i][1]
  reply[2 * i + 2] = counts[i][2]
end
return reply
"""
)

FINISH = (
    _PRELUDE
    + """
-- One request's close. KEYS: (window hash, holds) for each of n budget levels, then rate hashes.
-- ARGV: now, token delta (may be negative), rate window seconds, n, hold member, held units, charged
-- units ('' = release), then each level's window ttl. Removes the hold at each level (at most once)
-- and charges the real cost there; then corrects each rate's token count in the current window.
local n = tonumber(ARGV[4])
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', z, ARGV[5]) == 1 then
    add(h, 'total', ARGV[6], '-')
    add(h, 'held', ARGV[6], '-')
  end
  if ARGV[7] ~= '' then
    add(h, 'total', ARGV[7], '')
    add(h, 'settled', ARGV[7], '')
  end
  expire(h, z, ARGV[7 + i])
end
local delta = tonumber(ARGV[2])
if delta ~= 0 and #KEYS > 2 * n then
  local span = tonumber(ARGV[3])
  local index = math.floor(clock(ARGV[1]) / span)
  for i = 2 * n + 1, #KEYS do
    local k = KEYS[i]
    local state = redis.call('HMGET', k, 'w', 't')
    if state[1] and tonumber(state[1]) == index then
      redis.call('HSET', k, 't', math.max((tonumber(state[2]) or 0) + delta, 0))
    elseif delta > 0 then
      redis.call('HSET', k, 'w', string.format('%d', index), 'r', 0, 't', delta)
    end
    redis.call('EXPIRE', k, 2 * span)
  end
end
return 1
"""
)

SPENT = (
    _PRELUDE
    + """
-- KEYS: window hash, holds. ARGV: now. Returns settled + held units as a string.
purge(KEYS[1], KEYS[2], clock(ARGV[1]))
return redis.call('HGET', KEYS[1], 'total') or '0'
"""
)

SEED = """
-- KEYS: window hash. ARGV: units already spent, window ttl. Only fills a window that has no state.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'settled', ARGV[1], 'held', '0')
if ARGV[2] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
