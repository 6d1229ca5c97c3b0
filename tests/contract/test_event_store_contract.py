"""The event store contract, written once and run against every adapter.

`EventStoreContract` states what every EventStore must do, failures included; one subclass
per backend (memory, SQLite, PostgreSQL) provides `make_store`, a `Backend` that opens
stores and can look at (and tamper with) the raw stored rows. The in-memory store must
raise the same conflicts as the real ones, or tests that pass on it prove nothing.

Every test works with fresh tenant and lead ids and reads the global log from the
backend's `origin` (START for a fresh SQLite file or memory store; on PostgreSQL, whose
database is shared by the whole session, the end of what was there before), so tests
never depend on each other.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerniq_outreach.adapters.eventstore import memory as memory_store
from cerniq_outreach.adapters.eventstore import sqlite as sqlite_store
from cerniq_outreach.adapters.eventstore.memory import MemoryEventStore
from cerniq_outreach.adapters.eventstore.serialization import StoredRow
from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore, SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate, migrate_sqlite, migrate_sqlite_connection
from cerniq_outreach.adapters.vault import MemoryVault, SqliteVault
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
from cerniq_outreach.domain.enums import Channel, PhoneStatus
from cerniq_outreach.domain.events import (
    EVENT_TYPES,
    Company,
    Event,
    LeadEnrolled,
    MessageDelivered,
    PhoneEvent,
    PhoneRegistered,
    ReplyReceived,
    phone_stream,
)
from cerniq_outreach.domain.personal import ERASED

from strategies import aware_datetimes

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from cerniq_outreach.application.ports import EventStore, Projection, SqlTx

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
META = Metadata(correlation_id="req-1", causation_id="cmd-1", actor="ana")
PROJECTION_TABLE = "contract_projection_log"
# Personal values of the lead in `enrolled()` and `replied()`: never to be found in clear.
SECRETS = ("Agro Verde SRL", "+40722123456", "ion@agroverde.ro", "Ion Popescu", "contactați")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --- events ----------------------------------------------------------------------------------


def enrolled(tenant: str, lead: str, *, at: datetime = T0) -> LeadEnrolled:
    return LeadEnrolled(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        lead_id=lead,
        occurred_at=at,
        sequence_id="cold-default",
        company=Company(
            name="Agro Verde SRL",
            fiscal_code="RO123456",
            county="Timiș",
            phone="+40722123456",
            email="ion@agroverde.ro",
            contact_name="Ion Popescu",
        ),
    )


def delivered(tenant: str, lead: str, *, at: datetime = T0) -> MessageDelivered:
    return MessageDelivered(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        lead_id=lead,
        occurred_at=at,
        message_id=new_id("msg"),
    )


def replied(tenant: str, lead: str, *, at: datetime = T0) -> ReplyReceived:
    return ReplyReceived(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        lead_id=lead,
        occurred_at=at,
        channel=Channel.WHATSAPP,
        external_id=new_id("wa"),
        text_preview="Vă rog nu mă mai contactați, mulțumesc.",
        content_hash="sha256:abc",
    )


def journey(tenant: str, lead: str, n: int) -> list[Event]:
    """An enrolment followed by n - 1 deliveries, a minute apart."""
    first: list[Event] = [enrolled(tenant, lead)]
    return first + [delivered(tenant, lead, at=T0 + timedelta(minutes=i)) for i in range(1, n)]


# Fields whose valid values are narrower than their Python type (as in test_codec.py).
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "sla_due_at": aware_datetimes,
    "until": aware_datetimes,
    "score": st.integers(-100, 100),
    "confidence": st.floats(0, 1),
    "quota_cost": st.integers(0, 1),
    "text_preview": st.text(max_size=500),
    "reputation": st.none() | st.integers(0, 100),
    "daily_limit": st.integers(0, 200),
}


def any_event(tenant: str, lead: str) -> st.SearchStrategy[Event]:
    """Any valid journey event of any type, belonging to `lead`'s stream."""
    return st.one_of(
        [
            st.builds(
                cls,
                event_id=st.just("replaced-by-the-test"),
                tenant_id=st.just(tenant),
                lead_id=st.just(lead),
                occurred_at=aware_datetimes,
                **{f: s for f, s in VALID_FIELDS.items() if f in cls.__struct_fields__},
            )
            for cls in EVENT_TYPES
            if issubclass(cls, Event)
        ]
    )


def any_phone_event(tenant: str, phone_id: str) -> st.SearchStrategy[PhoneEvent]:
    """Any valid phone-pool event of any type, belonging to the phone's stream."""
    return st.one_of(
        [
            st.builds(
                cls,
                event_id=st.just("replaced-by-the-test"),
                tenant_id=st.just(tenant),
                phone_id=st.just(phone_id),
                occurred_at=aware_datetimes,
                **{f: s for f, s in VALID_FIELDS.items() if f in cls.__struct_fields__},
            )
            for cls in EVENT_TYPES
            if issubclass(cls, PhoneEvent)
        ]
    )


def registered(tenant: str, phone_id: str) -> PhoneRegistered:
    return PhoneRegistered(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        phone_id=phone_id,
        occurred_at=T0,
        number="+40744000111",
        label="Vânzări",
        daily_limit=200,
        status=PhoneStatus.ACTIVE,
    )


# --- an inline projection that records what it is given ------------------------------------


class ProjectionFailedError(Exception):
    """Raised by RecordingProjection on purpose."""


