"""The Redis rate limiter: `domain.rate_limit.take` as one Lua script, shared by every process.

Each bucket is a hash `<prefix>rate:{<key>}` (hash-tagged by the bucket key) holding its
tokens and the millisecond of its last take; lua/token_bucket.lua refills, takes and
stores in one atomic step with the same floating-point operations as the domain model, so
its waits are the model's to the bit. Time is the caller's `at`, never Redis TIME.

Failure: when Redis cannot be reached or errs, `acquire` logs and answers a wait of
`unavailable_wait` seconds (1.0 by default) rather than raising: a provider call must wait,
not go out unmetered, and the caller already knows how to wait and ask again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from cerniq_outreach.adapters.quota.redis_calls import TOKEN_BUCKET
from cerniq_outreach.adapters.quota.redis_client import evalsha, fail_fast_client
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand
from cerniq_outreach.domain.rate_limit import to_ms
from cerniq_outreach.observability import get_logger

if TYPE_CHECKING:
    from datetime import datetime

    from cerniq_outreach.domain.rate_limit import RateLimit

_log = get_logger(__name__)

IDLE_MARGIN_MS = 3_600_000
"""An idle bucket is dropped this long after it would be full again (clocks that lag)."""


class RedisRateLimiter:
    """The RateLimiter port on Redis (redis-py, synchronous, thread-safe).

    Args:
        url: the Redis URL.
        prefix: the start of every key (no braces: the bucket key is the hash tag).
        socket_timeout: seconds before a call to Redis counts as failed.
        unavailable_wait: the wait answered when Redis fails.

    Raises:
        ConfigurationError: the prefix holds a brace.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cerniq:",
        socket_timeout: float = 0.5,
        unavailable_wait: float = 1.0,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"a rate-limit key prefix must not hold braces: {prefix!r}")
        self._prefix = prefix
        self._unavailable_wait = unavailable_wait
        self._client = fail_fast_client(url, socket_timeout=socket_timeout)

    def acquire(self, key: str, limit: RateLimit, *, at: datetime, cost: int = 1) -> float:
        """Take `cost` tokens from bucket `key`: 0.0 if taken, else the seconds to wait.

        Raises:
            InvalidCommand: `cost` is below 1 or above the capacity (it could never pass).
        """
        if not 1 <= cost <= limit.capacity:
            raise InvalidCommand(f"a request costs 1..{limit.capacity} tokens, not {cost}")
        idle_ms = math.ceil(limit.period_seconds * 1000) + IDLE_MARGIN_MS
        args = (
            TOKEN_BUCKET.sha, 1, f"{self._prefix}rate:{{{key}}}",
            to_ms(at), limit.capacity, repr(limit.period_seconds), cost, idle_ms,
        )  # fmt: skip
        try:
            return float(evalsha(self._client, TOKEN_BUCKET, args))
        except RedisError as exc:
            _log.warning("rate_limiter_unavailable", bucket=key, error=repr(exc))
            return self._unavailable_wait

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
