"""The Redis client both quota adapters use, and their EVALSHA with a reload on NOSCRIPT.

Fail fast: a short socket timeout and a single immediate retry (a pooled connection the
server closed), because a send waits on these calls and a refused send is simply retried
later; redis-py's defaults (5 s, backoff) would hold a worker instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

if TYPE_CHECKING:
    from cerniq_outreach.adapters.quota.redis_calls import LuaScript


def fail_fast_client(
    url: str, *, socket_timeout: float, max_connections: int | None = None
) -> redis.Redis:
    """A synchronous client (hiredis parser when installed) that gives up quickly."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 1),
        max_connections=max_connections,
    )


def evalsha(client: redis.Redis, script: LuaScript, args: tuple[Any, ...]) -> Any:  # noqa: ANN401  # shaped as the script's .lua header says
    """EVALSHA `args` (the sha first), loading the script once more on NOSCRIPT.

    NOSCRIPT means Redis restarted or its scripts were flushed.
    """
    try:
        return client.evalsha(*args)
    except NoScriptError:
        client.script_load(script.text)
        return client.evalsha(*args)