class RecordingProjection:
    """Writes one row per event to PROJECTION_TABLE and remembers what it was handed."""

    name = "contract_recorder"
    tables = (PROJECTION_TABLE,)

    def __init__(self, *, fail_on: str | None = None, probe_events: bool = False) -> None:
        self.fail_on = fail_on
        self.probe_events = probe_events
        self.seen: list[RecordedEvent] = []
        self.visible: list[int] = []

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        self.seen.append(record)
        tx.execute(
            f"INSERT INTO {PROJECTION_TABLE} (tenant_id, event_id, global_position)"  # noqa: S608
            " VALUES (:tenant_id, :event_id, :position)",
            {
                "tenant_id": record.tenant_id,
                "event_id": record.event_id,
                "position": record.global_position,
            },
        )
        if self.probe_events:
            # An uncommitted row is visible only inside its own transaction.
            rows = tx.fetchall(
                "SELECT count(*) AS n FROM events WHERE event_id = :event_id",
                {"event_id": record.event_id},
            )
            self.visible.append(int(rows[0]["n"]))
        if record.event_id == self.fail_on:
            raise ProjectionFailedError(record.event_id)


# --- reading the global log the way a follower does ------------------------------------------


def follow(
    store: EventStore, after: Checkpoint, wanted: set[str], *, limit: int = 1000
) -> list[list[RecordedEvent]]:
    """Batches of `read_all` from `after` until every id in `wanted` came by.

    Memory and SQLite return everything committed at once. PostgreSQL's follower returns an
    event only once every older transaction on the server has ended, and the server may be
    shared with other test runs: so read again, woken by the store or its poll timeout, for
    a bounded time.
    """
    batches: list[list[RecordedEvent]] = []
    seen: set[str] = set()
    give_up = time.monotonic() + 30
    while True:
        batch = store.read_all(after=after, limit=limit)
        if batch:
            batches.append(batch)
            seen.update(r.event_id for r in batch)
            after = batch[-1].checkpoint
            continue
        if wanted <= seen or time.monotonic() > give_up:
            return batches
        store.wait_for_events(0.1)


def flat(batches: list[list[RecordedEvent]]) -> list[RecordedEvent]:
    return [record for batch in batches for record in batch]


# --- backends --------------------------------------------------------------------------------


class RawRow(NamedTuple):
    """An event row as stored: the data column's text and the sealed column's bytes."""

    data: str
    sealed: bytes | None


class Backend:
    """Opens stores of one backend on one database and looks at its raw rows."""

    def __init__(self) -> None:
        self.stores: list[EventStore] = []

    def __call__(self, *, inline_projections: Sequence[Projection] = ()) -> EventStore:
        store = self.open(inline_projections)
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def open(self, inline_projections: Sequence[Projection]) -> EventStore:
        raise NotImplementedError

    def second_store(self, store: EventStore) -> EventStore:
        """Another store on the same data (another process, as far as the backend allows)."""
        raise NotImplementedError

    def origin(self, store: EventStore) -> Checkpoint:
        """A checkpoint after everything stored so far."""
        raise NotImplementedError

    def raw_rows(self, store: EventStore, tenant_id: str, stream_id: str) -> list[RawRow]:
        raise NotImplementedError

    def insert_raw(
        self, store: EventStore, *, tenant_id: str, stream_id: str, event_id: str, event_type: str
    ) -> None:
        """Store version 1 of a stream as a row this code did not write."""
        raise NotImplementedError

    def projected(self, store: EventStore, tenant_id: str) -> list[tuple[str, int]]:
        """(event id, position) rows RecordingProjection wrote for a tenant, by position."""
        raise NotImplementedError

    @property
    def vault(self) -> Any:
        raise NotImplementedError


def raw_payload(event_type: str, event_id: str, tenant_id: str, stream_id: str) -> str:
    return msgspec.json.encode(
        {
            "type": event_type,
            "event_id": event_id,
            "tenant_id": tenant_id,
            "lead_id": stream_id,
            "occurred_at": T0.isoformat(),
        }
    ).decode()


def create_projection_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {PROJECTION_TABLE} ("
        " tenant_id TEXT NOT NULL, event_id TEXT PRIMARY KEY, global_position INTEGER NOT NULL)"
    )


def sqlite_projected(conn: sqlite3.Connection, tenant_id: str) -> list[tuple[str, int]]:
    rows = conn.execute(
        f"SELECT event_id, global_position FROM {PROJECTION_TABLE}"  # noqa: S608
        " WHERE tenant_id = ? ORDER BY global_position",
        (tenant_id,),
    ).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


