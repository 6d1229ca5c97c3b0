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
-- the refusal path parses no settings and computes no ramp. The usual path does not read
-- it at all: it takes the first of the day's ranking (see `ranking` in quota_lib.lua).
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
-- the n counter keys (for one MGET as they stand), the n limits, the n warming flags; and
-- the day's ranking (quota_lib.lua) from the same phones and their counters.
local function active_phones(cache_key, rank_key, used_prefix, c)
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
  local ranks = {'+inf', ''}  -- the member that says "built"
  if n > 0 then
    redis.call('RPUSH', cache_key, unpack(list))
    local counts = redis.call('MGET', unpack(list, 1, n))
    for i, phone_id in ipairs(ids) do
      ranks[#ranks + 1] = tonumber(counts[i] or '0') - rows[phone_id][1]
      ranks[#ranks + 1] = phone_id
    end
  else
    redis.call('RPUSH', cache_key, '')  -- no ACTIVE phone today: cached as one empty key
  end
  redis.call('ZADD', rank_key, unpack(ranks))
  redis.call('EXPIRE', cache_key, c.ttl)
  redis.call('EXPIRE', rank_key, c.ttl)
  return list
end

local generation = redis.call('HGET', KEYS[1], '')
if not generation then
  return {'NOT_LOADED'}
end
local used_prefix = ARGV[1]
local c = context(ARGV[2])
local cache_key = day_cache(ARGV[3], generation, c)
local rank_key = cache_key .. ':rank'

local top = redis.call('ZRANGE', rank_key, 0, 0, 'WITHSCORES')
if #top == 0 then
  active_phones(cache_key, rank_key, used_prefix, c)
  top = redis.call('ZRANGE', rank_key, 0, 0, 'WITHSCORES')
end
if top[1] == '' then
  return {'PHONE_NOT_ACTIVE', false, 0, 0, 0}  -- only the "built" member: none ACTIVE
end

-- The lead's reservation of the day (new conversations only: the ledger does not look for
-- a follow-up). A held phone in the ranking is ACTIVE: the ledger keeps the lead there,
-- judged as a follow-up (counted already today).
local held_on = false
if c.cost > 0 then
  held_on = redis.call('GET', KEYS[2])
end
if held_on then
  local score = redis.call('ZSCORE', rank_key, held_on)
  if score then
    local used = tonumber(redis.call('GET', used_prefix .. held_on) or '0')
    local limit = used - tonumber(score)
    if not c.open then
      return {'OUTSIDE_BUSINESS_HOURS', held_on, used, limit, 0}
    end
    return {'OK', held_on, used, limit, 1}
  end
end

-- The usual path: the first of the ranking has quota left. judge() of quota_lib.lua for a
-- phone known ACTIVE with room for the cost: only the hours can still refuse it.
local best, score = top[1], tonumber(top[2])
if score < 0 then
  local used_key = used_prefix .. best
  if not c.open or c.cost == 0 then
    local used = tonumber(redis.call('GET', used_key) or '0')
    if not c.open then
      return {'OUTSIDE_BUSINESS_HOURS', best, used, used - score, 0}
    end
    return {'OK', best, used, used - score, 0}
  end
  if held_on then
    -- The lead's reservation moves here (its old phone left the pool): the old phone gets
    -- its count back, so a lead holds one new conversation a day.
    uncount(used_prefix .. held_on, rank_key, held_on)
  end
  local used = redis.call('INCR', used_key)
  if used == 1 then
    redis.call('EXPIRE', used_key, c.ttl)
  end
  rerank(rank_key, best, 1)
  redis.call('SET', KEYS[2], best, 'EX', c.ttl)
  return {'OK', best, used, used - 1 - score, 1}
end

-- No phone has quota left (the first has none): a follow-up still goes to the phone the
-- ledger picks among the full ones, a new conversation is refused. Both need every phone,
-- as the ledger clips each phone's quota left at 0 and breaks the ties among them by id.
local list = redis.call('LRANGE', cache_key, 0, -1)
local n = #list / 3
local counts = redis.call('MGET', unpack(list, 1, n))
local used_sum, limit_sum, all_warming = 0, 0, true
for i = 1, n do
  used_sum = used_sum + tonumber(counts[i] or '0')
  limit_sum = limit_sum + tonumber(list[n + i])
  all_warming = all_warming and list[2 * n + i] == '1'
end
if c.cost == 0 then
  -- Every phone has 0 left: the smallest id (the list is in id order) takes it.
  local phone_id = string.sub(list[1], #used_prefix + 1)
  local used = tonumber(counts[1] or '0')
  local limit = tonumber(list[n + 1])
  if not c.open then
    return {'OUTSIDE_BUSINESS_HOURS', phone_id, used, limit, 0}
  end
  return {'OK', phone_id, used, limit, 0}
end
-- _refuse_any, in decide's order of checks: status (handled above), hours, then the limit.
if not c.open then
  return {'OUTSIDE_BUSINESS_HOURS', false, used_sum, limit_sum, 0}
end
if all_warming then
  return {'WARMUP_LIMIT', false, used_sum, limit_sum, 0}
end
return {'QUOTA_EXCEEDED', false, used_sum, limit_sum, 0}
