-- set_phone.lua: add or change one phone's settings, and start a new generation.
--
-- KEYS[1]  <base>phones   hash phone id -> "STATUS|limit|warmup ordinal", '' -> generation
-- ARGV[1]  phone id
-- ARGV[2]  "STATUS|limit|warmup ordinal"
--
-- Reply: the new generation. The generation (the '' field, present once the tenant is
-- loaded) names reserve_any.lua's cache of each day's limits; a new one retires the old
-- cache, so no decision ever reads limits from before this change.

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HINCRBY', KEYS[1], '', 1)
