"""NOTIFY after appends and LISTEN for them: the wake-up hint of PostgreSQL followers.

The NOTIFY is sent after the append has committed, by a thread of the store's own, never
inside the appending transaction. A transaction that NOTIFYs takes PostgreSQL's single
notification-queue lock at pre-commit and keeps it until its commit is over, WAL flush
included: every notifying transaction on the server then commits one after the other, and
concurrent appends lose group commit (measured on this project's bench machine: 8 writers
of single-event appends, 351 events/s with the NOTIFY in the transaction against 3,810 for
plain INSERTs). Sent afterwards by a transaction that writes nothing (so it does not wait
for a flush), NOTIFY holds that lock for microseconds, and a burst of appends shares one.
NOTIFYs are also spaced (at most one per `interval`, the first of a quiet spell at once):
one per append would double the server's transactions for nothing a follower needs.
A crash between commit and NOTIFY loses a hint, never an event: followers poll after every
timeout anyway.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg import sql


class Notifier:
    """Sends NOTIFY on a channel after appends, from a daemon thread, coalescing bursts.

    `notify()` never waits for the database: it marks a notification as due and wakes the
    thread, which sends one NOTIFY for all the appends that came in meanwhile, and none
    sooner than `interval` seconds after the previous one. Its connection is opened on
    first use. Failures are swallowed: a lost hint costs latency, and the next
    notification reconnects.
    """

    def __init__(self, url: str, channel: str, *, interval: float = 0.005) -> None:
        self._url = url
        self._statement = sql.SQL("NOTIFY {}").format(sql.Identifier(channel))
        self._interval = interval
        self._cond = threading.Condition()
        self._due = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """Have a NOTIFY sent soon (one for any number of calls made before it goes)."""
        if self._due and self._thread is not None:
            # Already due: the thread clears the flag (under the lock) only just before it
            # sends, so that NOTIFY still goes after this caller's commit. Skipping the lock
            # here keeps concurrent appenders from queueing on it.
            return
        with self._cond:
            if self._closed:
                return
            self._due = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="cerniq-events-notify", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Send what is due, then stop the thread and close its connection."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        sent = -self._interval  # long ago: the first NOTIFY goes at once
        try:
            while True:
                with self._cond:
                    while not self._due and not self._closed:
                        self._cond.wait()
                    if not self._due:
                        return  # closed, and nothing left to send
                    # Appends until the interval is over share this NOTIFY.
                    while (rest := sent + self._interval - time.monotonic()) > 0:
                        if self._closed:
                            break
                        self._cond.wait(rest)
                    self._due = False
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self._url, autocommit=True)
                    conn.execute(self._statement)
                except psycopg.Error:
                    if conn is not None:
                        conn.close()
                    conn = None
                sent = time.monotonic()
        finally:
            if conn is not None:
                conn.close()


class Listener:
    """Waits for notifications on one channel over a connection of its own.

    The connection is opened on first use and kept: not a pooled one, which would be handed
    to someone else between waits and miss notifications in the meantime. Notifications
    that arrive between two waits are buffered by the connection, so none is lost once
    listening has begun. Thread-safe (waits take turns).
    """

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._statement = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def wait(self, timeout: float) -> bool:
        """True once a notification came (now or since the last wait), False on timeout.

        A broken connection is dropped and reported as a wake-up, so the follower reads
        again; the next wait listens on a new connection.
        """
        with self._lock:
            try:
                conn = self._connection()
                woke = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
                if woke:
                    # Each commit notifies on its own; swallow those already here, so the
                    # next wait does not return at once for events the caller reads now.
                    for _ in conn.notifies(timeout=0):
                        pass
            except psycopg.OperationalError:
                self._drop()
                return True
            return woke

    def close(self) -> None:
        """Stop listening and close the connection."""
        with self._lock:
            self._drop()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._url, autocommit=True)
            conn.execute(self._statement)
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
