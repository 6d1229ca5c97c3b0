"""Fixtures of the integration tests: the provider emulator and the channel adapters on it."""

from emulator.fixtures import (
    cold,
    emulator,
    emulator_server,
    fake_time,
    limiter,
    warm,
    whatsapp,
)

__all__ = ["cold", "emulator", "emulator_server", "fake_time", "limiter", "warm", "whatsapp"]
