"""SQLite connections handed out per thread, and the read-model database on them.

Each thread gets its own connection: a sqlite3 connection must not be used by two threads
at once, and per-thread connections let readers run in parallel (WAL mode). An in-memory
database (`":memory:"`) or a connection passed in is one connection, shared behind a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

from cerniq_outreach.adapters.sql import SqliteTx
from cerniq_outreach.application.records import EventStoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

Database = str | Path | sqlite3.Connection


class SqliteConnections:
    """Connections to one SQLite database, handed out per thread; see the module docstring.

    A connection passed in is switched to autocommit (`isolation_level = None`: transactions
    are begun explicitly) and is not closed by `close`; it must allow use from other
    threads (`check_same_thread=False`) if more than one thread uses the store.
    """

    def __init__(
        self, database: Database, *, busy_timeout: float = 5.0, durable: bool = True
    ) -> None:
        self._busy_timeout = busy_timeout
        self._synchronous = "FULL" if durable else "NORMAL"
        self._lock = threading.RLock()
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._closed = False
        self._path: str | None = None
        self._shared: sqlite3.Connection | None = None
        if isinstance(database, sqlite3.Connection):
            database.isolation_level = None
            self._shared = database
        elif str(database) == ":memory:":
            # Each connection to ":memory:" is a database of its own: share one.
            self._shared = self._open(":memory:")
            self._opened.append(self._shared)
        else:
            self._path = str(database)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, for the duration of the block."""
        if self._shared is not None:
            # One connection for every thread: hold the lock while it is in use, or two
            # threads' statements would interleave inside each other's transactions.
            with self._lock:
                self._check_open()
                yield self._shared
            return
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                self._check_open()
                conn = self._open(cast("str", self._path))
                self._opened.append(conn)
            self._local.conn = conn
        else:
            self._check_open()
        yield conn

    @contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding SQLite's write lock from its start; commits on success.

        IMMEDIATE, not SQLite's default DEFERRED: a deferred transaction that reads and then
        writes must upgrade its lock, and in WAL mode it fails at once (SQLITE_BUSY, without
        waiting) if another writer committed since its read. Taking the write lock first
        makes it wait its turn instead, and makes check-then-insert atomic.
        """
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls some errors back by itself (a full disk); don't fail twice.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close every connection opened here (not one that was passed in)."""
        with self._lock:
            self._closed = True
            for conn in self._opened:
                conn.close()
            self._opened.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise EventStoreError("the SQLite database was closed")

    def _open(self, path: str) -> sqlite3.Connection:
        # timeout= is SQLite's busy timeout: how long a writer waits for the write lock.
        # check_same_thread=False only so that close() may close every thread's connection;
        # each connection is otherwise used by one thread (or under the lock).
        conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout
        )
        conn.execute("PRAGMA journal_mode = WAL")  # persistent in the file; a no-op after
        # FULL, not NORMAL, for the log: in WAL mode NORMAL can lose the last commits on
        # power loss, and the log is the source of truth (a lost MessageSent would send the
        # message twice). NORMAL (durable=False) only for what may be lost that way.
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn


class SqliteReadModels:
    """ReadModelDatabase on SQLite: projections' tables and checkpoints in the same file.

    SQLite has no row-level security: `tenant_id` is accepted and ignored, and keeping
    tenants apart is the job of every read-model query (each filters on its tenant_id
    column). Transactions are IMMEDIATE (see `SqliteConnections.write_transaction`).
    """

    def __init__(
        self,
        database: Database | SqliteConnections,
        *,
        busy_timeout: float = 5.0,
        durable: bool = True,
    ) -> None:
        self._owns = not isinstance(database, SqliteConnections)
        self._db = (
            database
            if isinstance(database, SqliteConnections)
            else SqliteConnections(database, busy_timeout=busy_timeout, durable=durable)
        )

    @contextmanager
    def transaction(self, tenant_id: str | None = None) -> Iterator[SqliteTx]:
        """A transaction that commits on success and rolls back on error."""
        del tenant_id  # no RLS in SQLite: queries filter by tenant themselves
        with self._db.write_transaction() as conn:
            yield SqliteTx(conn)

    def close(self) -> None:
        """Close the connections, unless they are shared with an event store."""
        if self._owns:
            self._db.close()
