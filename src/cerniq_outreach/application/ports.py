"""The ports: what the application needs from the outside world, as Protocols.

Adapters implement them (in memory for the embedded mode and tests, real services in
production); only `bootstrap.py` chooses which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime


class Clock(Protocol):
    """The source of the current time.

    The domain never reads a clock: handlers ask this port and pass the time in, so the demo
    can run business days in minutes and tests can set the time exactly.
    """

    def now(self) -> datetime:
        """The current instant as a timezone-aware datetime in UTC."""
        ...
