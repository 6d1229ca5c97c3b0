"""Event store + read-model database pairs for the integration tests.

A SQLite file, or a fresh PostgreSQL database with the application's roles (appends as
cerniq_app with the inline projections, follows and rebuilds as cerniq_follower), plus raw
owner access to both.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from cerniq_outreach.adapters.eventstore.postgres import PostgresEventStore
from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore
from cerniq_outreach.adapters.eventstore.sqlite_database import SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate_postgres, migrate_sqlite
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.adapters.vault import MemoryVault
from cerniq_outreach.application.projections import INLINE_PROJECTIONS
from cerniq_outreach.domain.codec import UnknownEventType

import services

if TYPE_CHECKING:
    from collections.abc import Iterator

# A test projection that counts how often each event reached it: a double application shows
# as times = 2, a skipped event as a missing row.
COUNT_TABLE = "projection_applications"
_COUNT_DDL = (
    f"CREATE TABLE {COUNT_TABLE} (global_position bigint PRIMARY KEY,"
    " tenant_id text NOT NULL, times integer NOT NULL)"
)


class CountingProjection:
    """Counts applications per event (see COUNT_TABLE); not idempotent on purpose."""

    name = "count_applications"
    tables: tuple[str, ...] = (COUNT_TABLE,)
    keys = {COUNT_TABLE: ("global_position",)}  # noqa: RUF012 - read-only in practice
    idempotent = False

    def apply(self, tx, record) -> None:
        tx.execute(
            f"INSERT INTO {COUNT_TABLE} (global_position, tenant_id, times)"  # noqa: S608
            " VALUES (:position, :tenant, 1) ON CONFLICT (global_position) DO UPDATE"
            f" SET times = {COUNT_TABLE}.times + 1",
            {"position": record.global_position, "tenant": record.tenant_id},
        )


class SqliteBackend:
    """One SQLite file: the store (with inline projections) and the read models."""

    name = "sqlite"

    def __init__(self, path) -> None:
        self.path = str(path)
        migrate_sqlite(self.path)
        with self.owner() as conn:
            conn.execute(_COUNT_DDL)
        self.vault = MemoryVault()
        self.app = SqliteEventStore(
            self.path, self.vault, inline_projections=INLINE_PROJECTIONS, busy_timeout=30
        )
        self.follower = self.app
        self.db = SqliteReadModels(self.path, busy_timeout=30)

    @contextmanager
    def owner(self) -> Iterator[Any]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self.owner() as conn:
            conn.execute(sql, params)

    def insert_unknown_event(self, tenant: str, lead: str, version: int) -> int:
        """A row of a type this code does not know; returns its global position."""
        with self.owner() as conn:
            cur = conn.execute(
                "INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,"
                " schema_version, data, occurred_at, recorded_at) VALUES (?, ?, ?, ?,"
                " 'LeadTeleported', 1, '{\"type\": \"LeadTeleported\"}', ?, ?)",
                (
                    tenant,
                    lead,
                    version,
                    f"unknown-{lead}",
                    *["2026-03-02T08:00:00.000000+00:00"] * 2,
                ),
            )
            return int(cur.lastrowid or 0)

    def close(self) -> None:
        self.app.close()
        self.db.close()


class PostgresBackend:
    """A database of its own on the test server, migrated; stores per role."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        migrate_postgres(url)
        self.execute(_COUNT_DDL)
        self.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {COUNT_TABLE} TO cerniq_follower")
        self.vault = MemoryVault()
        self.app = PostgresEventStore(
            url, self.vault, role="cerniq_app", inline_projections=INLINE_PROJECTIONS
        )
        self.follower = PostgresEventStore(url, self.vault, role="cerniq_follower")
        self.db = PostgresReadModels(url, role="cerniq_follower")

    def execute(self, sql: str, params: tuple = ()) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), params)

    def insert_unknown_event(self, tenant: str, lead: str, version: int) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "INSERT INTO events (tenant_id, stream_id, stream_version, event_id, event_type,"
                " schema_version, data, occurred_at) VALUES (%s, %s, %s, %s, 'LeadTeleported',"
                ' 1, \'{"type": "LeadTeleported"}\', now()) RETURNING global_position',
                (tenant, lead, version, f"unknown-{lead}"),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def close(self) -> None:
        self.app.close()
        self.follower.close()
        self.db.close()


@contextmanager
def open_backend(kind: str, request, tmp_path) -> Iterator[SqliteBackend | PostgresBackend]:
    """The backend named `kind`; PostgreSQL gets a fresh database, dropped afterwards."""
    if kind == "sqlite":
        backend: SqliteBackend | PostgresBackend = SqliteBackend(tmp_path / "cerniq.db")
        try:
            yield backend
        finally:
            backend.close()
        return
    server = request.getfixturevalue("postgres_server_url")
    with services.fresh_database(server) as url:
        backend = PostgresBackend(url)
        try:
            yield backend
        finally:
            backend.close()


def wait_until_visible(store, count: int, deadline: float = 30.0) -> None:
    """Wait until a follower's read of the whole log returns `count` events.

    On PostgreSQL a follower sees an event only once every transaction that began writing
    before it has ended, anywhere on the server (other test runs included): committed is
    not yet visible. This waits for that condition (wake-ups from the store, bounded by a
    deadline), never for a fixed time.
    """
    end = time.monotonic() + deadline
    while True:
        try:
            seen = len(store.read_all(limit=count + 1000))
        except UnknownEventType:
            return  # the read reached a row it cannot decode: that row is visible
        if seen >= count:
            return
        assert time.monotonic() < end, f"only {seen} of {count} events became visible"
        store.wait_for_events(0.05)