class MemoryBackend(Backend):
    """MemoryEventStore; inline projections write to a SQLite read-model file."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self._vault = MemoryVault()
        path = tmp_path / "read_models.sqlite"
        self._raw = sqlite3.connect(path, isolation_level=None)
        create_projection_table(self._raw)
        self.read_models = SqliteReadModels(path)

    @property
    def vault(self) -> MemoryVault:
        return self._vault

    def open(self, inline_projections: Sequence[Projection]) -> EventStore:
        return MemoryEventStore(
            self._vault, inline_projections=inline_projections, read_models=self.read_models
        )

    def close(self) -> None:
        super().close()
        self.read_models.close()
        self._raw.close()

    def second_store(self, store: EventStore) -> EventStore:
        return store  # memory is one process's: the same instance is all there is

    def origin(self, store: EventStore) -> Checkpoint:
        assert isinstance(store, MemoryEventStore)
        rows = store._rows
        return Checkpoint(0, rows[-1].global_position if rows else 0)

    def raw_rows(self, store: EventStore, tenant_id: str, stream_id: str) -> list[RawRow]:
        assert isinstance(store, MemoryEventStore)
        rows = store._streams.get((tenant_id, stream_id), [])
        return [RawRow(r.stored.data.decode(), r.stored.sealed) for r in rows]

    def insert_raw(
        self, store: EventStore, *, tenant_id: str, stream_id: str, event_id: str, event_type: str
    ) -> None:
        assert isinstance(store, MemoryEventStore)
        data = raw_payload(event_type, event_id, tenant_id, stream_id)
        with store._lock:
            store._insert(
                memory_store._Row(
                    global_position=len(store._rows) + 1,
                    tenant_id=tenant_id,
                    stream_id=stream_id,
                    stream_version=1,
                    stored=StoredRow(
                        event_id=event_id,
                        event_type=event_type,
                        schema_version=1,
                        data=data.encode(),
                        sealed=None,
                    ),
                    metadata=Metadata(),
                    occurred_at=T0,
                    recorded_at=T0,
                )
            )

    def projected(self, store: EventStore, tenant_id: str) -> list[tuple[str, int]]:
        return sqlite_projected(self._raw, tenant_id)


class SqliteBackend(Backend):
    """SqliteEventStore on one migrated file, with the SQLite vault in the same file."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.path = tmp_path / "events.sqlite"
        migrate_sqlite(str(self.path))
        self._raw = sqlite3.connect(self.path, isolation_level=None)
        create_projection_table(self._raw)
        self._vault = SqliteVault(self.path)

    @property
    def vault(self) -> SqliteVault:
        return self._vault

    def open(self, inline_projections: Sequence[Projection]) -> EventStore:
        return SqliteEventStore(self.path, self._vault, inline_projections=inline_projections)

    def close(self) -> None:
        super().close()
        self._vault.close()
        self._raw.close()

    def second_store(self, store: EventStore) -> EventStore:
        return self()

    def origin(self, store: EventStore) -> Checkpoint:
        row = self._raw.execute("SELECT coalesce(max(global_position), 0) FROM events").fetchone()
        return Checkpoint(0, int(row[0]))

    def raw_rows(self, store: EventStore, tenant_id: str, stream_id: str) -> list[RawRow]:
        rows = self._raw.execute(
            "SELECT data, sealed FROM events WHERE tenant_id = ? AND stream_id = ?"
            " ORDER BY stream_version",
            (tenant_id, stream_id),
        ).fetchall()
        return [RawRow(str(r[0]), None if r[1] is None else bytes(r[1])) for r in rows]

    def insert_raw(
        self, store: EventStore, *, tenant_id: str, stream_id: str, event_id: str, event_type: str
    ) -> None:
        self._raw.execute(
            "INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,"
            " schema_version, data, occurred_at, recorded_at) VALUES (?, ?, 1, ?, ?, 1, ?, ?, ?)",
            (
                tenant_id,
                stream_id,
                event_id,
                event_type,
                raw_payload(event_type, event_id, tenant_id, stream_id),
                T0.isoformat(timespec="microseconds"),
                T0.isoformat(timespec="microseconds"),
            ),
        )

    def projected(self, store: EventStore, tenant_id: str) -> list[tuple[str, int]]:
        return sqlite_projected(self._raw, tenant_id)


class PostgresPair:
    """One EventStore made of the two role-bound instances `postgres.py` documents.

    Commands write and read streams as `cerniq_app` (row-level security, one tenant per
    transaction); followers read the global log and cross-tenant exports as
    `cerniq_follower`. Both share one in-process vault: the PostgreSQL vault caches keys
    per instance, so an erasure through one role's vault would not reach the other's cache
    within this process; the vault has a contract of its own.
    """

    def __init__(self, app: Any, follower: Any) -> None:
        self.app, self.follower = app, follower

    def append(
        self,
        tenant_id: str,
        stream_id: str,
        events: Sequence[Event],
        *,
        expected_version: int,
        metadata: Metadata | None = None,
    ) -> AppendResult:
        result: AppendResult = self.app.append(
            tenant_id, stream_id, events, expected_version=expected_version, metadata=metadata
        )
        return result

    def read_stream(self, tenant_id: str, stream_id: str) -> list[RecordedEvent]:
        records: list[RecordedEvent] = self.app.read_stream(tenant_id, stream_id)
        return records

    def stream_version(self, tenant_id: str, stream_id: str) -> int:
        return int(self.app.stream_version(tenant_id, stream_id))

    def read_all(self, *, after: Checkpoint = START, limit: int = 1000) -> list[RecordedEvent]:
        records: list[RecordedEvent] = self.follower.read_all(after=after, limit=limit)
        return records

    def export(self, *, tenant_id: str | None = None, **filters: Any) -> Iterator[RecordedEvent]:
        store = self.follower if tenant_id is None else self.app
        return store.export(tenant_id=tenant_id, **filters)  # type: ignore[no-any-return]

    def wait_for_events(self, timeout: float) -> bool:
        return bool(self.follower.wait_for_events(timeout))

    def close(self) -> None:
        self.app.close()
        self.follower.close()


