"""When an out-of-office reply says its writer is back: Romanian and English dates.

Reads normalised text (lower case, no diacritics): "revin pe 15 martie", "până pe 3.04",
"până la 20.07.2025", "lipsesc până luni, 14 aprilie", "de luni", "săptămâna viitoare",
"până la sfârșitul lunii", "back on March 15th", "until 2026-03-20", "next Monday",
"tomorrow". Days without a year are the next such day from the reply's local day on (so a
December reply "până pe 7 ianuarie" means next year's), weekdays the next one after it.
The return moment is 09:00 on that day in the lead's zone, as UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

RETURN_HOUR: Final = time(9)
"""Local time of day an out-of-office lead counts as back."""

_MONTHS: Final = {
    "ianuarie": 1, "ian": 1, "january": 1, "jan": 1,
    "februarie": 2, "feb": 2, "february": 2,
    "martie": 3, "march": 3, "mar": 3,
    "aprilie": 4, "april": 4, "apr": 4,
    "mai": 5, "may": 5,
    "iunie": 6, "iun": 6, "june": 6, "jun": 6,
    "iulie": 7, "iul": 7, "july": 7, "jul": 7,
    "august": 8, "aug": 8,
    "septembrie": 9, "september": 9, "sept": 9, "sep": 9,
    "octombrie": 10, "october": 10, "oct": 10,
    "noiembrie": 11, "november": 11, "nov": 11,
    "decembrie": 12, "december": 12, "dec": 12,
}  # fmt: skip
_WEEKDAYS: Final = {
    "luni": 0, "lunea": 0, "monday": 0,
    "marti": 1, "martea": 1, "tuesday": 1,
    "miercuri": 2, "miercurea": 2, "wednesday": 2,
    "joi": 3, "joia": 3, "thursday": 3,
    "vineri": 4, "vinerea": 4, "friday": 4,
    "sambata": 5, "saturday": 5,
    "duminica": 6, "sunday": 6,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
# "mai" before a number is "more" ("mai 2 zile"), so a month-first date is never "mai".
_MONTH_FIRST = "|".join(m for m in sorted(_MONTHS, key=len, reverse=True) if m != "mai")
_ORDINAL = r"(?:st|nd|rd|th|-?lea|-?a)?"
_YEAR = r"(?:,? (\d{4}))?"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}}){_ORDINAL}(?: of)? ({_MONTH})\b\.?{_YEAR}")
_MONTH_DAY = re.compile(rf"\b({_MONTH_FIRST})\.? (\d{{1,2}}){_ORDINAL}\b{_YEAR}")
_NUMERIC = re.compile(r"(?<![\d.])(\d{1,2})[./](\d{1,2})(?:[./](\d{4}|\d{2}))?(?![\d]|[./]\d)")
_WEEKDAY = re.compile(
    rf"\b(next )?({'|'.join(_WEEKDAYS)})\b(?! ?,? ?(?:the )?\d)"  # "luni, 14 aprilie": the date
)
_NEXT_WEEK = re.compile(r"\b(?:saptamana|sapt\.?) (?:viitoare|urmatoare)\b|\bnext week\b")
_NEXT_MONTH = re.compile(
    r"\b(?:sfarsitul|finalul|capatul) lunii\b|\bend of (?:the|this) month\b"
    r"|\bluna (?:viitoare|urmatoare)\b|\bnext month\b"
)
_TOMORROW = re.compile(r"\b(?:maine|tomorrow)\b")
_AFTER_TOMORROW = re.compile(r"\bpoimaine\b|\bday after tomorrow\b")
# Bare weekdays and day.month numbers only count right after a word that says "until" or
# "from": "luni" is also "months" and "3.04" may be a version or a time.
_ANCHORED = re.compile(
    r"\b(?:pana|until|till|back|revin\w*|return\w*|de|din|from|incepand|starting)"
    r"(?: (?:pe|la|on|in|the|cu|birou|biroul|office|at|work|data|ziua|de))*\W*$"
)
_HORIZON: Final = timedelta(days=366)


def _anchored(text: str, start: int) -> bool:
    return _ANCHORED.search(text[max(0, start - 40) : start]) is not None


def _on_or_after(today: date, month: int, day: int, year: int | None) -> date | None:
    """The day `day`.`month` of `year`, or the first one from `today` on when no year is given."""
    if year is not None:
        years = [year + 2000 if year < 100 else year]  # noqa: PLR2004 - a two-digit year
    else:
        # Nine years reach the next 29 February from any day.
        years = list(range(today.year, min(today.year + 9, date.max.year + 1)))
    for candidate_year in years:
        try:
            found = date(candidate_year, month, day)
        except ValueError:
            continue
        if found >= today:
            return found
    return None


_Finder = Callable[[str, date], Iterator[date | None]]


def _iso(text: str, today: date) -> Iterator[date | None]:
    for m in _ISO_DATE.finditer(text):
        yield _on_or_after(today, int(m[2]), int(m[3]), int(m[1]))


def _day_month(text: str, today: date) -> Iterator[date | None]:
    for m in _DAY_MONTH.finditer(text):
        yield _on_or_after(today, _MONTHS[m[2]], int(m[1]), int(m[3]) if m[3] else None)
    for m in _MONTH_DAY.finditer(text):
        yield _on_or_after(today, _MONTHS[m[1]], int(m[2]), int(m[3]) if m[3] else None)


def _numeric(text: str, today: date) -> Iterator[date | None]:
    for m in _NUMERIC.finditer(text):
        if m[3] or _anchored(text, m.start()):
            yield _on_or_after(today, int(m[2]), int(m[1]), int(m[3]) if m[3] else None)


def _weekday(text: str, today: date) -> Iterator[date | None]:
    for m in _WEEKDAY.finditer(text):
        if m[1] or _anchored(text, m.start()):
            # The next such day strictly after today: "back Monday" said on a Monday means
            # the Monday after.
            yield today + timedelta(days=(_WEEKDAYS[m[2]] - today.weekday() - 1) % 7 + 1)


def _relative(text: str, today: date) -> Iterator[date | None]:
    if _NEXT_WEEK.search(text):
        yield today + timedelta(days=7 - today.weekday())
    if _NEXT_MONTH.search(text):
        yield date(today.year + today.month // 12, today.month % 12 + 1, 1)
    if _TOMORROW.search(text):
        yield today + timedelta(days=1)
    if _AFTER_TOMORROW.search(text):
        yield today + timedelta(days=2)


_FINDERS: Final[tuple[_Finder, ...]] = (_iso, _day_month, _numeric, _weekday, _relative)


def return_moment(text: str, received_at: datetime, tz: ZoneInfo) -> datetime | None:
    """09:00 local on the return day a normalised text names, as UTC; None if it names none.

    When several days are named the latest wins: writing again too early is the worse
    mistake. A day before the reply's local day, or more than a year after it, is no return
    date.
    """
    today = received_at.astimezone(tz).date()
    try:
        days = [d for find in _FINDERS for d in find(text, today) if d is not None]
        horizon = today + _HORIZON
    except OverflowError:  # a reply received at the very end of the calendar
        return None
    plausible = [d for d in days if today <= d <= horizon]
    if not plausible:
        return None
    # Built in the zone, not by adding an offset, so 09:00 stays 09:00 across DST.
    return datetime.combine(max(plausible), RETURN_HOUR, tzinfo=tz).astimezone(UTC)
