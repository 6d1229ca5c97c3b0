"""Row-by-row comparison of a live read-model table with a rebuilt copy (`replay --verify`).

The two sides may come from different databases (live PostgreSQL, rebuilt in an in-memory
SQLite), so values are brought to one form first (`projections.base.comparable`: times as
canonical ISO text, booleans as 0/1, dates as ISO text).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import msgspec

from cerniq_outreach.application.projections.base import comparable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

Row = dict[str, Any]


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """One way a live table differs from the same table rebuilt from the log.

    `column` is None when the whole row exists on one side only (`live` or `rebuilt` is
    then the row, the other None).
    """

    table: str
    key: tuple[tuple[str, Any], ...]
    column: str | None
    live: Any = None
    rebuilt: Any = None

    def __str__(self) -> str:
        key = ", ".join(f"{name}={value!r}" for name, value in self.key)
        if self.column is None:
            where = "only in the live table" if self.rebuilt is None else "missing live"
            return f"{self.table} [{key}]: row {where}"
        return f"{self.table} [{key}] {self.column}: live {self.live!r}, rebuilt {self.rebuilt!r}"


def normalise(rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Rows with every value in its comparable form."""
    return [{name: comparable(value) for name, value in row.items()} for row in rows]


def compare_tables(
    table: str, key: Sequence[str], live: Sequence[Row], rebuilt: Sequence[Row]
) -> list[Difference]:
    """The differences between two versions of `table` (rows already `normalise`d).

    With `key` empty, rows are compared whole, as a multiset: each row missing on one side
    is a difference.
    """
    if not key:
        return _compare_whole(table, live, rebuilt)
    live_by_key = {_key(row, key): row for row in live}
    rebuilt_by_key = {_key(row, key): row for row in rebuilt}
    out: list[Difference] = []
    for k in sorted(live_by_key.keys() | rebuilt_by_key.keys(), key=repr):
        a, b = live_by_key.get(k), rebuilt_by_key.get(k)
        if a is None or b is None:
            out.append(Difference(table=table, key=k, column=None, live=a, rebuilt=b))
            continue
        out.extend(
            Difference(table=table, key=k, column=column, live=a.get(column), rebuilt=b.get(column))
            for column in sorted(a.keys() | b.keys())
            if a.get(column) != b.get(column)
        )
    return out


def _key(row: Row, key: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    return tuple((name, row.get(name)) for name in key)


def _compare_whole(table: str, live: Sequence[Row], rebuilt: Sequence[Row]) -> list[Difference]:
    def whole(row: Row) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(row.items()))

    a, b = Counter(map(whole, live)), Counter(map(whole, rebuilt))
    out = [
        Difference(table=table, key=row, column=None, live=dict(row), rebuilt=None)
        for row in sorted((a - b).elements(), key=repr)
    ]
    out += [
        Difference(table=table, key=row, column=None, live=None, rebuilt=dict(row))
        for row in sorted((b - a).elements(), key=repr)
    ]
    return out
