"""The WhatsApp quota policy: limits, warm-up, refusals and phone choice (domain.md).

These are the verdicts every quota guardian adapter must reproduce atomically.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand
from cerniq_outreach.domain.quota import (
    PhoneQuotaView,
    WarmupRamp,
    choose_phone,
    decide,
    effective_limit,
    message_cost,
    remaining,
    send_jitter,
)

HOURS = BusinessHours()
BUCHAREST = ZoneInfo(HOURS.zone)
QUOTA_REASONS = {QuotaRefusal.QUOTA_EXCEEDED, QuotaRefusal.WARMUP_LIMIT}

days = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
statuses = st.sampled_from(PhoneStatus)
costs = st.sampled_from([0, 1])


@st.composite
def ramps(draw: st.DrawFn) -> WarmupRamp:
    """A valid warm-up ramp, small enough that a day's sends reach its limit."""
    start = draw(st.integers(min_value=1, max_value=6))
    ceiling = draw(st.integers(min_value=start, max_value=15))
    length = draw(st.integers(min_value=2, max_value=10))
    return WarmupRamp(start=start, ceiling=ceiling, days=length)


@st.composite
def phones(draw: st.DrawFn, today: date, phone_id: str | None = None) -> PhoneQuotaView:
    """A phone with any status, a small limit, maybe warming up, with some use today."""
    warm = st.integers(min_value=-40, max_value=2).map(lambda n: today + timedelta(days=n))
    return PhoneQuotaView(
        phone_id=phone_id or draw(st.sampled_from(["phone-1", "phone-2", "phone-3"])),
        status=draw(statuses),
        daily_limit=draw(st.integers(min_value=0, max_value=15)),
        warmup_started=draw(st.none() | warm),
        used_today=draw(st.integers(min_value=0, max_value=20)),
    )


@st.composite
def instants_on(draw: st.DrawFn, day: date) -> datetime:
    """Any instant of the local Bucharest date `day` (inside or outside business hours)."""
    start = datetime.combine(day, time(0), BUCHAREST).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), BUCHAREST).astimezone(UTC)
    return start + draw(
        st.timedeltas(min_value=timedelta(0), max_value=end - start - timedelta(microseconds=1))
    )


def test_a_new_contact_costs_one_and_a_follow_up_nothing():
    """Only the lead's first WhatsApp message ever starts a (counted) conversation."""
    assert message_cost(is_first_whatsapp_message_ever=True) == 1
    assert message_cost(is_first_whatsapp_message_ever=False) == 0


@given(st.data(), days, ramps(), st.lists(costs, max_size=40))
def test_a_day_of_decisions_never_lets_a_phone_exceed_its_limit(data, day, ramp, sends):
    """Whatever the order of new contacts and follow-ups, used never passes the day's limit."""
    phone = replace(data.draw(phones(day)), status=PhoneStatus.ACTIVE, used_today=0)
    limit, _ = effective_limit(phone, day, ramp)
    times = sorted(data.draw(st.lists(instants_on(day), min_size=len(sends), max_size=len(sends))))
    allowed_new = 0
    for cost, at in zip(sends, times, strict=True):
        verdict = decide(phone, cost, at, HOURS, ramp)
        assert verdict.limit == limit
        if verdict.allowed:
            assert verdict.used == phone.used_today + cost
            allowed_new += cost
            phone = replace(phone, used_today=verdict.used)
        else:
            assert verdict.used == phone.used_today
        assert phone.used_today <= limit
        assert phone.used_today <= ramp.limit_on(phone.warmup_started, day)
    open_new = sum(c for c, at in zip(sends, times, strict=True) if HOURS.is_open(at))
    assert allowed_new == min(limit, open_new)  # refused only when truly full


@given(st.data(), days, ramps(), costs)
def test_verdict_checks_status_then_hours_then_quota(data, day, ramp, cost):
    """Inactive phones, closed hours and a full quota are refused in that order, with a reason."""
    phone = data.draw(phones(day))
    at = data.draw(instants_on(day))
    verdict = decide(phone, cost, at, HOURS, ramp)
    limit, warming = effective_limit(phone, day, ramp)
    if phone.status is not PhoneStatus.ACTIVE:
        assert verdict.reason is QuotaRefusal.PHONE_NOT_ACTIVE
        assert verdict.retry_at is None
    elif not HOURS.is_open(at):
        assert verdict.reason is QuotaRefusal.OUTSIDE_BUSINESS_HOURS
        assert verdict.retry_at == HOURS.next_open(at)
    elif cost == 1 and phone.used_today >= limit:
        expected = QuotaRefusal.WARMUP_LIMIT if warming else QuotaRefusal.QUOTA_EXCEEDED
        assert verdict.reason is expected
        assert verdict.retry_at == HOURS.next_day_start(at)
    else:
        assert verdict.allowed
        assert verdict.reason is None
        assert verdict.used == phone.used_today + cost
    assert verdict.allowed is (verdict.reason is None)
    assert verdict.phone_id == phone.phone_id


@given(st.data(), days, ramps())
def test_follow_ups_are_never_refused_for_quota(data, day, ramp):
    """A follow-up (cost 0) on an ACTIVE phone in business hours passes even over the limit."""
    phone = data.draw(phones(day))
    at = data.draw(instants_on(day))
    verdict = decide(phone, 0, at, HOURS, ramp)
    assert verdict.reason not in QUOTA_REASONS
    if phone.status is PhoneStatus.ACTIVE and HOURS.is_open(at):
        assert verdict.allowed
        assert verdict.used == phone.used_today