class PostgresBackend(Backend):
    """PostgresEventStore pairs on the session's database; raw access as its owner."""

    def __init__(self, url: str, store_class: Any) -> None:
        super().__init__()
        self.url = url
        self.store_class = store_class
        self._vault = MemoryVault()
        self._owner = psycopg.connect(url, autocommit=True)
        self._owner.execute(
            f"CREATE TABLE IF NOT EXISTS {PROJECTION_TABLE} (tenant_id text NOT NULL,"
            " event_id text PRIMARY KEY, global_position bigint NOT NULL)"
        )
        self._owner.execute(
            f"GRANT SELECT, INSERT ON {PROJECTION_TABLE} TO cerniq_app, cerniq_follower"
        )
        self._inserted: list[str] = []

    @property
    def vault(self) -> MemoryVault:
        return self._vault

    def open(self, inline_projections: Sequence[Projection]) -> EventStore:
        app = self.store_class(
            self.url, self._vault, role="cerniq_app", inline_projections=inline_projections
        )
        follower = self.store_class(self.url, self._vault, role="cerniq_follower")
        # One round trip each, so that the pools' first connections exist before a test
        # starts: psycopg_pool draws from the global `random` (expiry jitter) in a worker
        # thread as it connects, and Hypothesis fails a test whose draws see that happen.
        for store in (app, follower):
            store.stream_version("warm-up", "warm-up")
        return PostgresPair(app, follower)

    def close(self) -> None:
        super().close()
        # The database is the session's: take out the rows this code could not read, or
        # every later reader of the log (replay tests) would stop at them.
        for event_id in self._inserted:
            self._owner.execute("DELETE FROM events WHERE event_id = %s", (event_id,))
        self._owner.close()

    def second_store(self, store: EventStore) -> EventStore:
        return self()

    def origin(self, store: EventStore) -> Checkpoint:
        # Every transaction that writes from now on gets an id at or above xmax, so its
        # events sort after (xmax - 1, any position): the log as it stands is behind us.
        row = self._owner.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8"
        ).fetchone()
        assert row is not None
        return Checkpoint(int(row[0]) - 1, 2**63 - 1)

    def raw_rows(self, store: EventStore, tenant_id: str, stream_id: str) -> list[RawRow]:
        rows = self._owner.execute(
            "SELECT data::text, sealed FROM events WHERE tenant_id = %s AND stream_id = %s"
            " ORDER BY stream_version",
            (tenant_id, stream_id),
        ).fetchall()
        return [RawRow(str(r[0]), None if r[1] is None else bytes(r[1])) for r in rows]

    def insert_raw(
        self, store: EventStore, *, tenant_id: str, stream_id: str, event_id: str, event_type: str
    ) -> None:
        self._inserted.append(event_id)
        self._owner.execute(
            "INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,"
            " schema_version, data, occurred_at) VALUES (%s, %s, 1, %s, %s, 1, %s, %s)",
            (
                tenant_id,
                stream_id,
                event_id,
                event_type,
                raw_payload(event_type, event_id, tenant_id, stream_id),
                T0,
            ),
        )

    def projected(self, store: EventStore, tenant_id: str) -> list[tuple[str, int]]:
        rows = self._owner.execute(
            f"SELECT event_id, global_position FROM {PROJECTION_TABLE}"  # noqa: S608
            " WHERE tenant_id = %s ORDER BY global_position",
            (tenant_id,),
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]


# --- the contract ----------------------------------------------------------------------------

# Hypothesis tests reuse the test's one store across examples (a store per example would
# open a PostgreSQL pool per example). That is safe: each example writes fresh tenants and
# reads the log from the backend's origin as it was when the example began. They are also
# run by one subclass per backend (differing executors): the strategies do not depend on
# the backend, so an example saved by one backend's run is a valid example for any other.
REUSES_STORE = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]
)


