"""Fixtures of the end-to-end tests: the provider emulator (live adapters over real HTTP)."""

from emulator.fixtures import emulator, emulator_server

__all__ = ["emulator", "emulator_server"]
