"""Adapters: the concrete implementations of the application's ports.

Each port has an in-process adapter with the same failure semantics as its production one, so
the embedded mode and the production stack run the same application code.
"""
