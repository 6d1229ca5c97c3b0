-- release.lua: give back a reservation's new conversation, once.
--
-- domain.quota_ledger.release: only while the lead's reservation of that day is still on
-- that phone; releasing twice, or after the reservation moved, changes nothing. Runs after
-- quota_lib.lua (prepended by the adapter) for `uncount`.
--
-- KEYS[1]  <base>held:<day>:<lead>     the phone holding the lead's reservation of <day>
-- KEYS[2]  <base>used:<day>:<phone>    that phone's counter of the day
--   (<base> is "<prefix>{<tenant>}:": both keys share the tenant's hash tag.)
-- KEYS[3]  <base>phones                the tenant's phones hash ('' -> generation)
-- ARGV[1]  phone id of the reservation
-- ARGV[2]  <base>active:               prefix of the day's ranking (see `ranking`)
-- ARGV[3]  "day|start|ceiling|days": the reservation's day as date.toordinal() and the
--          ramp, which name that day's ranking
--
-- Reply: 1 when released, 0 when the reservation was not held.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local rank_key = false
local generation = redis.call('HGET', KEYS[3], '')
if generation then
  local day, start, ceiling, days = string.match(ARGV[3], '^(%d+)|(%d+)|(%d+)|(%d+)$')
  rank_key = ranking(ARGV[2], generation,
    {today = day, ramp = {start = start, ceiling = ceiling, days = days}})
end
uncount(KEYS[2], rank_key, ARGV[1])
return 1
