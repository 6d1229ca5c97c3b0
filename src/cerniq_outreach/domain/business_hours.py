"""Business hours: when a tenant's automation may write to leads, DST-correct in any zone.

The rule is the local wall clock: an instant is open when, in `zone`, its date is an open
day (a weekday in `days` that is not a holiday) and its time is in `[opens, closes)`.
Windows are computed from that rule with zoneinfo, never by adding fixed offsets, so a
window starts at local 09:00 on both sides of a DST switch. Every result is a UTC datetime.

Nothing here reads a clock: the instant is always passed in, and must be tz-aware.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from cerniq_outreach.domain.errors import ConfigurationError

WEEKDAYS = frozenset(range(5))
"""Monday to Friday, as `date.weekday()` numbers."""

SEARCH_DAYS = 366 * 2
"""How far ahead (in local days) a search for the next window looks before giving up."""

Window = tuple[datetime, datetime]
"""A half-open interval `[start, end)` of UTC instants."""


class BusinessHours(msgspec.Struct, frozen=True, kw_only=True):
    """Open days and hours in one time zone (defaults: Mon-Fri 09:00-18:00 Bucharest).

    Raises:
        ConfigurationError: the zone is unknown, `opens` is not before `closes`, a time
            carries a tzinfo, a day number is outside 0..6, or no weekday is open.
    """

    zone: str = "Europe/Bucharest"
    days: frozenset[int] = WEEKDAYS
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        _tz(self.zone)  # raises ConfigurationError for an unknown zone
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ConfigurationError("opening hours are local wall-clock times, without tzinfo")
        if not self.opens < self.closes:
            raise ConfigurationError(f"opens ({self.opens}) must be before closes ({self.closes})")
        if not self.days:
            raise ConfigurationError("business hours need at least one open weekday")
        if not self.days <= frozenset(range(7)):
            raise ConfigurationError(f"weekdays are 0 (Monday) to 6 (Sunday), got {self.days}")

    def local_date(self, at: datetime) -> date:
        """The calendar date of `at` on the local wall clock."""
        return _aware(at).astimezone(_tz(self.zone)).date()

    def is_open_day(self, day: date) -> bool:
        """Whether the local date `day` has a window (an open weekday, not a holiday)."""
        return day.weekday() in self.days and day not in self.holidays

    def is_open(self, at: datetime) -> bool:
        """Whether `at` falls in a window: open day and local time in `[opens, closes)`."""
        local = _aware(at).astimezone(_tz(self.zone))
        return self.is_open_day(local.date()) and self.opens <= local.time() < self.closes

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """The UTC intervals whose local wall time is in the window of local date `day`.

        Usually one interval; two only when a DST fold repeats the closing time (a wall
        clock that runs back past `closes` reopens the window), none on a closed day.
        """
        if not self.is_open_day(day):
            return ()
        return _windows(self.zone, day, self.opens, self.closes)

    def next_open(self, at: datetime) -> datetime:
        """`at` itself (in UTC) when open, else the start of the next window.

        Raises:
            ConfigurationError: no window within `SEARCH_DAYS` days (holidays cover them all).
        """
        return self._window_from(at)[0]

    def window_end(self, at: datetime) -> datetime:
        """The end of the window open at `at`, or of the next window when `at` is closed.

        Raises:
            ConfigurationError: no window within `SEARCH_DAYS` days (holidays cover them all).
        """
        return self._window_from(at)[1]

    def next_day_start(self, at: datetime) -> datetime:
        """The start of the first window on a local day strictly after the day of `at`.

        This is when a quota counted per local day is fresh again.

        Raises:
            ConfigurationError: no window within `SEARCH_DAYS` days (holidays cover them all).
        """
        today = self.local_date(at)
        for offset in range(1, SEARCH_DAYS + 1):
            windows = self.windows_on(today + timedelta(days=offset))
            if windows:
                return windows[0][0]
        raise _no_window(self, at)

    def add_business_time(self, start: datetime, delta: timedelta) -> datetime:
        """The instant by which `delta` of open time has passed since `start`.

        Closed time does not count: Friday 17:30 plus one business hour (09:00-18:00,
        Mon-Fri) is Monday 09:30. A zero `delta` gives `next_open(start)`; a deadline that
        uses up a window exactly ends at that window's close.

        Raises:
            ValueError: `delta` is negative.
        """
        if delta < timedelta(0):
            raise ValueError(f"business time to add must not be negative, got {delta}")
        remaining = delta
        start_, end = self._window_from(start)
        # Each pass consumes one whole window, so the loop runs about delta / window length
        # times; the search for each window is itself bounded by SEARCH_DAYS.
        while start_ + remaining > end:
            remaining -= end - start_
            start_, end = self._window_from(end)
        return start_ + remaining

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much open time lies in `[start, end)` (zero when `end <= start`)."""
        total = timedelta(0)
        cursor = _aware(start).astimezone(UTC)
        stop = _aware(end).astimezone(UTC)
        while cursor < stop:
            opened, closed = self._window_from(cursor)
            if opened >= stop:
                break
            total += min(closed, stop) - opened
            cursor = closed
        return total

    def _window_from(self, at: datetime) -> Window:
        """The window holding `at` (clipped to start at `at`), else the next window."""
        at_utc = _aware(at).astimezone(UTC)
        # Start a day early: in a fold across midnight the wall clock runs back into the
        # previous local date, whose window can then still lie ahead of `at`.
        first = self.local_date(at_utc) - timedelta(days=1)
        for offset in range(SEARCH_DAYS + 2):
            for start, end in self.windows_on(first + timedelta(days=offset)):
                if end > at_utc:
                    return max(start, at_utc), end
        raise _no_window(self, at_utc)


