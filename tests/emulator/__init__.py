"""A local stand-in for TimelinesAI, Instantly and Resend, spoken to over real HTTP.

`Control` holds the switches a test flips (faults, invalid recipients, revoked keys) and the
requests the emulator saw; `app.EmulatorApp` is the ASGI app; `fixtures` serves it on loopback.
"""

from emulator.control import Control, Fault, Recorded

__all__ = ["Control", "Fault", "Recorded"]
