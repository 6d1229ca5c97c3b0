"""The rules every event store applies to an append before writing, written once.

Each adapter looks up what it has stored already and the stream's version in its own way
(a dict, or SQL inside its write transaction); deciding what that means — a fresh append, a
retry that is a no-op, a corrupt retry, a conflict — is the same everywhere, so the
adapters cannot drift apart on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from cerniq_outreach.application.records import (
    AppendResult,
    ConcurrencyConflict,
    EventStoreError,
    InconsistentRetry,
)
from cerniq_outreach.domain.events import PHONE_STREAM_PREFIX, Event, stream_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cerniq_outreach.application.records import Checkpoint
    from cerniq_outreach.domain.events import BaseEvent


class StoredRef(NamedTuple):
    """Where an event id is stored already."""

    tenant_id: str
    stream_id: str
    global_position: int


def check_batch(tenant_id: str, stream_id: str, events: Sequence[BaseEvent]) -> None:
    """Refuse with `EventStoreError` a batch that cannot be stored as asked (a caller's bug).

    Every event must belong to the stream it is appended to (`stream_of`): the lead's
    journey, or the phone's stream. Personal fields are sealed with the event's own tenant
    and lead but opened with the stream's, so a mismatch would make them unreadable. A lead
    id may not look like a phone's stream id, or the two families could share a stream.
    """
    seen: set[str] = set()
    for event in events:
        owner = stream_of(event)
        if event.tenant_id != tenant_id or owner != stream_id:
            raise EventStoreError(
                f"event {event.event_id} belongs to {event.tenant_id}/{owner}, "
                f"not to stream {tenant_id}/{stream_id}"
            )
        if isinstance(event, Event) and event.lead_id.startswith(PHONE_STREAM_PREFIX):
            raise EventStoreError(
                f"lead id {event.lead_id!r} takes the prefix of phone streams "
                f"({PHONE_STREAM_PREFIX!r})"
            )
        if event.event_id in seen:
            raise EventStoreError(f"event id {event.event_id} appears twice in one append")
        seen.add(event.event_id)


def retry_result(
    tenant_id: str,
    stream_id: str,
    events: Sequence[BaseEvent],
    stored: Mapping[str, StoredRef],
    current_version: int,
) -> AppendResult | None:
    """What a batch whose ids are (partly) stored means; None when none of them is.

    All stored, in this stream: a retry of an append that succeeded, so a no-op that reports
    the positions the events got the first time (whatever `expected_version` says: the retry
    read the stream before its first attempt). Some stored, or stored in another stream:
    not a retry of one append, so refuse it rather than guess.
    """
    if not stored:
        return None
    foreign = [
        e.event_id
        for e in events
        if e.event_id in stored
        and (stored[e.event_id].tenant_id, stored[e.event_id].stream_id) != (tenant_id, stream_id)
    ]
    if foreign:
        raise InconsistentRetry(f"event ids stored in another stream: {', '.join(foreign)}")
    missing = [e.event_id for e in events if e.event_id not in stored]
    if missing:
        raise InconsistentRetry(
            f"{len(events) - len(missing)} of {len(events)} events of this append are stored "
            f"already in {tenant_id}/{stream_id}, not {', '.join(missing)}"
        )
    return AppendResult(
        stream_version=current_version,
        appended=0,
        positions=tuple(stored[e.event_id].global_position for e in events),
    )


def check_version(stream_id: str, expected_version: int, current_version: int) -> None:
    """Raise `ConcurrencyConflict` unless the stream is still where the caller read it."""
    if current_version != expected_version:
        raise ConcurrencyConflict(stream_id, expected_version, current_version)


def check_checkpoint(after: Checkpoint) -> None:
    """Refuse a checkpoint that carries a transaction id in a store that records none.

    SQLite and memory writers commit in position order and record transaction id 0; a
    checkpoint with another id comes from a PostgreSQL log and means nothing here (silently
    reading nothing after it would stall a follower forever).
    """
    if after.tx_id != 0:
        raise ValueError(f"checkpoint {after} does not come from a store that records tx_id 0")


def to_text(moment: datetime) -> str:
    """The canonical stored form of an instant: ISO-8601, UTC, microseconds.

    One fixed width and zone means comparing the text compares the instants (SQLite filters
    `occurred_at` that way).
    """
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime cannot be stored: {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """An instant stored by `to_text`, timezone-aware in UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)
