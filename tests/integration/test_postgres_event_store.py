"""The PostgreSQL event store against a real server: the guarantees only a real server shows.

Gap safety, row-level security under the application's role, writers racing on one stream,
and retries racing their original. Interleavings are forced, never hoped for: a writer's
transaction is held open by an inline projection that waits on a `threading.Event` after
the insert, and a writer known to be blocked is one the server lists as waiting on the
other's lock. The contract suite (tests/contract) covers what every store shares.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import errors

from cerniq_outreach.adapters.eventstore import serialization
from cerniq_outreach.adapters.eventstore.postgres import (
    APP_ROLE,
    FOLLOWER_ROLE,
    PostgresEventStore,
)
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.adapters.vault import MemoryVault
from cerniq_outreach.application.records import (
    AppendResult,
    Checkpoint,
    ConcurrencyConflict,
    EventStoreError,
    InconsistentRetry,
    RecordedEvent,
)
from cerniq_outreach.domain.events import MessageDelivered

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cerniq_outreach.application.ports import SqlTx

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DEADLINE = 30.0  # seconds a test waits for the server before it gives up (never expected)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def delivered(tenant: str, lead: str) -> MessageDelivered:
    return MessageDelivered(
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        lead_id=lead,
        occurred_at=T0,
        message_id=new_id("msg"),
    )


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(postgres_url: str) -> str:
    """The session's database, migrated by its owner (idempotent, shared with other suites)."""
    migrate(postgres_url)
    return postgres_url


@pytest.fixture
def vault() -> MemoryVault:
    return MemoryVault()


@pytest.fixture
def stores(database: str, vault: MemoryVault) -> Iterator[Callable[..., PostgresEventStore]]:
    """A factory of stores on the session database, all closed at the end of the test."""
    opened: list[PostgresEventStore] = []

    def make(**kwargs: Any) -> PostgresEventStore:
        store = PostgresEventStore(database, vault, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def app(stores: Callable[..., PostgresEventStore]) -> PostgresEventStore:
    return stores(role=APP_ROLE)


@pytest.fixture
def follower(stores: Callable[..., PostgresEventStore]) -> PostgresEventStore:
    return stores(role=FOLLOWER_ROLE)


@pytest.fixture
def owner(database: str) -> Iterator[psycopg.Connection[Any]]:
    """The owner's connection (superuser here): sees everything, as migrations do."""
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


@pytest.fixture
def as_app(database: str) -> Iterator[Callable[[], psycopg.Connection[Any]]]:
    """Raw connections working as `cerniq_app`, the role the application runs as."""
    opened: list[psycopg.Connection[Any]] = []

    def connect() -> psycopg.Connection[Any]:
        conn = psycopg.connect(database)
        conn.execute("SET ROLE cerniq_app")
        conn.commit()
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


# --- helpers ---------------------------------------------------------------------------------


class Gate:
    """An inline projection that holds its append's transaction open after the insert.

    `inserted` is set once the events are in (uncommitted); the transaction commits only
    when the test sets `release`. `records` and `backend_pid` tell where the held
    transaction stands.
    """

    name = "test_gate"
    tables = ()

    def __init__(self) -> None:
        self.inserted = threading.Event()
        self.release = threading.Event()
        self.records: list[RecordedEvent] = []
        self.backend_pid = 0

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        self.records.append(record)
        self.backend_pid = int(tx.fetchall("SELECT pg_backend_pid() AS pid")[0]["pid"])
        self.inserted.set()
        assert self.release.wait(DEADLINE), "the test never released the held append"


class HeldAppend:
    """An append running on its own thread, held open by a Gate until `commit()`."""

    def __init__(self, store: PostgresEventStore, gate: Gate, *args: Any, **kwargs: Any):
        self.gate = gate
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = self.pool.submit(store.append, *args, **kwargs)
        assert gate.inserted.wait(DEADLINE), "the held append never inserted"

    def commit(self) -> AppendResult:
        self.gate.release.set()
        result = self.future.result(timeout=DEADLINE)
        self.pool.shutdown()
        return result


def origin(owner: psycopg.Connection[Any]) -> Checkpoint:
    """A checkpoint behind the whole log as it stands (other suites share the database).

    Every transaction that writes from now on gets an id at or above the snapshot's xmax.
    """
    row = owner.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8").fetchone()
    assert row is not None
    return Checkpoint(int(row[0]) - 1, 2**63 - 1)


def read_until(
    follower: PostgresEventStore, after: Checkpoint, wanted: set[str]
) -> list[RecordedEvent]:
    """Follow the log from `after` until every id in `wanted` came by (bounded).

    The horizon waits for every older writing transaction on the server, and the server
    may be shared with other runs: read again, woken by NOTIFY or the poll timeout.
    """
    seen: list[RecordedEvent] = []
    give_up = time.monotonic() + DEADLINE
    while not wanted <= {r.event_id for r in seen} and time.monotonic() < give_up:
        batch = follower.read_all(after=after, limit=100)
        if batch:
            seen.extend(batch)
            after = batch[-1].checkpoint
        else:
            follower.wait_for_events(0.2)
    return seen


def wait_until_blocked_by(owner: psycopg.Connection[Any], pid: int) -> None:
    """Return once some backend waits on a lock held by backend `pid`.

    Polls the server's own lock table: the condition itself, not a guess at how long the
    other thread needs to get there.
    """
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up:
        row = owner.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND %s = ANY(pg_blocking_pids(pid))",
            (pid,),
        ).fetchone()
        if row and row[0]:
            return
    pytest.fail(f"no backend ever waited on backend {pid}")


