"""Business hours follow the local wall clock, across every DST switch of 2024-2030.

Instants are drawn around the spring and autumn switches of Europe/Bucharest (last Sunday
of March / October) and America/New_York (second Sunday of March / first of November). The
oracle is zoneinfo's own reading of the wall clock, never a fixed offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.errors import ConfigurationError

SWITCH_MONTHS = {"Europe/Bucharest": (3, 10), "America/New_York": (3, 11)}
ZONES = sorted(SWITCH_MONTHS)
EVERY_DAY = frozenset(range(7))
QUARTER = timedelta(minutes=15)
# Stepping finds every open interval only if the step is shorter than the shortest one; the
# shortest window any configuration below produces is 30 minutes.
STEP = timedelta(minutes=5)
MICRO = timedelta(microseconds=1)


@cache
def switch_day(zone: str, year: int, month: int) -> date:
    """The local date in `month` whose UTC offset differs at its end from its start."""
    tz = ZoneInfo(zone)
    day = date(year, month, 1)
    while day.month == month:
        start = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
        end = datetime.combine(day, time(23, 59), tzinfo=tz).utcoffset()
        if start != end:
            return day
        day += timedelta(days=1)
    msg = f"no DST switch in {zone} {year}-{month:02}"
    raise AssertionError(msg)


@st.composite
def around_switch(draw: st.DrawFn, zone: str, *, aligned: bool = False) -> datetime:
    """A UTC instant within four days of a DST switch of `zone` (on a quarter hour if aligned)."""
    year = draw(st.integers(min_value=2024, max_value=2030))
    month = draw(st.sampled_from(SWITCH_MONTHS[zone]))
    origin = datetime.combine(switch_day(zone, year, month) - timedelta(days=4), time(0), UTC)
    if aligned:
        return origin + QUARTER * draw(st.integers(min_value=0, max_value=8 * 96))
    return origin + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=8)))


@st.composite
def zone_and_instant(draw: st.DrawFn, *, aligned: bool = False) -> tuple[str, datetime]:
    """A zone and an instant near one of its DST switches."""
    zone = draw(st.sampled_from(ZONES))
    return zone, draw(around_switch(zone, aligned=aligned))


def wall(zone: str, at: datetime) -> datetime:
    """`at` as the local wall clock of `zone` reads it."""
    return at.astimezone(ZoneInfo(zone))


def assert_nothing_open_between(hours: BusinessHours, start: datetime, end: datetime) -> None:
    """No instant of [start, end) is open, sampled every STEP and just before `end`."""
    cursor = start
    while cursor < end:
        assert not hours.is_open(cursor), f"{cursor} is open before {end}"
        cursor += STEP
    if end > start:
        assert not hours.is_open(end - MICRO)


def test_every_drawn_month_holds_a_dst_switch():
    """The strategy's months really contain a switch in both zones, every year 2024-2030."""
    for zone, months in SWITCH_MONTHS.items():
        for year in range(2024, 2031):
            for month in months:
                day = switch_day(zone, year, month)
                assert day.weekday() == 6  # both zones switch on a Sunday


@given(zone_and_instant())
def test_is_open_agrees_with_the_local_wall_clock(sample):
    """Open exactly when the local clock shows Mon-Fri and a time in [09:00, 18:00)."""
    zone, at = sample
    local = wall(zone, at)
    expected = local.weekday() < 5 and time(9) <= local.time() < time(18)
    assert BusinessHours(zone=zone).is_open(at) is expected


@given(zone_and_instant())
def test_next_open_is_the_first_open_instant_at_or_after(sample):
    """next_open(at) is open, not before `at`, and nothing between them is open."""
    zone, at = sample
    hours = BusinessHours(zone=zone)
    opened = hours.next_open(at)
    assert opened.tzinfo is UTC
    assert opened >= at
    assert hours.is_open(opened)
    if hours.is_open(at):
        assert opened == at
    assert_nothing_open_between(hours, at, opened)


@given(zone_and_instant())
def test_next_open_from_closed_time_is_local_nine_on_a_weekday(sample):
    """From a closed instant, the next window starts at 09:00 local on a weekday."""
    zone, at = sample
    hours = BusinessHours(zone=zone)
    if hours.is_open(at):
        return
    local = wall(zone, hours.next_open(at))
    assert local.time() == time(9)
    assert local.weekday() < 5


