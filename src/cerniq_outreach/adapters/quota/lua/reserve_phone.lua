-- reserve_phone.lua: decide one WhatsApp send on a named phone and count it, atomically.
--
-- domain.quota_ledger.reserve with a phone id: status, business hours (decided by the
-- caller in Python, DST and all, and passed as a flag), the day's limit with the warm-up
-- ramp, and the increment happen in this one script, so no interleaving of callers can
-- take a phone past its limit. Runs after quota_lib.lua (prepended by the adapter).
--
-- KEYS[1]  <base>phones                hash phone id -> "STATUS|limit|warmup ordinal",
--                                      and '' -> '1' once the tenant is loaded
-- KEYS[2]  <base>used:<day>:<phone>    the phone's new conversations on local day <day>
-- KEYS[3]  <base>held:<day>:<lead>     the phone holding the lead's reservation of <day>
--   (<base> is "<prefix>{<tenant>}:": every key carries the tenant's hash tag, one slot.)
-- ARGV[1]  <base>used:<day>:           prefix of the day's counters; the counter of the
--                                      lead's previous phone is derived from it (same hash
--                                      tag, so the same slot as KEYS[1]: legal on Cluster)
-- ARGV[2]  phone id
-- ARGV[3]  "cost|today|open|start|ceiling|days|ttl" (see `context` in quota_lib.lua)
-- ARGV[4]  <base>active:               prefix of the day's ranking (see `ranking` in
--                                      quota_lib.lua), kept in step with the counters
--
-- Reply: {'NOT_LOADED'} when the tenant is not loaded (the adapter reloads and retries),
-- else {verdict, phone id, used, limit, reserved}: verdict 'OK' or a QuotaRefusal name;
-- used is the count after this send when allowed; reserved 1 when the lead holds a
-- reservation on the phone after this call (the answer then carries it).
--
-- Four commands on the usual path (HMGET, MGET, INCR, SET): each command a script runs
-- costs about a microsecond of the server's single thread, so reads are batched.

local phone_id = ARGV[2]
local found = redis.call('HMGET', KEYS[1], '', phone_id)
if not found[1] then
  return {'NOT_LOADED'}
end
local raw = found[2]
if not raw or phone_id == '' then  -- '' names the loaded marker, never a phone
  return {'PHONE_NOT_ACTIVE', phone_id, 0, 0, 0}
end
local c = context(ARGV[3])
local used, held_on
if c.cost > 0 then
  local got = redis.call('MGET', KEYS[2], KEYS[3])
  used, held_on = got[1], got[2]
else
  used, held_on = redis.call('GET', KEYS[2]), false
end
-- Only a new conversation changes counters (and so the ranking): a follow-up needs no name.
return judge(phone_id, raw, used, KEYS[2], KEYS[3], held_on, ARGV[1], c,
  c.cost > 0 and ranking(ARGV[4], found[1], c))
