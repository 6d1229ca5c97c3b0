"""The PostgreSQL event store: psycopg 3 with a connection pool, gap-safe for followers.

ROLES. Every connection of a store runs `SET ROLE <role>` once, when the pool opens it (a
role may always set itself, so a production URL that logs in as that role works as well as
a superuser URL in development). One store instance works as one role; a process that both
handles commands and follows the log builds two instances:

- `role="cerniq_app"` (the default) for command handlers and the API. Row-level security
  binds every transaction to one tenant (`set_config('cerniq.tenant_id', ..., true)`, i.e.
  `SET LOCAL`), so `append`, `read_stream`, `stream_version` and `export(tenant_id=...)`
  work and can only touch that tenant. Cross-tenant reads (`read_all`, `export` and
  `count_events` without a tenant) raise `EventStoreError`: under RLS they would silently
  return nothing.
- `role="cerniq_follower"` for projectors, the dispatcher and audits: reads across tenants.

Two instances rather than a second pool inside one store: the role is then visible where
the store is built (the composition root), a process that never follows the log never
holds follower connections, and production can give each role its own login URL.

WHERE THE REST IS. An append is one call of a PL/pgSQL function of migration 0001 on an
autocommit connection (one round trip; the optimistic-concurrency race is explained
there); the statements and the gap-safety argument of `read_all` are in `postgres_sql`;
the NOTIFY that wakes followers is sent after commit, never inside it (`postgres_wakeup`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors, sql
from psycopg_pool import ConnectionPool

from cerniq_outreach.adapters.eventstore import postgres_sql as q
from cerniq_outreach.adapters.eventstore import serialization
from cerniq_outreach.adapters.eventstore.batches import (
    StoredRef,
    check_batch,
    check_version,
    retry_result,
)
from cerniq_outreach.adapters.eventstore.postgres_rows import (
    decode_rows,
    encode_metadata,
    recorded,
)
from cerniq_outreach.adapters.eventstore.postgres_wakeup import Listener, Notifier
from cerniq_outreach.adapters.sql import PsycopgTx
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

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from cerniq_outreach.application.ports import PersonalDataVault, Projection
    from cerniq_outreach.domain.events import BaseEvent

APP_ROLE = "cerniq_app"
FOLLOWER_ROLE = "cerniq_follower"

Row = tuple[Any, ...]

NO_METADATA = Metadata()
HELD_BACK_POLL = 0.05  # seconds between reads while committed events wait for the horizon


class PostgresEventStore:
    """EventStore on PostgreSQL; see the module docstring for roles and gap safety.

    Args:
        url: a libpq URL. Its login must be `role` or allowed to `SET ROLE` to it.
        vault: seals and opens the personal fields of events.
        role: the database role every connection works as (`cerniq_app` or
            `cerniq_follower`).
        inline_projections: applied to appended events in the append's transaction.
        pool_size: the most connections the pool opens.
        pool_timeout: seconds to wait for a free connection before failing.
    """

    def __init__(
        self,
        url: str,
        vault: PersonalDataVault,
        *,
        role: str = APP_ROLE,
        inline_projections: Sequence[Projection] = (),
        pool_size: int = 8,
        pool_timeout: float = 30.0,
        durable: bool = True,
    ) -> None:
        # durable=False: commits do not wait for the WAL flush (synchronous_commit off), for
        # a store whose last commits may be lost to a crash (a demo's). Never corruption.
        self._durable = durable
        self._url = url
        self._vault = vault
        self._role = role
        self._inline = tuple(inline_projections)
        # min_size=0: connections open on demand, in the thread that waits for them. With a
        # connection opening in the background at start, the first request raced it and
        # made the pool grow a second one at some later, unpredictable moment.
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=0,
            max_size=pool_size,
            timeout=pool_timeout,
            kwargs={"application_name": f"cerniq-events-{role}"},
            configure=self._configure,
            name=f"cerniq-events-{role}",
            open=True,
        )
        self._listener = Listener(url, q.CHANNEL)
        self._notifier = Notifier(url, q.CHANNEL)
        # Where the last short read_all ended (caught up), for `wait_for_events` to ask
        # whether committed events wait behind the horizon; None after a full batch.
        self._caught_up_at: Checkpoint | None = None

    @property
    def role(self) -> str:
        """The database role this store's connections work as."""
        return self._role

    def _configure(self, conn: psycopg.Connection[Row]) -> None:
        # Autocommit: a single statement (an append, a follower's read) is its own
        # transaction, with no BEGIN and COMMIT round trips; multi-statement work opens
        # `conn.transaction()` explicitly.
        conn.autocommit = True
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self._role)))
        # recorded_at comes back in UTC whatever the server's default time zone.
        conn.execute("SET TIME ZONE 'UTC'")
        if not self._durable:
            conn.execute("SET synchronous_commit = off")

    # --- writing ---------------------------------------------------------------------------

    def append(
        self,
        tenant_id: str,
        stream_id: str,
        events: Sequence[BaseEvent],
        *,
        expected_version: int,
        metadata: Metadata | None = None,
    ) -> AppendResult:
        """Append `events` if the stream is still at `expected_version` (see EventStore)."""
        check_batch(tenant_id, stream_id, events)
        if not events:
            return AppendResult(
                stream_version=self.stream_version(tenant_id, stream_id), appended=0
            )
        # Sealing happens before the transaction: the vault may write a new key, and it
        # needs no lock on the log while it does.
        rows = [serialization.to_row(event, self._vault) for event in events]
        meta = metadata or NO_METADATA
        params: dict[str, Any]
        if len(rows) == 1:
            # Plain values for q.APPEND_ONE: most appends carry one event, and this path's
            # every microsecond shows in the append rate (bench_eventstore_postgres).
            row = rows[0]
            params = {
                "tenant": tenant_id,
                "stream": stream_id,
                "expected": expected_version,
                "id": row.event_id,
                "type": row.event_type,
                "schema": row.schema_version,
                "datum": row.data.decode(),
                "seal": row.sealed,
                "at": events[0].occurred_at,
                "metadata": encode_metadata(meta),
                "ids": [row.event_id],
                "types": [row.event_type],
                "schemas": [row.schema_version],
            }
        else:
            params = {
                "tenant": tenant_id,
                "stream": stream_id,
                "expected": expected_version,
                "ids": [row.event_id for row in rows],
                "types": [row.event_type for row in rows],
                "schemas": [row.schema_version for row in rows],
                "data": [row.data.decode() for row in rows],
                "sealed": [row.sealed for row in rows],
                "occurred": [event.occurred_at for event in events],
                "metadata": encode_metadata(meta),
            }
        try:
            result = self._append(params, events, meta)
        except errors.UniqueViolation:
            # A concurrent writer committed first: the same stream version (a conflict) or
            # the same event ids (a retry racing itself). Look again, outside the failed
            # transaction, at what is committed now.
            with self._connection(tenant_id) as conn:
                return self._refusal(conn, params, events, inserting=True)
        if result.appended:
            self._notifier.notify()  # after the commit, never inside it: see postgres_wakeup
        return result

    def _append(
        self, params: dict[str, Any], events: Sequence[BaseEvent], meta: Metadata
    ) -> AppendResult:
        statement = q.APPEND_ONE if len(events) == 1 else q.APPEND
        with self._connection() as conn:
            if not self._inline:
                inserted = conn.execute(statement, params).fetchall()
            else:
                # The projections' writes join the append's transaction: the journey read
                # model commits (or fails) with its events, so the API reads its own writes.
                with conn.transaction():
                    inserted = conn.execute(statement, params).fetchall()
                    tx = PsycopgTx(conn)
                    for i, row in enumerate(inserted):
                        record = recorded(params, i, events[i], row, meta)
                        for projection in self._inline:
                            projection.apply(tx, record)
            if not inserted:
                # Nothing was written. Why is read from what is committed now: stream
                # versions and stored ids only grow, so the reason found is still true.
                with conn.transaction():
                    conn.execute(q.SET_TENANT, (params["tenant"],))
                    return self._refusal(conn, params, events, inserting=False)
        return AppendResult(
            stream_version=inserted[-1][2],
            appended=len(inserted),
            positions=tuple(row[0] for row in inserted),
        )

    @staticmethod
    def _refusal(
        conn: psycopg.Connection[Row],
        params: dict[str, Any],
        events: Sequence[BaseEvent],
        *,
        inserting: bool,
    ) -> AppendResult:
        """Why an append stored nothing: a no-op retry (returned) or an error (raised).

        The rules are the other stores' (`batches`); only the lookups are SQL. `inserting`
        says the insert failed on a unique index rather than refusing.
        """
        tenant, stream, expected = params["tenant"], params["stream"], params["expected"]
        stored = {
            row[0]: StoredRef(row[1], row[2], row[3])
            for row in conn.execute(q.STORED, params).fetchall()
        }
        row = conn.execute(q.STREAM_VERSION, (tenant, stream)).fetchone()
        current = int(row[0]) if row else 0
        retried = retry_result(tenant, stream, events, stored, current)
        if retried is not None:
            return retried
        check_version(stream, expected, current)
        if inserting:
            # A unique index refused an id this role cannot see: another tenant's event.
            raise InconsistentRetry(f"event ids of {tenant}/{stream} are stored elsewhere")
        # Refused when the stream was behind `expected`, and it has caught up since.
        raise ConcurrencyConflict(stream, expected, current)

    # --- reading ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self, tenant_id: str | None = None) -> Iterator[psycopg.Connection[Row]]:
        """A pooled connection; with a tenant, inside a transaction bound to it (RLS)."""
        with self._pool.connection() as conn:
            if tenant_id is None:
                yield conn  # autocommit: each statement its own transaction
                return
            with conn.transaction():
                conn.execute(q.SET_TENANT, (tenant_id,))
                yield conn

    def _fetch(self, query: str, params: Any, tenant_id: str | None = None) -> list[Row]:  # noqa: ANN401 - psycopg takes a sequence or a mapping
        # Binary results: integers and timestamps arrive without text parsing. Rows are
        # decoded after the connection went back to the pool.
        with self._connection(tenant_id) as conn:
            return conn.cursor(binary=True).execute(query, params).fetchall()

    def read_stream(self, tenant_id: str, stream_id: str) -> list[RecordedEvent]:
        """Every event of one stream, by stream version."""
        return list(
            decode_rows(self._fetch(q.READ_STREAM, (tenant_id, stream_id), tenant_id), self._vault)
        )

    def stream_version(self, tenant_id: str, stream_id: str) -> int:
        """The stream's current version (0 for an unknown stream)."""
        rows = self._fetch(q.STREAM_VERSION, (tenant_id, stream_id), tenant_id)
        return int(rows[0][0]) if rows else 0

    def read_all(self, *, after: Checkpoint = START, limit: int = 1000) -> list[RecordedEvent]:
        """The next final events after `after`, in (tx_id, position) order (gap-safe).

        Final means below the horizon: every transaction that wrote before them has ended.
        Do not follow the log from inside a write transaction of your own (on any
        connection to this server): events written after your transaction took its id stay
        beyond the horizon until it ends, so the log would look finished too early.
        """
        self._require_cross_tenant("read_all")
        rows = self._fetch(q.READ_ALL, (str(after.tx_id), after.position, limit))
        records = list(decode_rows(rows, self._vault))
        # Asked lazily, by the follower that is about to wait: a loop that reads again
        # without waiting (the engine's step) pays no second round trip per read.
        self._caught_up_at = (
            (records[-1].checkpoint if records else after) if len(records) < limit else None
        )
        return records

    def export(
        self,
        *,
        tenant_id: str | None = None,
        stream_id: str | None = None,
        from_position: int = 0,
        until: datetime | None = None,
        batch_size: int = 5000,
    ) -> Iterator[RecordedEvent]:
        """Committed events from `from_position` on, in global position order.

        `until` keeps events that occurred at or before it. Reads in keyset batches, each in
        a short transaction of its own: a slow consumer holds no connection and no snapshot
        between batches. Not a follower's read: use `read_all` to never miss late commits.
        """
        if tenant_id is None:
            self._require_cross_tenant("export of every tenant")
        params: dict[str, Any] = {
            "after": from_position - 1,
            "limit": batch_size,
            "tenant": tenant_id,
            "stream": stream_id,
            "until": until,
        }
        query = q.export_query(
            tenant=tenant_id is not None, stream=stream_id is not None, until=until is not None
        )
        while True:
            rows = self._fetch(query, params, tenant_id)
            yield from decode_rows(rows, self._vault)
            if len(rows) < batch_size:
                return
            params["after"] = rows[-1][0]

    def count_events(self, *, tenant_id: str | None = None) -> int:
        """How many events the log holds, of one tenant or of all (replay's progress bar)."""
        if tenant_id is None:
            self._require_cross_tenant("a count of every tenant's events")
            rows = self._fetch(q.COUNT, ())
        else:
            rows = self._fetch(q.COUNT_TENANT, (tenant_id,), tenant_id)
        return int(rows[0][0])

    def _require_cross_tenant(self, what: str) -> None:
        if self._role == APP_ROLE:
            raise EventStoreError(
                f"{what} reads across tenants: use a store with role {FOLLOWER_ROLE!r}"
                f" (the {APP_ROLE!r} role sees one tenant at a time)"
            )

    # --- following -------------------------------------------------------------------------

    def wait_for_events(self, timeout: float) -> bool:
        """Wait for a NOTIFY from an append, up to `timeout` seconds (a hint only).

        After a short `read_all` (caught up), first asks what lies past where it ended:
        events readable now (their transaction ended since, maybe without a NOTIFY) return
        True at once; events still behind the horizon cap the wait at `HELD_BACK_POLL`,
        since the older transaction holding them back may end without a NOTIFY. Asked
        here rather than in `read_all`, so a loop that reads without waiting pays nothing.
        """
        held_back = False
        caught_up_at = self._caught_up_at
        if caught_up_at is not None:
            params = {"tx": str(caught_up_at.tx_id), "pos": caught_up_at.position}
            ready, held = self._fetch(q.PENDING, params)[0]
            if ready:
                return True  # committed since the last read, NOTIFY or not: read again now
            held_back = bool(held)
        if held_back:
            # The last read left committed events behind the horizon; the transaction that
            # holds them back may end without a NOTIFY, so do not wait long for one.
            timeout = min(timeout, HELD_BACK_POLL)
        return self._listener.wait(timeout) or held_back

    def close(self) -> None:
        """Send a NOTIFY still due, then close the pool and both wake-up connections."""
        self._notifier.close()
        self._listener.close()
        self._pool.close()
