-- token_bucket.lua: take tokens from a bucket, or say how long until they are there.
--
-- domain.rate_limit.take, step for step and in the same order of floating-point
-- operations (Lua numbers are IEEE doubles like Python floats), so the answers are equal
-- to the bit. Time is the caller's (ARGV[1]), never Redis TIME: a simulated clock drives it.
-- A bucket never seen starts full; time that runs backwards refills nothing.
--
-- KEYS[1]  <prefix>rate:{<bucket key>}  hash: tokens (a float as %.17g), updated (ms)
-- ARGV[1]  now, milliseconds since the epoch (rate_limit.to_ms)
-- ARGV[2]  capacity
-- ARGV[3]  period in seconds (Python repr of the float: it reads back exactly)
-- ARGV[4]  cost in tokens (1..capacity, checked by the caller)
-- ARGV[5]  expiry of an idle bucket in milliseconds (it is full again by then anyway)
--
-- Reply: the wait in seconds as a string ("%.17g", exact): "0" when the tokens were taken.

local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local refill = capacity / tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens, updated
if state[1] then
  tokens = tonumber(state[1])
  updated = tonumber(state[2])
  local elapsed = math.max(0, now - updated) / 1000.0
  tokens = math.min(capacity, tokens + elapsed * refill)
else
  tokens = capacity
  updated = 0
end
if tokens >= cost then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens - cost),
    'updated', string.format('%d', math.max(now, updated)))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return '0'
end
return string.format('%.17g', (cost - tokens) / refill)
