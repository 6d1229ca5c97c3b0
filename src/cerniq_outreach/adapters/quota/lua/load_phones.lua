-- load_phones.lua: replace a tenant's phones and restore counters, atomically.
--
-- QuotaGuardian.load_phones: the phone hash is replaced as a whole (phones left out are
-- gone) and marked loaded (field ''), and each given counter is raised to at least its
-- value (never lowered: a restore must not hand back quota that was used).
--
-- KEYS[1]     <base>phones             hash phone id -> "STATUS|limit|warmup ordinal"
-- KEYS[2..]   <base>used:<day>:<phone> counters to restore
--   (<base> is "<prefix>{<tenant>}:": every key shares the tenant's hash tag.)
-- ARGV[1]     counter ttl in seconds
-- ARGV[2]     n: how many phone arguments follow (2 per phone: id, settings)
-- ARGV[3..2+n]           phone id, settings, phone id, settings, ...
-- ARGV[3+n..]            the usage for KEYS[2..], in the same order
--
-- Reply: 1.

local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
-- A new generation, never one used before: reserve_any.lua caches each day's limits under
-- the generation, and a cache of the old phones must not be read for the new ones.
local generation = tonumber(redis.call('HGET', KEYS[1], '') or '0') + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '', generation, unpack(ARGV, 3, 2 + n))
for i = 2, #KEYS do
  local want = tonumber(ARGV[n + i + 1])
  local have = tonumber(redis.call('GET', KEYS[i]) or '0')
  if want > have then
    redis.call('SET', KEYS[i], want, 'EX', ttl)
  end
end
return 1