@given(zone_and_instant())
def test_window_end_is_local_eighteen_after_next_open(sample):
    """The window holding next_open(at) closes at 18:00 local that same local day."""
    zone, at = sample
    hours = BusinessHours(zone=zone)
    opened, closed = hours.next_open(at), hours.window_end(at)
    assert opened < closed
    assert wall(zone, closed).time() == time(18)
    assert wall(zone, closed).date() == wall(zone, opened).date()
    assert hours.is_open(closed - MICRO)
    assert not hours.is_open(closed)


@given(zone_and_instant())
def test_windows_last_nine_hours_even_on_dst_days(sample):
    """Every window, on a switch Sunday too, is 09:00-18:00 local: exactly 9 real hours."""
    zone, at = sample
    hours = BusinessHours(zone=zone, days=EVERY_DAY)
    day = hours.local_date(at)
    ((start, end),) = hours.windows_on(day)
    assert end - start == timedelta(hours=9)
    assert wall(zone, start).replace(tzinfo=None) == datetime.combine(day, time(9))
    assert wall(zone, end).replace(tzinfo=None) == datetime.combine(day, time(18))


def test_bucharest_windows_shift_by_one_utc_hour_across_both_switches():
    """09:00 Bucharest is 07:00 UTC in winter and 06:00 UTC in summer, never a fixed offset."""
    hours = BusinessHours(days=EVERY_DAY)

    def utc_window(day: date, opens_utc: int) -> tuple[datetime, datetime]:
        start = datetime.combine(day, time(opens_utc), UTC)
        return start, start + timedelta(hours=9)

    assert hours.windows_on(date(2024, 3, 30)) == (utc_window(date(2024, 3, 30), 7),)
    assert hours.windows_on(date(2024, 3, 31)) == (utc_window(date(2024, 3, 31), 6),)
    assert hours.windows_on(date(2024, 10, 26)) == (utc_window(date(2024, 10, 26), 6),)
    assert hours.windows_on(date(2024, 10, 27)) == (utc_window(date(2024, 10, 27), 7),)


@given(zone_and_instant(), st.data())
def test_holidays_are_closed_all_day(sample, data):
    """A holiday has no window: no instant of it is open and next_open skips it."""
    zone, at = sample
    plain = BusinessHours(zone=zone)
    holiday = plain.local_date(plain.next_open(at))
    hours = BusinessHours(zone=zone, holidays=frozenset({holiday}))
    assert hours.windows_on(holiday) == ()
    probe = plain.next_open(at) + data.draw(st.timedeltas(timedelta(0), timedelta(hours=9)))
    if hours.local_date(probe) == holiday:
        assert not hours.is_open(probe)
    assert hours.local_date(hours.next_open(at)) > holiday
    assert hours.next_open(at) > plain.next_open(at)


@given(zone_and_instant())
def test_next_day_start_opens_a_later_local_day(sample):
    """next_day_start(at) is the first window start on a local day after the day of `at`."""
    zone, at = sample
    hours = BusinessHours(zone=zone)
    fresh = hours.next_day_start(at)
    assert fresh > at
    assert hours.is_open(fresh)
    assert hours.local_date(fresh) > hours.local_date(at)
    assert wall(zone, fresh).time() == time(9)
    midnight = datetime.combine(
        hours.local_date(at) + timedelta(days=1), time(0), ZoneInfo(zone)
    ).astimezone(UTC)
    assert fresh == hours.next_open(midnight)


@settings(deadline=None)
@given(
    zone_and_instant(aligned=True),
    st.integers(min_value=0, max_value=4 * 27).map(lambda n: QUARTER * n),
)
def test_add_business_time_adds_exactly_delta_of_open_time(sample, delta):
    """Counting open quarter hours from start to the result gives exactly delta."""
    zone, start = sample
    hours = BusinessHours(zone=zone)
    due = hours.add_business_time(start, delta)
    assert due >= start
    open_time = timedelta(0)
    cursor = start
    while cursor < due:  # windows start and end on whole hours, so a quarter is all or nothing
        if hours.is_open(cursor):
            open_time += QUARTER
        cursor += QUARTER
    assert open_time == delta
    if delta:
        assert hours.is_open(due - MICRO)  # no earlier instant would do
    else:
        assert due == hours.next_open(start)


