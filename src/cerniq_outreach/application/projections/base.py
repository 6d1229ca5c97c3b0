"""What every read-model projection shares: the value forms it writes, and what it declares.

Projections write one SQL text for SQLite and PostgreSQL (`SqlTx`), so the values they pass
must mean the same on both: times go in as canonical ISO-8601 text (UTC, microseconds),
which SQLite stores as is and compares as text, and PostgreSQL reads as `timestamptz`.
Local dates go in as 'YYYY-MM-DD'. Reading back, PostgreSQL returns `datetime`/`date`/
`bool` where SQLite returns text and integers; `comparable` brings both to one form, which
is how `replay --verify` compares a rebuilt SQLite copy with live PostgreSQL tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from cerniq_outreach.domain.personal import ERASED

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

QUOTA_ZONE = "Europe/Bucharest"
"""The zone whose calendar days count quota and daily statistics (domain.md)."""


@runtime_checkable
class ReadModel(Protocol):
    """A `Projection` that also says how to compare and rebuild its tables.

    `keys` names each table's primary-key columns (how `verify` pairs live and rebuilt
    rows). `idempotent` is true when applying an event a second time changes nothing: such
    a projection may run inline in the append transaction, and a replay may run beside
    live appends, both applying the same events; a projection that is not idempotent
    relies on its checkpoint alone for exactly-once.
    """

    name: str
    tables: tuple[str, ...]
    keys: ClassVar[Mapping[str, tuple[str, ...]]]
    idempotent: ClassVar[bool]

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Apply one event inside the caller's transaction."""
        ...


def iso(at: datetime) -> str:
    """The canonical text of an instant: '2026-03-02T08:00:00.000000+00:00' (fixed width).

    Fixed width and UTC, so that comparing the text compares the instants on SQLite (the
    event store's SQLite schema uses the same form).
    """
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def iso_or_none(at: datetime | None) -> str | None:
    """`iso(at)`, or None."""
    return None if at is None else iso(at)


def local_day(at: datetime, zone: str = QUOTA_ZONE) -> str:
    """The calendar date of `at` in `zone`, as 'YYYY-MM-DD' (DST-correct via zoneinfo)."""
    return at.astimezone(ZoneInfo(zone)).date().isoformat()


def personal(value: str | None) -> str | None:
    """A personal field as the read model keeps it: an erased value is stored as NULL.

    After erasure the log reads personal fields as `[erased]`; storing NULL makes a replay
    after erasure equal the scrubbed live row (`journey.scrub_lead` writes NULL too).
    """
    return None if value is None or value == ERASED else value


def comparable(value: Any) -> Any:  # noqa: ANN401 - any column value of either database
    """One form for a column value read from SQLite or PostgreSQL (see the module doc)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def keys_of(projection: object, table: str) -> tuple[str, ...]:
    """The key columns of `table`, or () when the projection does not declare them."""
    declared: Mapping[str, tuple[str, ...]] = getattr(projection, "keys", {})
    return tuple(declared.get(table, ()))


def is_idempotent(projection: object) -> bool:
    """Whether applying an event twice through `projection` changes nothing."""
    return bool(getattr(projection, "idempotent", False))
