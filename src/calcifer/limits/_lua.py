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

RESERVE_LEVELS = (
    _PRELUDE
    + """
-- KEYS: (window hash, holds) for each level. ARGV: now, units, reservation id, hold ttl, then for
-- each level its limit units and window ttl. All levels or none: returns {1} when the hold fits at
-- every level, else {0, index of the first level it does not fit, that level's total}.
local now = clock(ARGV[1])
local units = ARGV[2]
local n = #KEYS / 2
for i = 1, n do purge(KEYS[2 * i - 1], KEYS[2 * i], now) end
for i = 1, n do
  local h = KEYS[2 * i - 1]
  local limit = ARGV[3 + 2 * i]
  add(h, 'total', units, '')
  local total = redis.call('HGET', h, 'total') or '0'
  local fits = string.sub(total, 1, 1) == '-' or #total < #limit or (#total == #limit and total <= limit)
  if not fits then
    for j = 1, i do add(KEYS[2 * j - 1], 'total', units, '-') end
    for j = 1, n do expire(KEYS[2 * j - 1], KEYS[2 * j], ARGV[4 + 2 * j]) end
    return {0, i, redis.call('HGET', h, 'total') or '0'}
  end
end
for i = 1, n do
  add(KEYS[2 * i - 1], 'held', units, '')
  redis.call('ZADD', KEYS[2 * i], now + tonumber(ARGV[4]), ARGV[3] .. ':' .. units)
  expire(KEYS[2 * i - 1], KEYS[2 * i], ARGV[4 + 2 * i])
end
return {1}
"""
)

SETTLE_LEVELS = (
    _PRELUDE
    + """
-- KEYS: (window hash, holds) for each level. ARGV: hold member, held units, charged units
-- ('' = release), then each level's window ttl. Removes the hold at each level (at most once) and
-- charges the real cost there.
local n = #KEYS / 2
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', z, ARGV[1]) == 1 then
    add(h, 'total', ARGV[2], '-')
    add(h, 'held', ARGV[2], '-')
  end
  if ARGV[3] ~= '' then
    add(h, 'total', ARGV[3], '')
    add(h, 'settled', ARGV[3], '')
  end
  expire(h, z, ARGV[3 + i])
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

HIT = (
    _PRELUDE
    + """
-- KEYS: rate hash {w = window index, r = requests, t = tokens}. ARGV: now, rpm ('' = none),
-- tpm ('' = none), tokens, window seconds. Returns {allowed, requests, tokens, seconds to reset}.
local k = KEYS[1]
local now = clock(ARGV[1])
local span = tonumber(ARGV[5])
local index = math.floor(now / span)
local reset = (index + 1) * span - now
local state = redis.call('HMGET', k, 'w', 'r', 't')
local r, t = 0, 0
if state[1] and tonumber(state[1]) == index then
  r = tonumber(state[2]) or 0
  t = tonumber(state[3]) or 0
end
local tokens = tonumber(ARGV[4])
local allowed = 1
if ARGV[2] ~= '' and r + 1 > tonumber(ARGV[2]) then allowed = 0 end
if ARGV[3] ~= '' and t + tokens > tonumber(ARGV[3]) then allowed = 0 end
if allowed == 1 then
  r = r + 1
  t = t + tokens
  redis.call('HSET', k, 'w', string.format('%d', index), 'r', r, 't', t)
  redis.call('EXPIRE', k, 2 * span)
end
return {allowed, r, t, tostring(reset)}
"""
)

ADD_TOKENS = (
    _PRELUDE
    + """
-- KEYS: rate hash. ARGV: now, token delta (may be negative), window seconds.
local k = KEYS[1]
local now = clock(ARGV[1])
local span = tonumber(ARGV[3])
local index = math.floor(now / span)
local delta = tonumber(ARGV[2])
local state = redis.call('HMGET', k, 'w', 't')
if state[1] and tonumber(state[1]) == index then
  redis.call('HSET', k, 't', math.max((tonumber(state[2]) or 0) + delta, 0))
elseif delta > 0 then
  redis.call('HSET', k, 'w', string.format('%d', index), 'r', 0, 't', delta)
end
redis.call('EXPIRE', k, 2 * span)
return 1
"""
)
