"""The pure domain: events, the lead-journey state machine and the business policies.

Nothing here does I/O, reads a clock or draws an unseeded random number. It imports the
standard library and msgspec only (enforced by import-linter in `make lint`).
"""