def in_tenant(conn: psycopg.Connection[Any], tenant: str, query: str, params: Any) -> list[Any]:
    """Run `query` in a transaction bound to `tenant` (as the store binds its own)."""
    with conn.transaction():
        conn.execute("SELECT set_config('cerniq.tenant_id', %s, true)", (tenant,))
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def append_call(event: MessageDelivered, *, batch: bool = True) -> tuple[str, tuple[Any, ...]]:
    """A call of the store's append function (batch or single) for one event at version 1."""
    row = serialization.to_row(event, MemoryVault())
    values = (
        row.event_id,
        row.event_type,
        row.schema_version,
        row.data.decode(),
        row.sealed,
        event.occurred_at,
    )
    if not batch:
        call = "SELECT * FROM cerniq_append_event(%s, %s, 0, %s, %s, %s, %s::json, %s, %s, '{}')"
        return call, (event.tenant_id, event.lead_id, *values)
    call = "SELECT * FROM cerniq_append_events(%s, %s, 0, %s, %s, %s, %s::json[], %s, %s, '{}')"
    return call, (event.tenant_id, event.lead_id, *([v] for v in values))


def ours(records: list[RecordedEvent], tenants: set[str]) -> list[RecordedEvent]:
    return [r for r in records if r.tenant_id in tenants]


# --- (a) gap safety --------------------------------------------------------------------------


def test_follower_never_passes_an_open_transaction_and_sees_both_writes_once(
    stores, follower, owner
):
    """A lower position committing after a higher one is held back, then read once, in order."""
    tenant = new_id("tenant")
    start = origin(owner)
    gate = Gate()
    writer_a = stores(role=APP_ROLE, inline_projections=[gate])
    writer_b = stores(role=APP_ROLE)
    event_a, event_b = delivered(tenant, new_id("lead")), delivered(tenant, new_id("lead"))

    held = HeldAppend(writer_a, gate, tenant, event_a.lead_id, [event_a], expected_version=0)
    a = gate.records[0]
    b = writer_b.append(tenant, event_b.lead_id, [event_b], expected_version=0)
    assert a.global_position < b.positions[0]  # A took the lower position, B committed first

    early = follower.read_all(after=start, limit=1000)
    assert ours(early, {tenant}) == []
    assert all(r.checkpoint < a.checkpoint for r in early), "the follower went past A"
    resume = early[-1].checkpoint if early else start

    held.commit()
    late = ours(read_until(follower, resume, {event_a.event_id, event_b.event_id}), {tenant})
    assert [r.event_id for r in late] == [event_a.event_id, event_b.event_id]
    assert [r.checkpoint for r in late] == sorted(r.checkpoint for r in late)


def test_a_transaction_that_began_writing_first_is_read_first_even_at_a_later_position(
    app, follower, owner, as_app
):
    """Read one at a time, events come in transaction order, so a later position is not lost."""
    tenant = new_id("tenant")
    start = origin(owner)
    event_a, event_b = delivered(tenant, new_id("lead")), delivered(tenant, new_id("lead"))
    early = as_app()
    early.execute("SELECT pg_current_xact_id()")  # A's transaction takes its id first
    b = app.append(tenant, event_b.lead_id, [event_b], expected_version=0)
    a = early.execute(*append_call(event_a)).fetchone()  # then inserts, at a later position
    early.commit()
    assert a is not None
    assert b.positions[0] < a[0]

    seen: list[RecordedEvent] = []
    after, give_up = start, time.monotonic() + DEADLINE
    while len(ours(seen, {tenant})) < 2 and time.monotonic() < give_up:
        batch = follower.read_all(after=after, limit=1)
        seen.extend(batch)
        after = batch[-1].checkpoint if batch else after
        if not batch:
            follower.wait_for_events(0.2)
    assert [r.event_id for r in ours(seen, {tenant})] == [event_a.event_id, event_b.event_id]


