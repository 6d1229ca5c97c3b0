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
-- THE DAY'S CACHE <base>active:<generation>:<today>:<ramp> lists the ACTIVE phones in byte
-- order of their ids: their counter keys, then their limits, then warming flags ('1'|'0'),
-- everything the choice needs
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

-- The ACTIVE phones of the day, in id order, as one flat list of three runs of n entries:
-- the n counter keys (for one MGET as they stand), the n limits, the n warming flags.
local function active_phones(cache_key, used_prefix, c)
  local flat = redis.call('HGETALL', KEYS[1])
  local ids, rows = {}, {}
  for i = 1, #flat, 2 do
    local phone_id = flat[i]
    if phone_id ~= '' then
      local status, daily_limit, warmup = settings(flat[i + 1])
      if status == ACTIVE then
        local limit, warming = effective_limit(daily_limit, warmup, c.today, c.ramp)
        ids[#ids + 1] = phone_id
        rows[phone_id] = {limit, warming and '1' or '0'}
      end
    end
  end
  table.sort(ids, before)
  local n, list = #ids, {}
  for i, phone_id in ipairs(ids) do
    list[i] = used_prefix .. phone_id
    list[n + i] = tostring(rows[phone_id][1])
    list[2 * n + i] = rows[phone_id][2]
  end
  if n > 0 then
    redis.call('RPUSH', cache_key, unpack(list))
  else
    redis.call('RPUSH', cache_key, '')  -- no ACTIVE phone today: cached as one empty key
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

-- The ramp is part of the name: a process configured with another ramp has its own cache.
local cache_key = table.concat(
  {ARGV[3] .. generation, c.today, c.ramp.start, c.ramp.ceiling, c.ramp.days}, ':')
local list = redis.call('LRANGE', cache_key, 0, -1)
if #list == 0 then
  list = active_phones(cache_key, used_prefix, c)
elseif list[1] == '' then
  list = {}
end
local n = #list / 3

-- One MGET for the lead's reservation of the day (new conversations only: the ledger does
-- not look for a follow-up) and every counter. Each command a script runs costs the server
-- microseconds of its single thread, so this path runs five: HGET, LRANGE, MGET, INCR, SET.
local counts, first = {}, 1
local held_on = false
if c.cost > 0 then
  counts = redis.call('MGET', KEYS[2], unpack(list, 1, n))
  held_on, first = counts[1], 2
elseif n > 0 then
  counts = redis.call('MGET', unpack(list, 1, n))
end
if n == 0 then
  return {'PHONE_NOT_ACTIVE', false, 0, 0, 0}
end

-- The cache holds ACTIVE phones only, so a held phone found in it is ACTIVE: the ledger
-- keeps the lead there, judged as a follow-up (counted already today).
if held_on then
  local held_key = used_prefix .. held_on
  for i = 1, n do
    if list[i] == held_key then
      local used, limit = tonumber(counts[first - 1 + i] or '0'), tonumber(list[n + i])
      if not c.open then
        return {'OUTSIDE_BUSINESS_HOURS', held_on, used, limit, 0}
      end
      return {'OK', held_on, used, limit, 1}
    end
  end
end

local best, best_left, best_used = nil, -1, 0
local used_sum, limit_sum, all_warming = 0, 0, true
for i = 1, n do
  local used = tonumber(counts[first - 1 + i] or '0')
  local limit = tonumber(list[n + i])
  local left = limit - used
  if left < 0 then
    left = 0
  end
  used_sum = used_sum + used
  limit_sum = limit_sum + limit
  all_warming = all_warming and list[2 * n + i] == '1'
  -- Strict: phones come in id order, so among equals the smallest id stays chosen.
  if left >= c.cost and left > best_left then
    best, best_left, best_used = i, left, used
  end
end

if best then
  -- judge() of quota_lib.lua for a phone known ACTIVE with room for the cost: only the
  -- hours can still refuse it.
  local used_key = list[best]
  local phone_id = string.sub(used_key, #used_prefix + 1)
  local limit = tonumber(list[n + best])
  if not c.open then
    return {'OUTSIDE_BUSINESS_HOURS', phone_id, best_used, limit, 0}
  end
  if c.cost == 0 then
    return {'OK', phone_id, best_used, limit, 0}
  end
  if held_on then
    -- The lead's reservation moves here (its old phone left the pool): the old phone gets
    -- its count back, so a lead holds one new conversation a day.
    uncount(used_prefix .. held_on)
  end
  if redis.call('INCR', used_key) == 1 then
    redis.call('EXPIRE', used_key, c.ttl)
  end
  redis.call('SET', KEYS[2], phone_id, 'EX', c.ttl)
  return {'OK', phone_id, best_used + c.cost, limit, 1}
end
-- _refuse_any, in decide's order of checks: status (handled above), hours, then the limit.
if not c.open then
  return {'OUTSIDE_BUSINESS_HOURS', false, used_sum, limit_sum, 0}
end
if all_warming then
  return {'WARMUP_LIMIT', false, used_sum, limit_sum, 0}
end
return {'QUOTA_EXCEEDED', false, used_sum, limit_sum, 0}