class EventStoreContract:
    """Behaviour every EventStore shows; subclasses provide the `make_store` fixture."""

    @pytest.fixture
    def make_store(self) -> Backend:
        raise NotImplementedError("each backend's test class provides make_store")

    @pytest.fixture
    def store(self, make_store: Backend) -> EventStore:
        return make_store()

    @pytest.fixture
    def tenant(self) -> str:
        return new_id("tenant")

    @pytest.fixture
    def lead(self) -> str:
        return new_id("lead")

    # --- append and read back ------------------------------------------------------------

    def test_appended_events_read_back_equal_with_their_envelope(self, store, tenant, lead):
        """Events read back equal, with versions 1..n, rising positions and their metadata."""
        events = [enrolled(tenant, lead), delivered(tenant, lead), replied(tenant, lead)]
        result = store.append(tenant, lead, events, expected_version=0, metadata=META)
        records = store.read_stream(tenant, lead)
        assert [r.event for r in records] == events
        assert [r.stream_version for r in records] == [1, 2, 3]
        positions = [r.global_position for r in records]
        assert positions == sorted(set(positions))
        assert result == AppendResult(stream_version=3, appended=3, positions=tuple(positions))
        for record, event in zip(records, events, strict=True):
            assert (record.tenant_id, record.stream_id) == (tenant, lead)
            assert record.event_id == event.event_id
            assert record.event_type == type(event).__name__
            assert record.schema_version == codec.schema_version(record.event_type)
            assert record.occurred_at == event.occurred_at
            assert record.recorded_at.tzinfo is not None
            assert record.metadata == META
        assert store.stream_version(tenant, lead) == 3

    def test_later_appends_continue_the_stream_versions(self, store, tenant, lead):
        """A second append at the version read continues the versions without a hole."""
        store.append(tenant, lead, journey(tenant, lead, 2), expected_version=0)
        result = store.append(
            tenant, lead, [delivered(tenant, lead), delivered(tenant, lead)], expected_version=2
        )
        assert result.stream_version == 4
        assert [r.stream_version for r in store.read_stream(tenant, lead)] == [1, 2, 3, 4]

    def test_without_metadata_events_carry_empty_metadata(self, store, tenant, lead):
        """Metadata is optional; events appended without it read back with none set."""
        store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
        assert store.read_stream(tenant, lead)[0].metadata == Metadata()

    def test_an_unknown_stream_is_empty_at_version_zero(self, store, tenant):
        """Reading a stream nobody wrote gives no events and version 0."""
        assert store.read_stream(tenant, new_id("lead")) == []
        assert store.stream_version(tenant, new_id("lead")) == 0

    def test_streams_are_separate_per_tenant(self, store, lead):
        """The same lead id in two tenants is two streams."""
        first, second = new_id("tenant"), new_id("tenant")
        store.append(first, lead, journey(first, lead, 2), expected_version=0)
        store.append(second, lead, journey(second, lead, 1), expected_version=0)
        assert store.stream_version(first, lead) == 2
        assert [r.tenant_id for r in store.read_stream(second, lead)] == [second]

    @REUSES_STORE
    @given(data=st.data())
    def test_every_event_type_round_trips_through_the_store(self, store, data):
        """Any valid events of any types read back equal to what was appended."""
        tenant, lead = new_id("tenant"), new_id("lead")
        drawn = data.draw(st.lists(any_event(tenant, lead), min_size=1, max_size=4))
        # Fresh ids: the store outlives the example, and Hypothesis repeats the values it draws.
        events = [msgspec.structs.replace(e, event_id=str(uuid.uuid4())) for e in drawn]
        store.append(tenant, lead, events, expected_version=0)
        assert [r.event for r in store.read_stream(tenant, lead)] == events

    @REUSES_STORE
    @given(data=st.data())
    def test_every_phone_event_type_round_trips_through_its_phone_stream(self, store, data):
        """Phone events live in `phone:<id>` streams and read back equal to what was appended."""
        tenant, phone_id = new_id("tenant"), new_id("phone")
        drawn = data.draw(st.lists(any_phone_event(tenant, phone_id), min_size=1, max_size=4))
        events = [msgspec.structs.replace(e, event_id=str(uuid.uuid4())) for e in drawn]
        store.append(tenant, phone_stream(phone_id), events, expected_version=0)
        records = store.read_stream(tenant, phone_stream(phone_id))
        assert [r.event for r in records] == events
        assert {r.stream_id for r in records} == {f"phone:{phone_id}"}

    # --- optimistic concurrency ------------------------------------------------------------

    def test_a_new_stream_is_appended_at_expected_version_zero(self, store, tenant, lead):
        """Version 0 means "new stream"; claiming any other version of it is a conflict."""
        with pytest.raises(ConcurrencyConflict) as info:
            store.append(tenant, lead, [delivered(tenant, lead)], expected_version=1)
        assert (info.value.expected, info.value.actual) == (1, 0)
        assert (
            store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0).appended == 1
        )

    @pytest.mark.parametrize("expected", [0, 1, 3])
    def test_appending_at_a_moved_version_conflicts_and_appends_nothing(
        self, store, tenant, lead, expected
    ):
        """A stale (or future) expected version raises ConcurrencyConflict and stores nothing."""
        store.append(tenant, lead, journey(tenant, lead, 2), expected_version=0)
        before = store.read_stream(tenant, lead)
        with pytest.raises(ConcurrencyConflict) as info:
            store.append(tenant, lead, [delivered(tenant, lead)], expected_version=expected)
        assert (info.value.stream_id, info.value.expected, info.value.actual) == (
            lead,
            expected,
            2,
        )
        assert store.read_stream(tenant, lead) == before

    def test_concurrent_appends_at_one_version_let_exactly_one_win(
        self, store, make_store, tenant, lead
    ):
        """Writers racing on one stream version: one appends, all others get a conflict."""
        stores = [store, make_store.second_store(store)]
        store.append(tenant, lead, [enrolled(tenant, lead)], expected_version=0)
        writers = 8
        start = threading.Barrier(writers)

        def attempt(i: int) -> AppendResult | ConcurrencyConflict:
            event = delivered(tenant, lead)
            start.wait(timeout=30)
            try:
                return stores[i % 2].append(tenant, lead, [event], expected_version=1)
            except ConcurrencyConflict as exc:
                return exc

        with ThreadPoolExecutor(writers) as pool:
            outcomes = list(pool.map(attempt, range(writers)))
        wins = [o for o in outcomes if isinstance(o, AppendResult)]
        conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
        assert len(wins) == 1
        assert len(conflicts) == writers - 1
        assert {(c.expected, c.actual) for c in conflicts} == {(1, 2)}
        assert store.stream_version(tenant, lead) == 2

    # --- idempotent append -----------------------------------------------------------------

    def test_re_appending_stored_events_is_a_no_op_with_their_positions(self, store, tenant, lead):
        """A retry of a stored append appends nothing and reports the first positions."""
        events = journey(tenant, lead, 3)
        first = store.append(tenant, lead, events, expected_version=0)
        again = store.append(tenant, lead, events, expected_version=0)
        assert again == AppendResult(stream_version=3, appended=0, positions=first.positions)
        assert len(store.read_stream(tenant, lead)) == 3

    def test_a_retry_after_the_stream_moved_on_is_still_a_no_op(self, store, tenant, lead):
        """A retry is recognised by its event ids, whatever version it read before."""
        events = journey(tenant, lead, 2)
        first = store.append(tenant, lead, events, expected_version=0)
        store.append(tenant, lead, [delivered(tenant, lead)], expected_version=2)
        again = store.append(tenant, lead, events, expected_version=0)
        assert (again.appended, again.positions) == (0, first.positions)
        assert store.stream_version(tenant, lead) == 3

    def test_a_partly_stored_batch_is_an_inconsistent_retry(self, store, tenant, lead):
        """Some ids stored and some not: InconsistentRetry, and nothing is appended."""
        events = journey(tenant, lead, 2)
        store.append(tenant, lead, events, expected_version=0)
        with pytest.raises(InconsistentRetry):
            store.append(tenant, lead, [events[1], delivered(tenant, lead)], expected_version=2)
        assert store.stream_version(tenant, lead) == 2

    def test_event_ids_stored_in_another_stream_are_an_inconsistent_retry(
        self, store, tenant, lead
    ):
        """An id already used by another lead's stream is refused, never taken as a retry."""
        stored = delivered(tenant, lead)
        store.append(tenant, lead, [stored], expected_version=0)
        other = new_id("lead")
        copy = msgspec.structs.replace(stored, lead_id=other)
        with pytest.raises(InconsistentRetry):
            store.append(tenant, other, [copy], expected_version=0)
        assert store.stream_version(tenant, other) == 0

    def test_events_of_another_stream_are_refused(self, store, tenant, lead):
        """An event whose tenant or lead is not the stream's is refused; nothing is stored."""
        stranger = delivered(tenant, new_id("lead"))
        with pytest.raises(EventStoreError):
            store.append(tenant, lead, [delivered(tenant, lead), stranger], expected_version=0)
        with pytest.raises(EventStoreError):
            store.append(tenant, lead, [delivered(new_id("tenant"), lead)], expected_version=0)
        assert store.stream_version(tenant, lead) == 0

    def test_phone_and_lead_streams_never_mix(self, store, tenant, lead):
        """Phone and lead events never share a stream; a lead id may not look like a phone's."""
        phone_id = new_id("phone")
        with pytest.raises(EventStoreError):
            store.append(tenant, lead, [registered(tenant, phone_id)], expected_version=0)
        with pytest.raises(EventStoreError):
            store.append(
                tenant, phone_stream(phone_id), [delivered(tenant, lead)], expected_version=0
            )
        impostor = phone_stream(phone_id)
        with pytest.raises(EventStoreError, match="prefix"):
            store.append(tenant, impostor, [delivered(tenant, impostor)], expected_version=0)
        assert store.stream_version(tenant, lead) == 0
        assert store.stream_version(tenant, phone_stream(phone_id)) == 0

    def test_phone_events_are_stored_in_clear(self, make_store, store, tenant):
        """A phone's number is the tenant's business data: stored as is, never sealed."""
        phone_id = new_id("phone")
        store.append(
            tenant, phone_stream(phone_id), [registered(tenant, phone_id)], expected_version=0
        )
        [row] = make_store.raw_rows(store, tenant, phone_stream(phone_id))
        assert row.sealed is None
        assert "+40744000111" in row.data

    def test_appending_no_events_stores_nothing(self, store, tenant, lead):
        """An empty append is a no-op that reports the stream's version."""
        store.append(tenant, lead, journey(tenant, lead, 2), expected_version=0)
        assert store.append(tenant, lead, [], expected_version=2) == AppendResult(
            stream_version=2, appended=0
        )

    # --- the global log --------------------------------------------------------------------

    def test_read_all_in_batches_returns_every_event_once_in_checkpoint_order(
        self, store, make_store
    ):
        """Across tenants and streams, batches return each event once, in checkpoint order."""
        origin = make_store.origin(store)
        tenants = [new_id("tenant"), new_id("tenant")]
        streams = [(t, new_id("lead")) for t in tenants for _ in range(2)]
        appended: list[str] = []
        for round_ in range(3):
            for tenant, lead in streams:
                events = [delivered(tenant, lead) for _ in range(1 + round_ % 2)]
                version = store.stream_version(tenant, lead)
                store.append(tenant, lead, events, expected_version=version)
                appended += [e.event_id for e in events]
        batches = follow(store, origin, set(appended), limit=4)
        records = flat(batches)
        assert all(len(batch) <= 4 for batch in batches)
        assert [r.event_id for r in records if r.event_id in set(appended)] == appended
        checkpoints = [r.checkpoint for r in records]
        assert checkpoints == sorted(set(checkpoints))
        assert store.read_all(after=records[-1].checkpoint) == []

    def test_read_all_after_the_last_checkpoint_is_empty(self, store, make_store, tenant, lead):
        """A follower that caught up reads nothing more until something is appended."""
        origin = make_store.origin(store)
        events = journey(tenant, lead, 3)
        store.append(tenant, lead, events, expected_version=0)
        records = flat(follow(store, origin, {e.event_id for e in events}))
        assert records[-1].event_id == events[-1].event_id
        assert store.read_all(after=records[-1].checkpoint) == []
        assert store.read_all(after=records[-1].checkpoint, limit=1) == []

    @REUSES_STORE
    @given(
        plan=st.lists(
            st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(1, 3)),
            min_size=1,
            max_size=12,
        ),
        limit=st.integers(1, 7),
    )
    def test_any_interleaving_of_appends_reads_back_in_append_order(
        self, store, make_store, plan, limit
    ):
        """Whatever the order of appends to several streams, the log replays it exactly."""
        origin = make_store.origin(store)
        tenants = [new_id("tenant"), new_id("tenant")]
        leads = [new_id("lead") for _ in range(3)]
        versions: dict[tuple[str, str], int] = defaultdict(int)
        expected: list[tuple[str, str, str, int]] = []
        for t, s, n in plan:
            tenant, lead = tenants[t], leads[s]
            events = [delivered(tenant, lead) for _ in range(n)]
            store.append(tenant, lead, events, expected_version=versions[tenant, lead])
            expected += [
                (e.event_id, tenant, lead, versions[tenant, lead] + i)
                for i, e in enumerate(events, start=1)
            ]
            versions[tenant, lead] += n
        ids = {e[0] for e in expected}
        records = flat(follow(store, origin, ids, limit=limit))
        mine = [
            (r.event_id, r.tenant_id, r.stream_id, r.stream_version)
            for r in records
            if r.event_id in ids
        ]
        assert mine == expected

    def test_export_filters_by_tenant_stream_position_and_time_in_global_order(self, store, tenant):
        """Export keeps global order and filters on tenant, stream, from_position and until."""
        other_tenant = new_id("tenant")
        first, second, foreign = new_id("lead"), new_id("lead"), new_id("lead")
        minute = timedelta(minutes=1)
        plan = [(tenant, first), (other_tenant, foreign), (tenant, second), (tenant, first)]
        for i, (t, lead) in enumerate(plan):
            version = store.stream_version(t, lead)
            event = delivered(t, lead, at=T0 + i * minute)
            store.append(t, lead, [event], expected_version=version)
        ours = store.read_stream(tenant, first) + store.read_stream(tenant, second)
        ours.sort(key=lambda r: r.global_position)
        theirs = store.read_stream(other_tenant, foreign)

        everything = [r for r in store.export() if r.tenant_id in {tenant, other_tenant}]
        assert everything == sorted(ours + theirs, key=lambda r: r.global_position)
        assert list(store.export(tenant_id=tenant)) == ours
        assert list(store.export(tenant_id=tenant, batch_size=1)) == ours
        assert list(store.export(tenant_id=tenant, stream_id=first)) == [
            r for r in ours if r.stream_id == first
        ]
        from_second = ours[1].global_position
        assert list(store.export(tenant_id=tenant, from_position=from_second)) == ours[1:]
        # until is inclusive: the event at exactly T0 + 2 minutes is kept.
        assert list(store.export(tenant_id=tenant, until=T0 + 2 * minute)) == ours[:2]
        assert list(store.export(tenant_id=tenant, until=T0 - minute)) == []

    # --- personal data -----------------------------------------------------------------------

    def test_personal_fields_are_stored_sealed_and_read_back_in_clear(
        self, store, make_store, tenant, lead
    ):
        """Names, phone, email and reply text are nowhere in clear at rest, yet read back."""
        events = [enrolled(tenant, lead), replied(tenant, lead), delivered(tenant, lead)]
        store.append(tenant, lead, events, expected_version=0)
        rows = make_store.raw_rows(store, tenant, lead)
        assert len(rows) == 3
        for row in rows:
            for secret in SECRETS:
                assert secret not in row.data
                assert row.sealed is None or secret.encode() not in row.sealed
        assert rows[0].sealed is not None
        assert rows[1].sealed is not None
        assert rows[2].sealed is None  # a delivery carries no personal data
        assert "RO123456" in rows[0].data  # the rest of the event is stored as it is
        assert [r.event for r in store.read_stream(tenant, lead)] == events

    def test_after_the_key_is_destroyed_personal_fields_read_as_erased(
        self, store, make_store, tenant, lead
    ):
        """Erasure leaves every event decodable: personal fields "[erased]", the rest intact."""
        origin = make_store.origin(store)
        lead_enrolled, reply, delivery = (
            enrolled(tenant, lead),
            replied(tenant, lead),
            delivered(tenant, lead),
        )
        store.append(tenant, lead, [lead_enrolled, reply, delivery], expected_version=0)
        neighbour = new_id("lead")
        store.append(tenant, neighbour, [enrolled(tenant, neighbour)], expected_version=0)

        assert make_store.vault.destroy_key(tenant, lead) is True

        erased_company = msgspec.structs.replace(
            lead_enrolled.company, name=ERASED, phone=ERASED, email=ERASED, contact_name=ERASED
        )
        expected = [
            msgspec.structs.replace(lead_enrolled, company=erased_company),
            msgspec.structs.replace(reply, text_preview=ERASED),
            delivery,
        ]
        assert [r.event for r in store.read_stream(tenant, lead)] == expected
        assert [r.event for r in store.export(tenant_id=tenant, stream_id=lead)] == expected
        ids = {e.event_id for e in expected}
        followed = [r.event for r in flat(follow(store, origin, ids)) if r.event_id in ids]
        assert followed == expected
        neighbour_company = store.read_stream(tenant, neighbour)[0].event
        assert isinstance(neighbour_company, LeadEnrolled)
        assert neighbour_company.company.name == "Agro Verde SRL"

    def test_an_unknown_event_type_in_storage_is_named_on_read(
        self, store, make_store, tenant, lead
    ):
        """A stored type this code does not know stops the read with that type named."""
        origin = make_store.origin(store)
        event_id = str(uuid.uuid4())
        make_store.insert_raw(
            store, tenant_id=tenant, stream_id=lead, event_id=event_id, event_type="LeadTeleported"
        )
        with pytest.raises(codec.UnknownEventType, match="LeadTeleported") as info:
            store.read_stream(tenant, lead)
        assert info.value.event_type == "LeadTeleported"
        with pytest.raises(codec.UnknownEventType, match="LeadTeleported"):
            follow(store, origin, {event_id})
        with pytest.raises(codec.UnknownEventType, match="LeadTeleported"):
            list(store.export(tenant_id=tenant))

    # --- waking followers ------------------------------------------------------------------

    def test_wait_for_events_wakes_for_an_append_from_another_thread(self, store, tenant, lead):
        """A follower waiting in one thread is woken by an append made in another."""
        listening = threading.Event()
        woke: list[bool] = []

        def follower() -> None:
            store.wait_for_events(0)  # starts listening: no append after this is missed
            listening.set()
            woke.append(store.wait_for_events(timeout=30))

        thread = threading.Thread(target=follower)
        thread.start()
        assert listening.wait(timeout=30)
        store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert woke == [True]

    def test_wait_for_events_times_out_false_when_nothing_is_appended(self, store):
        """With nothing appended, waiting ends after the timeout and says so."""
        assert store.wait_for_events(0.05) is False

    # --- inline projections ----------------------------------------------------------------

    def test_inline_projections_get_each_recorded_event_of_the_append(
        self, make_store, tenant, lead
    ):
        """Inline projections see every appended event, as it is then read back."""
        projection = RecordingProjection()
        store = make_store(inline_projections=[projection])
        store.append(tenant, lead, journey(tenant, lead, 3), expected_version=0, metadata=META)
        records = store.read_stream(tenant, lead)
        assert projection.seen == records
        assert make_store.projected(store, tenant) == [
            (r.event_id, r.global_position) for r in records
        ]

    def test_a_failing_inline_projection_rolls_the_append_back(self, make_store, tenant, lead):
        """If a projection raises, neither the events nor any projection write are kept."""
        events = journey(tenant, lead, 3)
        projection = RecordingProjection(fail_on=events[-1].event_id)
        store = make_store(inline_projections=[projection])
        with pytest.raises(ProjectionFailedError):
            store.append(tenant, lead, events, expected_version=0)
        assert store.read_stream(tenant, lead) == []
        assert store.stream_version(tenant, lead) == 0
        assert make_store.projected(store, tenant) == []
        projection.fail_on = None
        assert store.append(tenant, lead, events, expected_version=0).appended == 3


