"""One scheduler at a time: a PostgreSQL advisory lock, or a file lock next to the SQLite file.

The scheduler is the only writer of decisions that must not be taken twice at once (phone
pacing, the schedule index), so a second scheduler process waits for the lock instead of
ticking. On PostgreSQL the lock belongs to a dedicated session: if that session dies (the
database restarted, the network dropped), the lock is gone, so `held()` asks the session
before every tick and the scheduler stops when it no longer holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Final, Protocol

import psycopg


class Stopping(Protocol):
    """What a waiting lock asks of the caller's stop signal (a `threading.Event` will do)."""

    def is_set(self) -> bool:
        """Whether to give up."""
        ...

    def wait(self, timeout: float) -> bool:
        """Pause up to `timeout` seconds; True when it is time to give up."""
        ...


SCHEDULER_LOCK_KEY: Final = 7_220_002
"""The advisory lock id of the scheduler (migrations use 7_220_001)."""


class LeaderLock:
    """Exclusive leadership; `acquire` waits, `held` checks, `release` gives it up."""

    def acquire(self, stop: Stopping, poll: float = 2.0) -> bool:
        """Wait until the lock is ours (True) or `stop` is set (False)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def held(self) -> bool:
        """Whether we still hold the lock."""
        raise NotImplementedError  # pragma: no cover - abstract

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        raise NotImplementedError  # pragma: no cover - abstract


class PostgresLeaderLock(LeaderLock):
    """`pg_try_advisory_lock` on a session of its own."""

    def __init__(self, url: str, key: int = SCHEDULER_LOCK_KEY) -> None:
        self._url = url
        self._key = key
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def acquire(self, stop: Stopping, poll: float = 2.0) -> bool:
        """Try every `poll` seconds until ours or stopped."""
        while not stop.is_set():
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if row is not None and row[0]:
                return True
            stop.wait(poll)
        return False

    def held(self) -> bool:
        """The session is alive (a lock held by a dead session is released by the server)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
                " AND pid = pg_backend_pid() AND granted",
                (self._key,),
            ).fetchone()
        except psycopg.Error:
            return False
        return row is not None and bool(row[0])

    def release(self) -> None:
        """Close the session (which releases the lock)."""
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None


class FileLeaderLock(LeaderLock):
    """`flock` on a file beside the database (one machine: the SQLite case)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self, stop: Stopping, poll: float = 2.0) -> bool:
        """Try every `poll` seconds until ours or stopped."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        while not stop.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                stop.wait(poll)
                continue
            self._fd = fd
            return True
        os.close(fd)
        return False

    def held(self) -> bool:
        """A file lock lasts as long as its descriptor."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
