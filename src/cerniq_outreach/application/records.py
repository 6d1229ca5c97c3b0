"""What the event log hands back: recorded events with their envelope, checkpoints, errors."""

from __future__ import annotations

from datetime import datetime

import msgspec

from cerniq_outreach.domain.events import AnyEvent


class Metadata(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Why an event was written: the request it belongs to, what caused it, who did it."""

    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None


class Checkpoint(msgspec.Struct, frozen=True, order=True):
    """A follower's place in the global log.

    Ordered by (transaction id, position). On PostgreSQL the transaction id is the writer's
    `xid8`: a follower reads only below the visibility horizon, in (tx_id, position) order,
    so an event whose transaction took a lower position but committed later is never
    skipped. Stores whose writers commit in position order (SQLite, memory) use tx_id 0.
    """

    tx_id: int = 0
    position: int = 0


START = Checkpoint()


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One stored event with its envelope; `event` is decoded and its personal data opened.

    When the lead's key has been destroyed (erasure), the personal fields read as erased.
    """

    global_position: int
    tx_id: int = 0
    tenant_id: str
    stream_id: str
    stream_version: int
    event_id: str
    event_type: str
    schema_version: int
    occurred_at: datetime
    recorded_at: datetime
    metadata: Metadata = Metadata()
    event: AnyEvent

    @property
    def checkpoint(self) -> Checkpoint:
        """Where a follower stands after handling this event."""
        return Checkpoint(self.tx_id, self.global_position)


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an append did. `appended` is 0 when every event was stored already (a retry)."""

    stream_version: int
    appended: int
    positions: tuple[int, ...] = ()


class EventStoreError(Exception):
    """The event store could not do what was asked."""


class ConcurrencyConflict(EventStoreError):
    """The stream moved since it was read: reload, decide again, retry."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class InconsistentRetry(EventStoreError):
    """Some events of an append were stored already and others not: a corrupt retry."""
