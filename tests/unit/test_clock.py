"""Clocks: the system clock is UTC; simulated time runs at its speed and moves only forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock, SystemClock
from cerniq_outreach.application.ports import Clock

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=2)))  # 07:00 UTC


class FakeMonotonic:
    """A monotonic source the test moves by hand, so no test waits on real time."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def test_both_clocks_satisfy_the_port():
    """SystemClock and SimulatedClock are drop-in implementations of the Clock port."""
    clocks: list[Clock] = [SystemClock(), SimulatedClock(START)]
    for clock in clocks:
        now = clock.now()
        assert now.tzinfo is not None
        assert now.utcoffset() == timedelta(0)


def test_system_clock_reads_the_current_utc_time():
    """The system clock's reading lies between two readings of the wall clock around it."""
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert before <= now <= after


def test_simulated_time_runs_speed_times_faster_than_real_time():
    """At speed 600 one real second is ten simulated minutes."""
    real = FakeMonotonic()
    clock = SimulatedClock(START, speed=600, monotonic=real)
    assert clock.now() == START.astimezone(UTC)
    real.value += 1.0
    assert clock.now() == START + timedelta(minutes=10)


def test_a_stopped_clock_moves_only_when_advanced_or_set():
    """At speed 0 time stands still; advance and set move it exactly."""
    real = FakeMonotonic()
    clock = SimulatedClock(START, speed=0, monotonic=real)
    real.value += 3600
    assert clock.now() == START
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
    later = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    clock.set(later)
    assert clock.now() == later


def test_set_restarts_the_run_from_the_new_instant():
    """After `set`, time keeps running at the clock's speed from the new instant."""
    real = FakeMonotonic()
    clock = SimulatedClock(START, speed=2, monotonic=real)
    real.value += 10
    target = datetime(2026, 1, 1, tzinfo=UTC)
    clock.set(target)
    real.value += 5
    assert clock.now() == target + timedelta(seconds=10)


def test_advancing_backwards_is_refused():
    """`advance` only moves forward; going back must be an explicit `set`."""
    clock = SimulatedClock(START, speed=0)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == START


@pytest.mark.parametrize("speed", [-1.0, float("nan")])
def test_a_negative_or_undefined_speed_is_refused(speed):
    """Speed is a non-negative number of simulated seconds per real second."""
    with pytest.raises(ValueError, match="speed"):
        SimulatedClock(START, speed=speed)


def test_naive_datetimes_are_refused():
    """A naive datetime would be read as someone's local time; only aware ones are accepted."""
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedClock(datetime(2026, 3, 2, 9, 0))  # noqa: DTZ001
    clock = SimulatedClock(START, speed=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 3, 2, 9, 0))  # noqa: DTZ001