@given(
    zone_and_instant(),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=40)),
)
def test_business_time_between_measures_what_add_business_time_added(sample, delta):
    """business_time_between(start, add_business_time(start, d)) == d, to the microsecond."""
    zone, start = sample
    hours = BusinessHours(zone=zone)
    assert hours.business_time_between(start, hours.add_business_time(start, delta)) == delta


@given(
    zone_and_instant(),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=40)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=40)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)
def test_add_business_time_is_monotone(sample, first, second, later):
    """More business time or a later start never gives an earlier deadline."""
    zone, start = sample
    hours = BusinessHours(zone=zone)
    small, large = sorted((first, second))
    assert hours.add_business_time(start, small) <= hours.add_business_time(start, large)
    assert hours.add_business_time(start, small) <= hours.add_business_time(start + later, small)


# Opening or closing inside the skipped or repeated hour of a switch: the wall-clock rule
# still decides, e.g. New York 01:30-02:30 loses its second half in spring and, in autumn,
# reopens when the clock falls back from 02:00 to 01:00 and passes 01:30 again.
ODD_HOURS = [
    BusinessHours(zone="America/New_York", days=EVERY_DAY, opens=time(1, 30), closes=time(2, 30)),
    BusinessHours(zone="Europe/Bucharest", days=EVERY_DAY, opens=time(3, 30), closes=time(4, 30)),
    BusinessHours(zone="Europe/Bucharest", days=EVERY_DAY, opens=time(2, 0), closes=time(3, 30)),
]


@settings(deadline=None)
@given(st.sampled_from(ODD_HOURS), st.data())
def test_wall_clock_rule_holds_when_hours_touch_a_skipped_or_repeated_hour(hours, data):
    """With opening or closing in a DST gap or fold, next_open finds the first open instant."""
    at = data.draw(around_switch(hours.zone))
    local = wall(hours.zone, at)
    assert hours.is_open(at) is (hours.opens <= local.time() < hours.closes)
    opened = hours.next_open(at)
    assert opened >= at
    assert hours.is_open(opened)
    assert_nothing_open_between(hours, at, opened)
    closed = hours.window_end(at)
    assert not hours.is_open(closed)
    assert hours.is_open(closed - MICRO)


def test_new_york_autumn_fold_reopens_the_window_when_the_clock_falls_back():
    """01:30-02:30 on 3 Nov 2024 is open 01:30-02:00 EDT, then again 01:30-02:30 EST."""
    hours = ODD_HOURS[0]
    assert hours.windows_on(date(2024, 11, 3)) == (
        (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 3, 6, 0, tzinfo=UTC)),
        (datetime(2024, 11, 3, 6, 30, tzinfo=UTC), datetime(2024, 11, 3, 7, 30, tzinfo=UTC)),
    )


def test_new_york_spring_gap_shortens_the_window():
    """01:30-02:30 on 10 Mar 2024 is only 01:30-02:00 EST: 02:00-03:00 does not exist."""
    hours = ODD_HOURS[0]
    assert hours.windows_on(date(2024, 3, 10)) == (
        (datetime(2024, 3, 10, 6, 30, tzinfo=UTC), datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),
    )


@pytest.mark.parametrize(
    "config",
    [
        {"zone": "Mars/Olympus_Mons"},
        {"opens": time(18), "closes": time(9)},
        {"opens": time(9), "closes": time(9)},
        {"days": frozenset()},
        {"days": frozenset({7})},
        {"opens": time(9, tzinfo=UTC)},
    ],
)
def test_impossible_business_hours_are_refused(config):
    """An unknown zone, an empty or reversed window, or no open weekday is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        BusinessHours(**config)


def test_holidays_covering_every_day_searched_are_a_configuration_error():
    """A search that finds no window in two years stops with a ConfigurationError."""
    start = date(2025, 1, 1)
    hours = BusinessHours(
        days=frozenset({0}),
        holidays=frozenset(start + timedelta(days=n) for n in range(800)),
    )
    with pytest.raises(ConfigurationError):
        hours.next_open(datetime(2025, 1, 1, tzinfo=UTC))


def test_naive_datetimes_are_refused():
    """A naive datetime would be read in the machine's zone, so it is refused."""
    with pytest.raises(ValueError, match="tz-aware"):
        BusinessHours().is_open(datetime(2025, 1, 6, 10))  # noqa: DTZ001