def test_a_rolled_back_append_leaves_no_event_and_does_not_stall_the_follower(
    stores, follower, owner
):
    """An append that fails after its insert is never seen; later events still arrive."""
    tenant = new_id("tenant")
    start = origin(owner)
    gate = Gate()
    failing = stores(role=APP_ROLE, inline_projections=[gate, FailingProjection()])
    plain = stores(role=APP_ROLE)
    doomed, kept = delivered(tenant, new_id("lead")), delivered(tenant, new_id("lead"))

    held = HeldAppend(failing, gate, tenant, doomed.lead_id, [doomed], expected_version=0)
    plain.append(tenant, kept.lead_id, [kept], expected_version=0)
    with pytest.raises(RuntimeError, match="projection failed"):
        held.commit()

    seen = ours(read_until(follower, start, {kept.event_id}), {tenant})
    assert [r.event_id for r in seen] == [kept.event_id]


class FailingProjection:
    name = "test_failing"
    tables = ()

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        raise RuntimeError("projection failed")


# --- (b) row-level security ------------------------------------------------------------------


def test_a_tenant_transaction_cannot_read_the_other_tenants_events(app, as_app):
    """Under cerniq_app, a transaction bound to tenant 1 sees none of tenant 2's rows."""
    t1, t2 = new_id("tenant"), new_id("tenant")
    lead1, lead2 = new_id("lead"), new_id("lead")
    app.append(t1, lead1, [delivered(t1, lead1)], expected_version=0)
    app.append(t2, lead2, [delivered(t2, lead2)], expected_version=0)

    conn = as_app()
    with conn.transaction():
        conn.execute("SELECT set_config('cerniq.tenant_id', %s, true)", (t1,))
        visible = conn.execute(
            "SELECT tenant_id, stream_id FROM events WHERE tenant_id IN (%s, %s)", (t1, t2)
        ).fetchall()
        by_stream = conn.execute(
            "SELECT count(*) FROM events WHERE stream_id = %s", (lead2,)
        ).fetchone()
    assert visible == [(t1, lead1)]
    assert by_stream == (0,)
    assert app.read_stream(t1, lead2) == []
    assert app.stream_version(t1, lead2) == 0
    assert [r.stream_id for r in app.read_stream(t2, lead2)] == [lead2]


def test_a_tenant_transaction_cannot_write_the_other_tenants_events(app, as_app):
    """Inserting a row of tenant 2 in tenant 1's transaction fails the policy's WITH CHECK."""
    t1, t2 = new_id("tenant"), new_id("tenant")
    lead = new_id("lead")
    row = serialization.to_row(delivered(t2, lead), MemoryVault())
    insert = (
        "INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,"
        " schema_version, data, occurred_at) VALUES (%s, %s, 1, %s, %s, 1, %s, %s)"
    )
    params = (t2, lead, row.event_id, row.event_type, row.data.decode(), T0)
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        in_tenant(as_app(), t1, insert, params)
    assert app.stream_version(t2, lead) == 0


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_a_tenant_bound_transaction_cannot_append_for_another_tenant(as_app, batch):
    """The append functions refuse to rebind a transaction already bound to another tenant."""
    t1, t2 = new_id("tenant"), new_id("tenant")
    event = delivered(t2, new_id("lead"))
    call, params = append_call(event, batch=batch)
    with pytest.raises(errors.RaiseException, match="bound to tenant"):
        in_tenant(as_app(), t1, call, params)


def test_without_a_tenant_the_application_role_sees_nothing_and_may_not_change_rows(app, as_app):
    """No tenant set: no rows. And the log is append-only: UPDATE and DELETE are refused."""
    tenant, lead = new_id("tenant"), new_id("lead")
    app.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
    conn = as_app()
    with conn.transaction():
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    for statement in ("UPDATE events SET event_type = 'x'", "DELETE FROM events"):
        with pytest.raises(errors.InsufficientPrivilege):
            in_tenant(conn, tenant, f"{statement} WHERE stream_id = %s", (lead,))


