"""The in-memory event store: for tests and the embedded mode's throwaway runs.

It keeps events in their stored form (personal fields sealed with the vault, JSON data) and
decodes them on every read, exactly as the SQL stores do, so erasure, unknown event types
and upcasting behave the same here; and it refuses appends with the same conflicts. It
passes the same contract suite as SQLite and PostgreSQL.

One lock serialises appends, which is what makes positions commit in order: a follower
reading in position order can never miss an event (there is no gap problem to solve).

Inline projections run in `read_models.transaction(tenant_id)` while that lock is held,
before the events are added to memory: if a projection raises, its transaction rolls back
and nothing is stored. The two are *not* one atomic commit, though — should the read-model
commit itself fail after the projections ran, the events are not stored either, but a crash
of the process loses everything anyway. That is fine for tests and embedded use; anything
that must survive a restart uses the SQLite or PostgreSQL store.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from cerniq_outreach.adapters.eventstore.batches import (
    StoredRef,
    check_batch,
    check_checkpoint,
    check_version,
    retry_result,
)
from cerniq_outreach.adapters.eventstore.serialization import StoredRow, from_row, to_row
from cerniq_outreach.adapters.eventstore.wakeup import AppendSignal
from cerniq_outreach.application.records import (
    START,
    AppendResult,
    Checkpoint,
    Metadata,
    RecordedEvent,
)
from cerniq_outreach.domain import codec

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from cerniq_outreach.application.ports import PersonalDataVault, Projection, ReadModelDatabase
    from cerniq_outreach.domain.events import AnyEvent, BaseEvent


@dataclass(frozen=True, slots=True)
class _Row:
    """One stored event: its envelope and the encoded event, as a SQL row would hold them."""

    global_position: int
    tenant_id: str
    stream_id: str
    stream_version: int
    stored: StoredRow
    metadata: Metadata
    occurred_at: datetime
    recorded_at: datetime


class MemoryEventStore:
    """EventStore kept in this process's memory; thread-safe.

    `inline_projections` are applied with every append inside a transaction of
    `read_models`, which they then need.
    """

    def __init__(
        self,
        vault: PersonalDataVault,
        *,
        inline_projections: Sequence[Projection] = (),
        read_models: ReadModelDatabase | None = None,
    ) -> None:
        if inline_projections and read_models is None:
            raise ValueError("inline projections need a read-model database to write to")
        self._vault = vault
        self._projections = tuple(inline_projections)
        self._read_models = read_models
        # Guards the three indexes below, which always change together.
        self._lock = threading.Lock()
        self._rows: list[_Row] = []  # by global position
        self._streams: dict[tuple[str, str], list[_Row]] = {}
        self._by_event_id: dict[str, _Row] = {}
        self._signal = AppendSignal()

    def append(
        self,
        tenant_id: str,
        stream_id: str,
        events: Sequence[BaseEvent],
        *,
        expected_version: int,
        metadata: Metadata | None = None,
    ) -> AppendResult:
        """Append if the stream is at `expected_version`; see `EventStore.append`."""
        check_batch(tenant_id, stream_id, events)
        if not events:
            return AppendResult(
                stream_version=self.stream_version(tenant_id, stream_id), appended=0
            )
        recorded_at = datetime.now(UTC)
        with self._lock:
            current = len(self._streams.get((tenant_id, stream_id), ()))
            stored = {
                e.event_id: StoredRef(r.tenant_id, r.stream_id, r.global_position)
                for e in events
                if (r := self._by_event_id.get(e.event_id)) is not None
            }
            retried = retry_result(tenant_id, stream_id, events, stored, current)
            if retried is not None:
                return retried
            check_version(stream_id, expected_version, current)
            rows = [
                _Row(
                    global_position=len(self._rows) + offset,
                    tenant_id=tenant_id,
                    stream_id=stream_id,
                    stream_version=current + offset,
                    stored=to_row(event, self._vault),
                    metadata=metadata or Metadata(),
                    occurred_at=event.occurred_at.astimezone(UTC),
                    recorded_at=recorded_at,
                )
                for offset, event in enumerate(events, start=1)
            ]
            self._project(tenant_id, rows, events)
            for row in rows:
                self._insert(row)
        self._signal.notify()
        return AppendResult(
            stream_version=current + len(events),
            appended=len(events),
            positions=tuple(r.global_position for r in rows),
        )

    def read_stream(self, tenant_id: str, stream_id: str) -> list[RecordedEvent]:
        """Every event of one stream, by stream version."""
        with self._lock:
            rows = list(self._streams.get((tenant_id, stream_id), ()))
        # Decoding (and the vault's decryption) runs outside the lock: rows never change.
        return [self._decode(row) for row in rows]

    def stream_version(self, tenant_id: str, stream_id: str) -> int:
        """The stream's current version (0 for an unknown stream)."""
        with self._lock:
            return len(self._streams.get((tenant_id, stream_id), ()))

    def read_all(self, *, after: Checkpoint = START, limit: int = 1000) -> list[RecordedEvent]:
        """The next events after `after`, in position order (which is commit order here)."""
        check_checkpoint(after)
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        with self._lock:
            start = bisect.bisect_right(
                self._rows, after.position, key=lambda row: row.global_position
            )
            rows = self._rows[start : start + limit]
        return [self._decode(row) for row in rows]

    def export(
        self,
        *,
        tenant_id: str | None = None,
        stream_id: str | None = None,
        from_position: int = 0,
        until: datetime | None = None,
        batch_size: int = 5000,
    ) -> Iterator[RecordedEvent]:
        """Events in position order: at or after `from_position`, occurred at or before `until`."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        with self._lock:
            rows = list(self._rows)
        for row in rows:
            if (
                row.global_position >= from_position
                and (tenant_id is None or row.tenant_id == tenant_id)
                and (stream_id is None or row.stream_id == stream_id)
                and (until is None or row.occurred_at <= until)
            ):
                yield self._decode(row)

    def wait_for_events(self, timeout: float) -> bool:
        """Block until an append in this store, or `timeout` seconds; see `AppendSignal`."""
        return self._signal.wait(timeout)

    def close(self) -> None:
        """Nothing to release."""

    def _project(self, tenant_id: str, rows: list[_Row], events: Sequence[BaseEvent]) -> None:
        if not self._projections or self._read_models is None:
            return
        with self._read_models.transaction(tenant_id) as tx:
            for row, event in zip(rows, events, strict=True):
                record = _record(row, cast("AnyEvent", event))
                for projection in self._projections:
                    projection.apply(tx, record)

    def _insert(self, row: _Row) -> None:
        """Add one row to every index (the caller holds the lock)."""
        self._rows.append(row)
        self._streams.setdefault((row.tenant_id, row.stream_id), []).append(row)
        self._by_event_id[row.stored.event_id] = row

    def _decode(self, row: _Row) -> RecordedEvent:
        try:
            event = from_row(
                event_type=row.stored.event_type,
                schema_version=row.stored.schema_version,
                data=row.stored.data,
                sealed=row.stored.sealed,
                tenant_id=row.tenant_id,
                stream_id=row.stream_id,
                vault=self._vault,
            )
        except (codec.UnknownEventType, codec.EventDecodeError) as exc:
            exc.add_note(
                f"stored at global position {row.global_position} "
                f"({row.tenant_id}/{row.stream_id} version {row.stream_version})"
            )
            raise
        return _record(row, event)


def _record(row: _Row, event: AnyEvent) -> RecordedEvent:
    return RecordedEvent(
        global_position=row.global_position,
        tenant_id=row.tenant_id,
        stream_id=row.stream_id,
        stream_version=row.stream_version,
        event_id=row.stored.event_id,
        event_type=row.stored.event_type,
        schema_version=row.stored.schema_version,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        metadata=row.metadata,
        event=event,
    )
