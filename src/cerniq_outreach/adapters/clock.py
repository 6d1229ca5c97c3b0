"""Clocks: the wall clock for production, and a simulated one for the demo and tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        """The current instant, timezone-aware in UTC."""
        return datetime.now(UTC)


class SimulatedClock:
    """Time that starts at `start` and runs `speed` times faster than real time.

    `speed=1` follows real time from `start`, `speed=600` makes ten minutes pass each real
    second (the demo), and `speed=0` stops the clock so only `advance` and `set` move it (tests).
    Elapsed real time is read from a monotonic source, so a wall-clock jump (NTP, suspend, a
    daylight-saving change) never makes simulated time run backwards. Safe to share between
    threads.
    """

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        _require_aware(start)
        if not speed >= 0:  # also rejects NaN
            raise ValueError(f"speed must be zero or positive, not {speed!r}")
        self._speed = speed
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._anchor = start.astimezone(UTC)
        self._anchored_at = monotonic()

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per real second."""
        return self._speed

    def now(self) -> datetime:
        """The simulated instant, timezone-aware in UTC."""
        with self._lock:
            return self._now_locked()

    def advance(self, delta: timedelta) -> datetime:
        """Move simulated time forward by `delta` and return the new instant.

        Raises:
            ValueError: `delta` is negative (use `set` to go back on purpose).
        """
        if delta < timedelta(0):
            raise ValueError(f"cannot advance by a negative interval ({delta})")
        with self._lock:
            self._anchor += delta
            return self._now_locked()

    def set(self, instant: datetime) -> None:
        """Jump to `instant`; time keeps running at `speed` from there."""
        _require_aware(instant)
        with self._lock:
            self._anchor = instant.astimezone(UTC)
            self._anchored_at = self._monotonic()

    def _now_locked(self) -> datetime:
        elapsed = self._monotonic() - self._anchored_at
        return self._anchor + timedelta(seconds=elapsed * self._speed)


def _require_aware(instant: datetime) -> None:
    # A naive datetime would silently be read as local time somewhere down the line.
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, not naive {instant.isoformat()}")


class AnchoredClock:
    """Simulated time that every process shares: `start + (wall - anchor) * speed`.

    Unlike `SimulatedClock`, which counts from the moment it is created, this one counts
    from a wall-clock `anchor` (Unix time) that all processes are given (`CERNIQ_CLOCK`), so
    a scheduler and workers started seconds apart agree on the simulated instant. It reads
    the wall clock, so it suits demonstrations and tests, not production.
    """

    def __init__(
        self,
        start: datetime,
        speed: float,
        anchor: float,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        _require_aware(start)
        if not speed >= 0:
            raise ValueError(f"speed must be zero or positive, not {speed!r}")
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._anchor = anchor
        self._wall = wall

    @property
    def speed(self) -> float:
        """How many simulated seconds pass per real second."""
        return self._speed

    def now(self) -> datetime:
        """The shared simulated instant, timezone-aware in UTC."""
        elapsed = max(0.0, self._wall() - self._anchor)
        return self._start + timedelta(seconds=elapsed * self._speed)
