"""The in-process wake-up behind `wait_for_events` of the memory and SQLite stores."""

from __future__ import annotations

import threading
import time


class AppendSignal:
    """Tells waiting followers that something was appended in this process.

    A counter goes up on every append. Each thread remembers the count it saw when its last
    wait returned, so an append that lands between a follower's read and its next wait still
    wakes it (no lost wake-up), and several followers in several threads are all woken.
    A thread's first wait counts from the moment it starts waiting. Appends by another
    process (SQLite file shared by two processes) are not seen here: followers find them by
    polling, which they do anyway after every timeout.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._seen = threading.local()

    def notify(self) -> None:
        """Record an append and wake every waiting thread."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """True once something was appended since this thread's last wait; False on timeout."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._cond:
            seen: int = getattr(self._seen, "generation", self._generation)
            # A loop, because Condition.wait may return early (spurious or another notify).
            while self._generation == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._seen.generation = seen
                    return False
                self._cond.wait(remaining)
            self._seen.generation = self._generation
            return True
