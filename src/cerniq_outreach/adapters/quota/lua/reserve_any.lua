-- reserve_any.lua: choose a phone for a lead, decide the send and count it, atomically.
--
-- domain.quota_ledger.reserve without a phone id: the lead's own reservation of the day if
-- it is on an ACTIVE phone, else the ACTIVE phone with the most quota left (at least the
-- cost), ties to the smallest id; then the same verdict as reserve_phone.lua. When no phone
-- can take it, the refusal is quota_ledger._refuse_any's (used and limit summed over the
-- ACTIVE phones). Runs after quota_lib.lua (prepended by the adapter).
--
-- KEYS[1]  <base>phones                hash phone id -> "STATUS|limit|warmup ordinal",
--                                      and '' -> the generation once the tenant is loaded
-- KEYS[2]  <base>held:<day>:<lead>     the phone holding the lead's reservation of <day>
--   (<base> is "<prefix>{<tenant>}:".)
-- ARGV[1]  <base>used:<day>:           prefix of the day's counters. Which phones exist is
--                                      known only inside the script, so their counters are
--                                      derived from this prefix rather than declared in
--                                      KEYS. They carry the tenant's hash tag like KEYS[1],
--                                      hence live in its slot: legal on Redis Cluster.
-- ARGV[2]  "cost|today|open|start|ceiling|days|ttl" (see `context` in quota_lib.lua)
-- ARGV[3]  <base>active:               prefix of the day's cache (below), same hash tag
--
-- THE DAY'S CACHE <base>active:<generation>:<today>:<ramp> is a list of the ACTIVE phones in byte
-- order of their ids, flattened as id, limit, warming (1|0): everything the choice needs
-- that does not change during a day until a phone changes. Built here the first time a
-- day asks (from the phones hash), expiring with the counters; a phone change starts a new
-- generation (set_phone.lua, load_phones.lua), so a stale cache is never read. With it,
-- a decision parses no settings, computes no ramp and compares no ids: phones come in id
-- order, so the first of equals wins by a strict `>`.
--
-- Reply: {'NOT_LOADED'}, or {verdict, phone id or nil, used, limit, reserved} as in
-- reserve_phone.lua (the phone is nil when no phone could take the send).

-- a < b in byte order, which is Python's str order for UTF-8. Lua's own `<` on strings
-- uses the server's locale (strcoll), which may order "phone-2" and "phone1" differently.
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- The ACTIVE phones as a flat, id-ordered list: id, limit, warming (see THE DAY'S CACHE).
local function active_phones(cache_key, c)
  local flat = redis.call('HGETALL', KEYS[1])
  local ids, rows = {}, {}
  for i = 1, #flat, 2 do
    local phone_id = flat[i]
    if phone_id ~= '' then
      local status, daily_limit, warmup = settings(flat[i + 1])
      if status == ACTIVE then
        local limit, warming = effective_limit(daily_limit, warmup, c.today, c.ramp)
        ids[#ids + 1] = phone_id
        rows[phone_id] = {limit, warming and 1 or 0}
      end
    end
  end
  table.sort(ids, before)
  local list = {}
  for _, phone_id in ipairs(ids) do
    list[#list + 1] = phone_id
    list[#list + 1] = rows[phone_id][1]
    list[#list + 1] = rows[phone_id][2]
  end
  if #list > 0 then
    redis.call('RPUSH', cache_key, unpack(list))
  else
    redis.call('RPUSH', cache_key, '')  -- no ACTIVE phone today: cached as one empty id
  end
  redis.call('EXPIRE', cache_key, c.ttl)
  return list
end

local generation = redis.call('HGET', KEYS[1], '')
if not generation then
  return {'NOT_LOADED'}
end
local used_prefix = ARGV[1]
local c = context(ARGV[2])

local held_on = false
if c.cost > 0 then
  held_on = redis.call('GET', KEYS[2])
end
if held_on then
  local raw = redis.call('HGET', KEYS[1], held_on)
  if raw and settings(raw) == ACTIVE then
    local key = used_prefix .. held_on
    return judge(held_on, raw, redis.call('GET', key), key, KEYS[2], held_on, used_prefix, c)
  end
end

-- The ramp is part of the name: a process configured with another ramp has its own cache.
local cache_key = table.concat(
  {ARGV[3] .. generation, c.today, c.ramp.start, c.ramp.ceiling, c.ramp.days}, ':')
local list = redis.call('LRANGE', cache_key, 0, -1)
if #list == 0 then
  list = active_phones(cache_key, c)
elseif list[1] == '' then
  list = {}
end
if #list == 0 then
  return {'PHONE_NOT_ACTIVE', false, 0, 0, 0}
end

local used_keys = {}
for i = 1, #list, 3 do
  used_keys[#used_keys + 1] = used_prefix .. list[i]
end
local counts = redis.call('MGET', unpack(used_keys))
local best, best_left = nil, -1
local used_sum, limit_sum, all_warming = 0, 0, true
for n = 1, #used_keys do
  local used = tonumber(counts[n] or '0')
  local limit = tonumber(list[3 * n - 1])
  local left = limit - used
  if left < 0 then
    left = 0
  end
  used_sum = used_sum + used
  limit_sum = limit_sum + limit
  all_warming = all_warming and tonumber(list[3 * n]) == 1  -- a string when cached
  -- Strict: phones come in id order, so among equals the smallest id stays chosen.
  if left >= c.cost and left > best_left then
    best, best_left = n, left
  end
end

if best then
  local phone_id = list[3 * best - 2]
  return judge(phone_id, redis.call('HGET', KEYS[1], phone_id), counts[best], used_keys[best],
    KEYS[2], held_on, used_prefix, c)
end
-- _refuse_any, in decide's order of checks: status (handled above), hours, then the limit.
if not c.open then
  return {'OUTSIDE_BUSINESS_HOURS', false, used_sum, limit_sum, 0}
end
if all_warming then
  return {'WARMUP_LIMIT', false, used_sum, limit_sum, 0}
end
return {'QUOTA_EXCEEDED', false, used_sum, limit_sum, 0}
