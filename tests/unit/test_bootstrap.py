"""The composition root wires a container from settings."""

from __future__ import annotations

from datetime import UTC, datetime

from cerniq_outreach.adapters.clock import SimulatedClock, SystemClock
from cerniq_outreach.bootstrap import bootstrap
from cerniq_outreach.settings import Settings


def test_bootstrap_uses_the_system_clock_by_default():
    """Without an override the container carries the given settings and the real clock."""
    settings = Settings.from_env({})
    container = bootstrap(settings)
    assert container.settings is settings
    assert isinstance(container.clock, SystemClock)


def test_bootstrap_takes_a_clock_override():
    """The demo and tests can hand in a simulated clock."""
    clock = SimulatedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), speed=0)
    assert bootstrap(Settings(), clock=clock).clock is clock