def _no_window(hours: BusinessHours, at: datetime) -> ConfigurationError:
    return ConfigurationError(
        f"no business window within {SEARCH_DAYS} days after {at.isoformat()} "
        f"(days {sorted(hours.days)}, {len(hours.holidays)} holidays)"
    )


def _aware(at: datetime) -> datetime:
    """Refuse naive datetimes: converting one would silently read the machine's zone."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a tz-aware datetime is required, got {at!r}")
    return at


def _tz(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"unknown time zone {zone!r}") from exc


@lru_cache(maxsize=4096)
def _windows(zone: str, day: date, opens: time, closes: time) -> tuple[Window, ...]:
    """UTC intervals where the wall clock of `zone` reads a time in `[opens, closes)` on `day`.

    Wall time is UTC plus an offset that is constant between transitions, so each offset
    seen over the window contributes one interval, cut at the transition. A window holds at
    most one transition (tzdata never switches twice within hours).
    """
    tz = _tz(zone)
    low = datetime.combine(day, opens)
    high = datetime.combine(day, closes)
    # fold=0 resolves a skipped or repeated wall time with the offset in force before the
    # transition, fold=1 with the one after: so these are the first and last offsets.
    before = _offset(low.replace(tzinfo=tz, fold=0))
    after = _offset(high.replace(tzinfo=tz, fold=1))
    if before == after:
        return ((_utc(low - before), _utc(high - before)),)
    switch = _transition(
        tz, _utc(min(low - before, low - after)), _utc(max(high - before, high - after)), after
    )
    pieces = [
        (_utc(low - before), min(_utc(high - before), switch)),
        (max(_utc(low - after), switch), _utc(high - after)),
    ]
    merged: list[Window] = []
    for start, end in sorted(piece for piece in pieces if piece[0] < piece[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _offset(local: datetime) -> timedelta:
    offset = local.utcoffset()
    if offset is None:  # pragma: no cover - a ZoneInfo always answers
        raise ConfigurationError(f"zone {local.tzinfo} gives no UTC offset")
    return offset


def _utc(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=UTC)


def _transition(tz: ZoneInfo, low: datetime, high: datetime, after: timedelta) -> datetime:
    """The first instant in `[low, high]` whose offset is `after` (the DST switch).

    tzdata puts transitions on whole seconds, so a bisection over seconds finds it exactly
    in about 17 steps for any window shorter than a day and a half.
    """
    lo = int(low.timestamp())
    hi = int(high.timestamp()) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, UTC).astimezone(tz)) == after:
            hi = mid
        else:
            lo = mid + 1
    return datetime.fromtimestamp(lo, UTC)
