"""Provider request limits as a token bucket: the pure model every rate limiter follows.

A bucket holds up to `capacity` tokens and regains `capacity` of them every
`period_seconds`, continuously. A request takes `cost` tokens when they are there; when not,
it takes nothing and learns how long until they will be. TimelinesAI allows 50 requests a
minute per workspace (sends, status checks and history reads share them); Resend a few a
second; Instantly about ten.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """`capacity` requests per `period_seconds`, with bursts up to `capacity`.

    Raises:
        ConfigurationError: a capacity below 1 or a period that is not positive.
    """

    capacity: int
    period_seconds: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or not self.period_seconds > 0:
            raise ConfigurationError(
                f"a rate limit needs capacity >= 1 and a positive period, got "
                f"{self.capacity} per {self.period_seconds} s"
            )

    @property
    def refill_per_second(self) -> float:
        """Tokens regained per second."""
        return self.capacity / self.period_seconds


TIMELINESAI_LIMIT = RateLimit(capacity=50, period_seconds=60.0)
RESEND_LIMIT = RateLimit(capacity=2, period_seconds=1.0)
INSTANTLY_LIMIT = RateLimit(capacity=10, period_seconds=1.0)


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket's tokens as of `updated_ms` (milliseconds since the epoch)."""

    tokens: float
    updated_ms: int


def take(
    bucket: Bucket | None, limit: RateLimit, at: datetime, cost: int = 1
) -> tuple[Bucket, float]:
    """Take `cost` tokens at `at`: the new bucket and 0.0, or the unchanged one and the wait.

    A bucket never seen starts full. Time that runs backwards (another process's clock a
    little behind) refills nothing rather than draining the bucket.

    Raises:
        InvalidCommand: `cost` is below 1 or above the capacity (it could never pass).
    """
    if not 1 <= cost <= limit.capacity:
        raise InvalidCommand(f"a request costs 1..{limit.capacity} tokens, not {cost}")
    now_ms = to_ms(at)
    if bucket is None:
        tokens = float(limit.capacity)
    else:
        elapsed = max(0, now_ms - bucket.updated_ms) / 1000.0
        tokens = min(float(limit.capacity), bucket.tokens + elapsed * limit.refill_per_second)
    if tokens >= cost:
        return Bucket(tokens=tokens - cost, updated_ms=max(now_ms, _ms(bucket))), 0.0
    wait = (cost - tokens) / limit.refill_per_second
    return bucket or Bucket(tokens=tokens, updated_ms=now_ms), wait


def to_ms(at: datetime) -> int:
    """Milliseconds since the epoch (the unit the Redis scripts count in)."""
    return int(at.timestamp() * 1000)


def _ms(bucket: Bucket | None) -> int:
    return 0 if bucket is None else bucket.updated_ms
