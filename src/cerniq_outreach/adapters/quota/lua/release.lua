-- release.lua: give back a reservation's new conversation, once.
--
-- domain.quota_ledger.release: only while the lead's reservation of that day is still on
-- that phone; releasing twice, or after the reservation moved, changes nothing. Runs after
-- quota_lib.lua (prepended by the adapter) for `uncount`.
--
-- KEYS[1]  <base>held:<day>:<lead>     the phone holding the lead's reservation of <day>
-- KEYS[2]  <base>used:<day>:<phone>    that phone's counter of the day
--   (<base> is "<prefix>{<tenant>}:": both keys share the tenant's hash tag.)
-- ARGV[1]  phone id of the reservation
--
-- Reply: 1 when released, 0 when the reservation was not held.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
uncount(KEYS[2])
return 1