class SharedDatabaseContract(EventStoreContract):
    """What stores whose events and read models share one database add to the contract."""

    def test_inline_projections_run_inside_the_append_transaction(self, make_store, tenant, lead):
        """A projection sees the appended rows before they commit: it is the same transaction."""
        projection = RecordingProjection(probe_events=True)
        store = make_store(inline_projections=[projection])
        store.append(tenant, lead, journey(tenant, lead, 2), expected_version=0)
        assert projection.visible == [1, 1]


# --- the backends ----------------------------------------------------------------------------


class TestMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path) -> Iterator[Backend]:
        backend = MemoryBackend(tmp_path)
        yield backend
        backend.close()

    def test_inline_projections_need_read_models(self):
        """A memory store given inline projections but nowhere to write them is refused."""
        with pytest.raises(ValueError, match="read-model"):
            MemoryEventStore(MemoryVault(), inline_projections=[RecordingProjection()])


class TestSqliteEventStore(SharedDatabaseContract):
    @pytest.fixture
    def make_store(self, tmp_path) -> Iterator[Backend]:
        backend = SqliteBackend(tmp_path)
        yield backend
        backend.close()

    def test_the_database_runs_in_wal_mode(self, store, make_store, tenant, lead):
        """Readers never block the writer: the file is in WAL journal mode."""
        store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
        with sqlite3.connect(make_store.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_the_log_refuses_updates_and_deletes(self, store, make_store, tenant, lead):
        """Stored events are never rewritten, not even by SQL run beside the store."""
        store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
        conn = sqlite3.connect(make_store.path, isolation_level=None)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute("UPDATE events SET event_type = 'X'")
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute("DELETE FROM events")
        finally:
            conn.close()

    def test_a_version_taken_behind_the_check_becomes_a_conflict(
        self, store, tenant, lead, monkeypatch
    ):
        """SQLite's unique-version violation is reported as ConcurrencyConflict, not a crash."""
        store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
        real = sqlite_store._current_version
        reads: list[int] = []

        def stale_once(conn, tenant_id, stream_id):
            reads.append(1)
            return 0 if len(reads) == 1 else real(conn, tenant_id, stream_id)

        monkeypatch.setattr(sqlite_store, "_current_version", stale_once)
        with pytest.raises(ConcurrencyConflict) as info:
            store.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
        assert (info.value.expected, info.value.actual) == (0, 1)
        monkeypatch.undo()
        assert store.stream_version(tenant, lead) == 1

    def test_an_in_memory_database_is_shared_through_one_connection(self, tenant, lead):
        """A migrated connection (e.g. to ":memory:") serves the store and its read models."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        migrate_sqlite_connection(conn)
        create_projection_table(conn)
        store = SqliteEventStore(conn, MemoryVault(), inline_projections=[RecordingProjection()])
        try:
            events = journey(tenant, lead, 2)
            store.append(tenant, lead, events, expected_version=0)
            assert [r.event for r in store.read_stream(tenant, lead)] == events
            with store.read_models.transaction(tenant) as tx:
                rows = tx.fetchall(f"SELECT event_id FROM {PROJECTION_TABLE}")  # noqa: S608
            assert {r["event_id"] for r in rows} == {e.event_id for e in events}
        finally:
            store.close()
            conn.close()


@pytest.mark.postgres
class TestPostgresEventStore(SharedDatabaseContract):
    @pytest.fixture
    def make_store(self, postgres_url) -> Iterator[Backend]:
        try:
            from cerniq_outreach.adapters.eventstore.postgres import (  # noqa: PLC0415  # built in parallel
                PostgresEventStore,
            )
        except ImportError:
            pytest.skip("postgres adapter not built yet")
        migrate(postgres_url)
        backend = PostgresBackend(postgres_url, PostgresEventStore)
        yield backend
        backend.close()