def test_the_follower_role_reads_every_tenant_and_the_application_role_may_not(
    app, follower, owner
):
    """read_all and an unfiltered export need the follower role; it sees both tenants."""
    start = origin(owner)
    t1, t2 = new_id("tenant"), new_id("tenant")
    e1, e2 = delivered(t1, new_id("lead")), delivered(t2, new_id("lead"))
    app.append(t1, e1.lead_id, [e1], expected_version=0)
    app.append(t2, e2.lead_id, [e2], expected_version=0)

    seen = ours(read_until(follower, start, {e1.event_id, e2.event_id}), {t1, t2})
    assert {r.event_id for r in seen} == {e1.event_id, e2.event_id}
    exported = ours(list(follower.export(from_position=seen[0].global_position)), {t1, t2})
    assert {r.event_id for r in exported} == {e1.event_id, e2.event_id}
    assert [r.event_id for r in app.export(tenant_id=t1)] == [e1.event_id]
    with pytest.raises(EventStoreError, match="across tenants"):
        app.read_all()
    with pytest.raises(EventStoreError, match="across tenants"):
        list(app.export())


# --- (c) writers racing on one stream --------------------------------------------------------


def race(store, events, version):
    """Append each event on its own thread, all released at once at `version`.

    Returns what each attempt ended with: its AppendResult, or the error it raised.
    """
    start = threading.Barrier(len(events))

    def attempt(event):
        start.wait(DEADLINE)
        try:
            return store.append(event.tenant_id, event.lead_id, [event], expected_version=version)
        except EventStoreError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(attempt, events))


def test_eight_writers_racing_for_each_version_leave_one_winner_and_contiguous_versions(app):
    """Eight threads append at the same expected version: one wins, seven get a conflict."""
    tenant, lead = new_id("tenant"), new_id("lead")
    winners: list[str] = []
    for version in range(6):
        events = [delivered(tenant, lead) for _ in range(8)]
        outcomes = race(app, events, version)
        won = [
            e.event_id
            for e, o in zip(events, outcomes, strict=True)
            if not isinstance(o, Exception)
        ]
        lost = [o for o in outcomes if isinstance(o, Exception)]
        assert len(won) == 1, f"version {version + 1}: {len(won)} winners"
        assert all(isinstance(o, ConcurrencyConflict) for o in lost), lost
        assert {(o.expected, o.actual) for o in lost} <= {(version, version + 1)}
        winners.extend(won)

    stream = app.read_stream(tenant, lead)
    assert [r.stream_version for r in stream] == list(range(1, 7))
    assert [r.event_id for r in stream] == winners


def test_an_expected_version_ahead_of_the_stream_is_a_conflict_and_leaves_no_gap(app):
    """No unique index catches a claim to a version the stream has not reached: the check does."""
    tenant, lead = new_id("tenant"), new_id("lead")
    app.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
    with pytest.raises(ConcurrencyConflict) as conflict:
        app.append(tenant, lead, [delivered(tenant, lead)], expected_version=3)
    assert (conflict.value.expected, conflict.value.actual) == (3, 1)
    assert [r.stream_version for r in app.read_stream(tenant, lead)] == [1]


def test_a_writer_that_loses_the_race_on_the_unique_index_gets_a_conflict(stores, app, owner):
    """Both pass the version check; the later insert waits, then fails as a conflict."""
    tenant, lead = new_id("tenant"), new_id("lead")
    gate = Gate()
    first = stores(role=APP_ROLE, inline_projections=[gate])
    winner, loser = delivered(tenant, lead), delivered(tenant, lead)

    held = HeldAppend(first, gate, tenant, lead, [winner], expected_version=0)
    with ThreadPoolExecutor(max_workers=1) as pool:
        racing = pool.submit(app.append, tenant, lead, [loser], expected_version=0)
        wait_until_blocked_by(owner, gate.backend_pid)  # it passed the check and waits
        held.commit()
        with pytest.raises(ConcurrencyConflict) as conflict:
            racing.result(timeout=DEADLINE)
    assert (conflict.value.expected, conflict.value.actual) == (0, 1)
    assert [r.event_id for r in app.read_stream(tenant, lead)] == [winner.event_id]


# --- (d) idempotent append -------------------------------------------------------------------