@given(st.data(), days, ramps(), costs)
def test_a_refusal_says_when_to_retry_inside_a_later_window(data, day, ramp, cost):
    """Every refusal but an inactive phone names a retry time in the future and in a window."""
    phone = data.draw(phones(day))
    at = data.draw(instants_on(day))
    verdict = decide(phone, cost, at, HOURS, ramp)
    if verdict.allowed or verdict.reason is QuotaRefusal.PHONE_NOT_ACTIVE:
        return
    assert verdict.retry_at is not None
    assert verdict.retry_at > at
    assert HOURS.is_open(verdict.retry_at)
    if verdict.reason in QUOTA_REASONS:
        assert HOURS.local_date(verdict.retry_at) > day  # today's counter is spent


@given(ramps(), days)
def test_warmup_ramp_starts_at_start_rises_monotonically_and_reaches_the_ceiling(ramp, started):
    """Day 1 is `start`, the limit never falls, and from day `days` on it is the ceiling."""
    limits = [ramp.limit_on(started, started + timedelta(days=n)) for n in range(ramp.days + 5)]
    assert limits[0] == ramp.start
    assert limits == sorted(limits)
    assert all(ramp.start <= limit <= ramp.ceiling for limit in limits)
    assert limits[ramp.days - 1] == ramp.ceiling
    assert limits[ramp.days - 2] < ramp.ceiling or ramp.start == ramp.ceiling
    assert ramp.limit_on(None, started) == ramp.ceiling


def test_default_ramp_goes_from_20_to_200_over_three_weeks():
    """The default warm-up: 20 new conversations on day 1, 200 from day 21."""
    ramp = WarmupRamp()
    started = date(2026, 3, 2)
    assert ramp.limit_on(started, started) == 20
    assert ramp.limit_on(started, started + timedelta(days=1)) == 29
    assert ramp.limit_on(started, started + timedelta(days=19)) == 191
    assert ramp.limit_on(started, started + timedelta(days=20)) == 200
    assert ramp.limit_on(started, started - timedelta(days=3)) == 20


@given(st.data(), days, ramps())
def test_effective_limit_is_the_lower_of_phone_limit_and_ramp(data, day, ramp):
    """The ramp binds (WARMUP_LIMIT) only on a warming phone, below the phone's own limit.

    A fully warmed phone is capped by the ceiling too, but that is its quota, not warm-up.
    """
    phone = data.draw(phones(day))
    limit, warming = effective_limit(phone, day, ramp)
    ramped = ramp.limit_on(phone.warmup_started, day)
    assert limit == min(phone.daily_limit, ramped)
    assert warming is (phone.warmup_started is not None and ramped < phone.daily_limit)


@given(st.data(), days, ramps(), st.permutations(["phone-1", "phone-2", "phone-3", "phone-4"]))
def test_choose_phone_picks_an_active_phone_with_the_most_quota_left(data, day, ramp, ids):
    """The chosen phone is ACTIVE, has maximal room (ties: smallest id), else None."""
    pool = [data.draw(phones(day, phone_id)) for phone_id in ids]
    at = data.draw(instants_on(day))
    chosen = choose_phone(pool, at, HOURS, ramp)
    room = {p.phone_id: remaining(p, day, ramp) for p in pool if p.status is PhoneStatus.ACTIVE}
    if not any(room.values()):
        assert chosen is None
        return
    assert chosen is not None
    assert chosen.status is PhoneStatus.ACTIVE
    best = max(room.values())
    assert room[chosen.phone_id] == best
    assert chosen.phone_id == min(pid for pid, left in room.items() if left == best)
    assert choose_phone(reversed(pool), at, HOURS, ramp) == chosen  # order does not matter


@given(st.text(max_size=40), st.floats(0, 600), st.floats(0, 600))
def test_send_jitter_is_within_bounds_and_reproducible(key, first, second):
    """The same key always gives the same spacing, inside [low, high]."""
    low, high = sorted((first, second))
    jitter = send_jitter(key, low, high)
    assert low <= jitter <= high
    assert send_jitter(key, low, high) == jitter


def test_send_jitter_spreads_consecutive_messages_irregularly():
    """Spacings for a phone's successive messages differ: no machine-regular rhythm."""
    gaps = [send_jitter(f"phone-1:msg-{n}", 20, 90) for n in range(200)]
    assert len(set(gaps)) == len(gaps)
    assert min(gaps) < 30  # spread over the range, not clustered at one value
    assert max(gaps) > 80


@pytest.mark.parametrize("config", [{"start": 0}, {"start": 201}, {"days": 0}, {"days": 1}])
def test_impossible_warmup_ramps_are_refused(config):
    """A ramp starting at 0 or above its ceiling, or too short to rise, is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        WarmupRamp(**config)


def test_a_message_costs_zero_or_one():
    """Any other cost is an invalid command, not a quota question."""
    phone = PhoneQuotaView(phone_id="phone-1", status=PhoneStatus.ACTIVE)
    with pytest.raises(InvalidCommand):
        decide(phone, 2, datetime(2026, 3, 2, 8, tzinfo=UTC), HOURS, WarmupRamp())


def test_jitter_bounds_must_be_ordered_and_not_negative():
    """Reversed or negative bounds are a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        send_jitter("k", 10, 5)
    with pytest.raises(ConfigurationError):
        send_jitter("k", -1, 5)
