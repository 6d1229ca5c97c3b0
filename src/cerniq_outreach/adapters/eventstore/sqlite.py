"""The SQLite event store and read-model database: the embedded default, one file.

CONCURRENCY. SQLite lets one transaction write at a time. Every append runs inside
`BEGIN IMMEDIATE`, which takes the write lock before the first read: the stored-ids and
stream-version checks, the inserts and the inline projections all happen under it, so no
other writer (thread or process) can slip in between check and insert. Positions
(AUTOINCREMENT) are therefore taken *and committed* in order — an event with a lower
position can never become visible after one with a higher position, so `read_all` has no
gap problem to solve: reading "position > checkpoint" is exact. That is also why tx_id
is always 0 here.

A writer that finds the lock taken waits up to `busy_timeout` seconds (SQLite's busy
handler) before failing. WAL journal mode lets readers run while one writer writes, and
they read a consistent snapshot per statement.

Connections are per thread (`sqlite_database.SqliteConnections`); the read models
(`SqliteReadModels`, re-exported here) live in the same file.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec

from cerniq_outreach.adapters.eventstore.batches import (
    StoredRef,
    check_batch,
    check_checkpoint,
    check_version,
    from_text,
    retry_result,
    to_text,
)
from cerniq_outreach.adapters.eventstore.serialization import StoredRow, from_row, to_row
from cerniq_outreach.adapters.eventstore.sqlite_database import (
    Database,
    SqliteConnections,
    SqliteReadModels,
)
from cerniq_outreach.adapters.eventstore.wakeup import AppendSignal
from cerniq_outreach.adapters.sql import SqliteTx
from cerniq_outreach.application.records import (
    START,
    AppendResult,
    Checkpoint,
    ConcurrencyConflict,
    EventStoreError,
    InconsistentRetry,
    Metadata,
    RecordedEvent,
)
from cerniq_outreach.domain import codec
from cerniq_outreach.domain.events import stream_of

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from cerniq_outreach.application.ports import PersonalDataVault, Projection
    from cerniq_outreach.domain.events import AnyEvent, BaseEvent

__all__ = ["SqliteEventStore", "SqliteReadModels"]

_COLUMNS = (
    "global_position, tx_id, tenant_id, stream_id, stream_version, event_id, event_type,"
    " schema_version, data, sealed, metadata, occurred_at, recorded_at"
)
_INSERT = (
    "INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,"
    " schema_version, data, sealed, metadata, occurred_at, recorded_at)"
    " VALUES (:tenant_id, :stream_id, :stream_version, :event_id, :event_type,"
    " :schema_version, :data, :sealed, :metadata, :occurred_at, :recorded_at)"
)
# The ids travel as one JSON array, so the statement is the same for any batch size and
# never meets SQLite's limit on the number of parameters.
_STORED = (
    "SELECT event_id, tenant_id, stream_id, global_position FROM events"
    " WHERE event_id IN (SELECT value FROM json_each(:ids))"
)
_VERSION = (
    "SELECT coalesce(max(stream_version), 0) FROM events"
    " WHERE tenant_id = :tenant_id AND stream_id = :stream_id"
)
_READ_STREAM = (
    f"SELECT {_COLUMNS} FROM events"  # noqa: S608  # constant column list, no input
    " WHERE tenant_id = :tenant_id AND stream_id = :stream_id ORDER BY stream_version"
)
# Position order is commit order here (see the module docstring), so no horizon is needed.
_READ_ALL = (
    f"SELECT {_COLUMNS} FROM events"  # noqa: S608  # constant column list, no input
    " WHERE global_position > :position ORDER BY global_position LIMIT :limit"
)

_json = msgspec.json.Encoder()
_metadata = msgspec.json.Decoder(Metadata)


class SqliteEventStore:
    """EventStore on a SQLite file (WAL mode); thread-safe. Run the migrations first.

    Args:
        path: the database file, `":memory:"`, or an open connection (see
            `SqliteConnections`).
        vault: seals and opens the personal fields of events.
        inline_projections: applied to appended events inside the append's transaction.
        busy_timeout: seconds a writer waits for SQLite's write lock before failing.
    """

    def __init__(
        self,
        path: Database,
        vault: PersonalDataVault,
        *,
        inline_projections: Sequence[Projection] = (),
        busy_timeout: float = 5.0,
        durable: bool = True,
    ) -> None:
        # durable=False (synchronous=NORMAL) only for a store whose last commits may be lost
        # on power loss without harm: a demo's simulation, never a real outbox.
        self._db = SqliteConnections(path, busy_timeout=busy_timeout, durable=durable)
        self._vault = vault
        self._projections = tuple(inline_projections)
        self._signal = AppendSignal()

    @property
    def read_models(self) -> SqliteReadModels:
        """Read models on this store's own connections (the only way for `":memory:"`)."""
        return SqliteReadModels(self._db)

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
        # Seal before taking the write lock: the vault may create the lead's key, and a
        # SQLite vault writes it through its own connection to this same file, which would
        # wait for our lock while we wait for it (until the busy timeout fails us both).
        rows = [to_row(event, self._vault) for event in events]
        meta = metadata or Metadata()
        recorded_at = datetime.now(UTC)
        with self._db.write_transaction() as conn:
            ids = [row.event_id for row in rows]
            stored = {
                r[0]: StoredRef(r[1], r[2], r[3])
                for r in conn.execute(_STORED, {"ids": _json.encode(ids).decode()})
            }
            current = _current_version(conn, tenant_id, stream_id)
            retried = retry_result(tenant_id, stream_id, events, stored, current)
            if retried is not None:
                return retried
            check_version(stream_id, expected_version, current)
            records = [
                self._insert(
                    conn, event, row, version=current + offset, meta=meta, recorded_at=recorded_at
                )
                for offset, (event, row) in enumerate(zip(events, rows, strict=True), start=1)
            ]
            tx = SqliteTx(conn)
            for record in records:
                for projection in self._projections:
                    projection.apply(tx, record)
        self._signal.notify()
        return AppendResult(
            stream_version=current + len(events),
            appended=len(events),
            positions=tuple(r.global_position for r in records),
        )

    def _insert(
        self,
        conn: sqlite3.Connection,
        event: BaseEvent,
        row: StoredRow,
        *,
        version: int,
        meta: Metadata,
        recorded_at: datetime,
    ) -> RecordedEvent:
        """Insert one event row; its recorded form (for inline projections)."""
        occurred_at = event.occurred_at.astimezone(UTC)
        stream_id = stream_of(event)
        try:
            cur = conn.execute(
                _INSERT,
                {
                    "tenant_id": event.tenant_id,
                    "stream_id": stream_id,
                    "stream_version": version,
                    "event_id": row.event_id,
                    "event_type": row.event_type,
                    "schema_version": row.schema_version,
                    "data": row.data.decode(),
                    "sealed": row.sealed,
                    "metadata": _encode_metadata(meta),
                    "occurred_at": to_text(occurred_at),
                    "recorded_at": to_text(recorded_at),
                },
            )
        except sqlite3.IntegrityError as exc:
            # Unreachable while every writer uses BEGIN IMMEDIATE and checks first; mapped
            # anyway, so a writer that did not (another tool on the file) still gets the
            # domain's errors rather than a driver's.
            if "events.event_id" in str(exc):
                raise InconsistentRetry(f"event {row.event_id} is stored already") from exc
            if "events.stream_version" in str(exc):
                actual = _current_version(conn, event.tenant_id, stream_id)
                raise ConcurrencyConflict(stream_id, version - 1, actual) from exc
            raise
        if cur.lastrowid is None:  # pragma: no cover - an INSERT always sets it
            raise EventStoreError("SQLite returned no position for an inserted event")
        return RecordedEvent(
            global_position=cur.lastrowid,
            tenant_id=event.tenant_id,
            stream_id=stream_id,
            stream_version=version,
            event_id=row.event_id,
            event_type=row.event_type,
            schema_version=row.schema_version,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            metadata=meta,
            event=cast("AnyEvent", event),
        )

    def read_stream(self, tenant_id: str, stream_id: str) -> list[RecordedEvent]:
        """Every event of one stream, by stream version."""
        with self._db.connection() as conn:
            rows = conn.execute(
                _READ_STREAM, {"tenant_id": tenant_id, "stream_id": stream_id}
            ).fetchall()
        # Decoding opens sealed fields through the vault: outside the connection's lock.
        return [self._decode(row) for row in rows]

    def stream_version(self, tenant_id: str, stream_id: str) -> int:
        """The stream's current version (0 for an unknown stream)."""
        with self._db.connection() as conn:
            return _current_version(conn, tenant_id, stream_id)

    def read_all(self, *, after: Checkpoint = START, limit: int = 1000) -> list[RecordedEvent]:
        """The next events after `after`, in position order (which is commit order here)."""
        check_checkpoint(after)
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        with self._db.connection() as conn:
            rows = conn.execute(_READ_ALL, {"position": after.position, "limit": limit}).fetchall()
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
        """Events in position order: at or after `from_position`, occurred at or before `until`.

        Reads in keyset batches, each a statement of its own: a slow consumer keeps no read
        transaction open, which in WAL mode would stop checkpoints and let the WAL grow.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        filters = ["global_position > :after"]
        params: dict[str, Any] = {"after": from_position - 1, "limit": batch_size}
        if tenant_id is not None:
            filters.append("tenant_id = :tenant_id")
            params["tenant_id"] = tenant_id
        if stream_id is not None:
            filters.append("stream_id = :stream_id")
            params["stream_id"] = stream_id
        if until is not None:
            # Stored times are canonical UTC text, so text order is time order.
            filters.append("occurred_at <= :until")
            params["until"] = to_text(until)
        query = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(filters)}"  # noqa: S608  # fixed fragments only
            " ORDER BY global_position LIMIT :limit"
        )
        while True:
            with self._db.connection() as conn:
                rows = conn.execute(query, params).fetchall()
            yield from (self._decode(row) for row in rows)
            if len(rows) < batch_size:
                return
            params["after"] = rows[-1][0]

    def wait_for_events(self, timeout: float) -> bool:
        """Block until an append by this store, or `timeout` seconds; see `AppendSignal`.

        Appends by another process on the same file are not signalled: followers find them
        when they poll after the timeout.
        """
        return self._signal.wait(timeout)

    def close(self) -> None:
        """Close the connections this store opened."""
        self._db.close()

    def _decode(self, row: tuple[Any, ...]) -> RecordedEvent:
        (position, tx_id, tenant, stream, version, event_id, event_type, schema_version) = row[:8]
        data, sealed, meta, occurred_at, recorded_at = row[8:]
        try:
            event = from_row(
                event_type=event_type,
                schema_version=schema_version,
                data=data,
                sealed=sealed,
                tenant_id=tenant,
                stream_id=stream,
                vault=self._vault,
            )
        except (codec.UnknownEventType, codec.EventDecodeError) as exc:
            exc.add_note(
                f"stored at global position {position} ({tenant}/{stream} version {version})"
            )
            raise
        return RecordedEvent(
            global_position=position,
            tx_id=tx_id,
            tenant_id=tenant,
            stream_id=stream,
            stream_version=version,
            event_id=event_id,
            event_type=event_type,
            schema_version=schema_version,
            occurred_at=from_text(occurred_at),
            recorded_at=from_text(recorded_at),
            metadata=_metadata.decode(meta),
            event=event,
        )


def _current_version(conn: sqlite3.Connection, tenant_id: str, stream_id: str) -> int:
    row = conn.execute(_VERSION, {"tenant_id": tenant_id, "stream_id": stream_id}).fetchone()
    return int(row[0])


def _encode_metadata(metadata: Metadata) -> str:
    """Metadata as a JSON object without its empty fields (most events have none)."""
    fields = {k: v for k, v in msgspec.structs.asdict(metadata).items() if v is not None}
    return _json.encode(fields).decode()
