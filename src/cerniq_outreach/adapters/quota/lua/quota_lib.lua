-- quota_lib.lua: the functions reserve_phone.lua, reserve_any.lua and release.lua share.
--
-- Not a script of its own: the adapter (redis_calls.py) puts this text in front of each of
-- those scripts before SCRIPT LOAD, so the warm-up formula, the verdict and the uncount are
-- written once. It reads and writes only keys its caller hands it.
--
-- Phone settings live in one hash per tenant, field = phone id, value = "STATUS|limit|warmup"
-- where warmup is the ordinal (Python's date.toordinal()) of the ramp's day 1, or empty for a
-- fully warmed number. The field '' (no phone id is empty) marks the tenant as loaded: a
-- Redis that restarted empty has lost it, and the scripts then answer NOT_LOADED.
--
-- Lua numbers are doubles: every count, limit and ordinal here is an integer far below 2^53,
-- so the arithmetic is exact, and math.floor of a quotient of two such non-negative
-- integers is their integer quotient (a non-integral quotient is at least 1/divisor away
-- from an integer, far more than the rounding error).

local ACTIVE = 'ACTIVE'

-- "STATUS|limit|warmup" -> status, daily limit, warm-up ordinal (nil when fully warmed)
local function settings(raw)
  local status, limit, warmup = string.match(raw, '^([^|]*)|(%d+)|(%d*)$')
  return status, tonumber(limit), tonumber(warmup)
end

-- WarmupRamp.limit_on followed by quota.effective_limit: today's limit, and whether the
-- ramp (rather than the phone's own limit) is what binds.
local function effective_limit(daily_limit, warmup, today, ramp)
  if not warmup then  -- fully warmed: the ceiling caps it, but as its quota, not a warm-up
    return math.min(daily_limit, ramp.ceiling), false
  end
  local ramped
  local day = today - warmup + 1
  if day <= 1 then
    ramped = ramp.start
  elseif day >= ramp.days then
    ramped = ramp.ceiling
  else
    ramped = ramp.start
      + math.floor((ramp.ceiling - ramp.start) * (day - 1) / (ramp.days - 1))
  end
  if ramped < daily_limit then
    return ramped, true
  end
  return daily_limit, false
end

-- THE DAY'S RANKING <base>active:<generation>:<today>:<ramp>:rank is a sorted set of the
-- day's ACTIVE phones scored used - limit (minus the quota left), plus a member '' scored
-- +inf that says it is built. Its first member is the phone with the most quota left, ties
-- to the smallest id (members of equal score sort by their bytes): reserve_any.lua's
-- choice in one ZRANGE. Every change of a counter of that day updates it here (XX: only a
-- ranking that exists, only a member in it, so an inactive phone never enters), and a
-- phone change starts a new generation, hence a new ranking built from the counters.
-- The day's cache (reserve_any.lua) is named like its ranking without the ':rank'; the ramp
-- is part of both names, so a process configured with another ramp has its own.
local function day_cache(active_prefix, generation, c)
  return table.concat(
    {active_prefix .. generation, c.today, c.ramp.start, c.ramp.ceiling, c.ramp.days}, ':')
end

local function ranking(active_prefix, generation, c)
  return day_cache(active_prefix, generation, c) .. ':rank'
end

local function rerank(rank_key, phone_id, by)
  if rank_key then
    redis.call('ZADD', rank_key, 'XX', 'INCR', by, phone_id)
  end
end

-- quota_ledger._uncount: one new conversation fewer; a count that reaches 0 disappears.
local function uncount(used_key, rank_key, phone_id)
  if redis.call('DECR', used_key) <= 0 then
    redis.call('DEL', used_key)
  end
  rerank(rank_key, phone_id, -1)
end

-- The ledger's verdict on a known phone, counting the send when it is allowed and new.
-- `raw` is the phone's settings, `used` its counter's value (false when missing), `held_on`
-- the phone the lead's reservation of the day is on (false: none, or a follow-up, for
-- which the ledger does not look), `rank_key` the day's ranking to keep in step.
-- Reply: {verdict, phone, used, limit, reserved}, verdict
-- 'OK' or a QuotaRefusal name; reserved 1 when the answer carries the lead's reservation.
local function judge(phone_id, raw, used, used_key, held_key, held_on, used_prefix, c, rank_key)
  local cost = c.cost
  local status, daily_limit, warmup = settings(raw)
  used = tonumber(used or '0')
  local limit, warming = effective_limit(daily_limit, warmup, c.today, c.ramp)
  -- Counted already today: judged as a follow-up (status and hours), counted nothing.
  local held_here = held_on == phone_id
  if held_here then
    cost = 0
  end
  if status ~= ACTIVE then
    return {'PHONE_NOT_ACTIVE', phone_id, used, limit, 0}
  end
  if not c.open then
    return {'OUTSIDE_BUSINESS_HOURS', phone_id, used, limit, 0}
  end
  if cost > 0 and used + cost > limit then
    if warming then
      return {'WARMUP_LIMIT', phone_id, used, limit, 0}
    end
    return {'QUOTA_EXCEEDED', phone_id, used, limit, 0}
  end
  if held_here then
    return {'OK', phone_id, used, limit, 1}
  end
  if cost == 0 then
    return {'OK', phone_id, used, limit, 0}
  end
  if held_on then
    -- The lead's reservation moves here (its old phone left the pool): the old phone gets
    -- its count back, so a lead holds one new conversation a day.
    uncount(used_prefix .. held_on, rank_key, held_on)
  end
  -- INCR changes the number in place; a SET with EX would rewrite the value and expiry.
  if redis.call('INCR', used_key) == 1 then
    redis.call('EXPIRE', used_key, c.ttl)
  end
  rerank(rank_key, phone_id, 1)
  redis.call('SET', held_key, phone_id, 'EX', c.ttl)
  return {'OK', phone_id, used + cost, limit, 1}
end

-- The decision's context, one argument "cost|today|open|start|ceiling|days|ttl": the cost
-- (0|1), today's date.toordinal(), open (1|0), the ramp's start, ceiling and days, and the
-- counters' ttl in seconds. One argument rather than seven: a client packs each argument
-- in Python, and on a busy asyncio client that costs more than this match on the server.
local function context(arg)
  local cost, today, open, start, ceiling, days, ttl =
    string.match(arg, '^(%d+)|(%d+)|(%d)|(%d+)|(%d+)|(%d+)|(%d+)$')
  return {
    cost = tonumber(cost),
    today = tonumber(today),
    open = open == '1',
    ramp = {start = tonumber(start), ceiling = tonumber(ceiling), days = tonumber(days)},
    ttl = tonumber(ttl),
  }
end
