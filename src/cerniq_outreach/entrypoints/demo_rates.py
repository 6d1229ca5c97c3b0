"""The sandbox's outcome rates for `serve --demo`: quicker readers and repliers than life.

A person watching the demo should see replies and reviews within the first minute (five
simulated minutes a second), so reads and replies come within an hour or two instead of
a day. The `demo` command keeps the sandbox's default, more realistic delays.
"""

from __future__ import annotations

from typing import Final

from cerniq_outreach.adapters.channels.sandbox_config import (
    ColdEmailRates,
    Delay,
    SandboxRates,
    WarmEmailRates,
    WhatsAppRates,
)

_MINUTE: Final = 60.0

LIVELY_RATES: Final = SandboxRates(
    whatsapp=WhatsAppRates(
        read_delay=Delay(min_seconds=30, max_seconds=40 * _MINUTE),
        reply_delay=Delay(min_seconds=60, max_seconds=60 * _MINUTE),
    ),
    cold_email=ColdEmailRates(
        send_delay=Delay(min_seconds=60, max_seconds=20 * _MINUTE),
        engagement_delay=Delay(min_seconds=120, max_seconds=60 * _MINUTE),
        reply_delay=Delay(min_seconds=300, max_seconds=120 * _MINUTE),
    ),
    warm_email=WarmEmailRates(engagement_delay=Delay(min_seconds=60, max_seconds=60 * _MINUTE)),
)