def test_a_retried_append_is_a_no_op_that_reports_the_first_positions(app, owner):
    """Appending the same events again stores nothing and returns where they are."""
    tenant, lead = new_id("tenant"), new_id("lead")
    events = [delivered(tenant, lead) for _ in range(3)]
    first = app.append(tenant, lead, events, expected_version=0)
    app.append(tenant, lead, [delivered(tenant, lead)], expected_version=3)

    again = app.append(tenant, lead, events, expected_version=0)

    assert again == AppendResult(stream_version=4, appended=0, positions=first.positions)
    count = owner.execute("SELECT count(*) FROM events WHERE stream_id = %s", (lead,))
    assert count.fetchone() == (4,)
    with pytest.raises(InconsistentRetry):
        app.append(tenant, lead, [events[0], delivered(tenant, lead)], expected_version=4)


def test_a_retry_racing_its_original_waits_for_it_and_becomes_a_no_op(stores, app, owner):
    """A retry sent while the original is uncommitted returns the original's positions."""
    tenant, lead = new_id("tenant"), new_id("lead")
    gate = Gate()
    original = stores(role=APP_ROLE, inline_projections=[gate])
    events = [delivered(tenant, lead) for _ in range(2)]

    held = HeldAppend(original, gate, tenant, lead, events, expected_version=0)
    with ThreadPoolExecutor(max_workers=1) as pool:
        retry = pool.submit(app.append, tenant, lead, events, expected_version=0)
        wait_until_blocked_by(owner, gate.backend_pid)
        first = held.commit()
        again = retry.result(timeout=DEADLINE)
    assert first.appended == 2
    assert again == AppendResult(stream_version=2, appended=0, positions=first.positions)
    assert len(app.read_stream(tenant, lead)) == 2


def test_a_racing_copy_of_an_event_into_another_stream_is_refused(stores, app, owner):
    """The same event id racing into a second stream waits on its unique index, then fails."""
    tenant = new_id("tenant")
    gate = Gate()
    original = stores(role=APP_ROLE, inline_projections=[gate])
    event = delivered(tenant, new_id("lead"))
    other = new_id("lead")
    copy = MessageDelivered(
        event_id=event.event_id,
        tenant_id=tenant,
        lead_id=other,
        occurred_at=T0,
        message_id=event.message_id,
    )

    held = HeldAppend(original, gate, tenant, event.lead_id, [event], expected_version=0)
    with ThreadPoolExecutor(max_workers=1) as pool:
        racing = pool.submit(app.append, tenant, other, [copy], expected_version=0)
        wait_until_blocked_by(owner, gate.backend_pid)
        held.commit()
        with pytest.raises(InconsistentRetry):
            racing.result(timeout=DEADLINE)
    stored = owner.execute("SELECT count(*) FROM events WHERE event_id = %s", (event.event_id,))
    assert stored.fetchone() == (1,)


# --- the wake-up hint ------------------------------------------------------------------------


def test_wait_for_events_wakes_on_an_append_and_times_out_without_one(app, follower):
    """A committed append wakes a waiting follower; with nothing appended the wait ends empty."""
    follower.wait_for_events(0)  # start listening
    while follower.wait_for_events(0):  # and drain what other tests left behind
        pass
    tenant, lead = new_id("tenant"), new_id("lead")
    app.append(tenant, lead, [delivered(tenant, lead)], expected_version=0)
    assert follower.wait_for_events(DEADLINE) is True
    assert follower.wait_for_events(0) is False


def test_a_follower_held_back_by_a_silent_transaction_is_woken_when_it_ends(
    app, follower, owner, as_app
):
    """Events behind the horizon wake the follower again even if the blocker never notifies."""
    tenant, lead = new_id("tenant"), new_id("lead")
    start = origin(owner)
    follower.wait_for_events(0)  # listening from here on
    blocker = as_app()
    blocker.execute("SELECT pg_current_xact_id()")  # an older transaction that writes nothing
    event = delivered(tenant, lead)
    app.append(tenant, lead, [event], expected_version=0)

    assert ours(follower.read_all(after=start), {tenant}) == []  # held back by the blocker
    follower.wait_for_events(DEADLINE)  # the append's NOTIFY
    assert ours(follower.read_all(after=start), {tenant}) == []
    blocker.commit()  # ends without a NOTIFY

    assert follower.wait_for_events(DEADLINE) is True
    seen = ours(read_until(follower, start, {event.event_id}), {tenant})
    assert [r.event_id for r in seen] == [event.event_id]
