"""The Redis quota guardians: the ledger's decisions as Lua scripts, shared by every process.

Each decision is one script (lua/reserve_phone.lua, lua/reserve_any.lua): status, business
hours, limit and increment in one atomic step on the server, so no interleaving of callers
in any number of processes can take a phone past its limit. The answers are those of
`domain.quota_ledger.reserve`; the contract suite and its stateful test compare them.

Scripts are called by EVALSHA; a NOSCRIPT reply (Redis restarted, or SCRIPT FLUSH) loads
the script and retries once. A Redis that restarted empty has also lost the tenant's phones:
the script then answers NOT_LOADED, and the guardian reloads them from `phone_source`
(phones, and usage raised to at least what the source counted) and asks again once.

Failure: `reserve` fails closed. When Redis cannot be reached or errs, it answers refused
with GUARDIAN_UNAVAILABLE (nothing counted, retry in 30 s) and logs; it never raises for
that. `release`, `usage`, `set_phone` and `load_phones` raise `QuotaGuardianUnavailable`.
redis-py reconnects by itself, so the guardian recovers when Redis is back. Commands are
retried once at once on a connection error (a pooled connection the server closed), which
is safe: a reserve of a new conversation is idempotent per (lead, day), a follow-up counts
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
import redis.asyncio.retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cerniq_outreach.adapters.quota.redis_calls import (
    LOAD_PHONES,
    LOADED,
    RELEASE,
    SET_PHONE,
    LuaScript,
    PendingReserve,
    QuotaCalls,
    QuotaGuardianUnavailable,
    default_policy,
    unavailable,
)
from cerniq_outreach.adapters.quota.redis_client import evalsha, fail_fast_client
from cerniq_outreach.observability import get_logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from datetime import date, datetime

    from cerniq_outreach.adapters.quota.redis_calls import PhoneSource
    from cerniq_outreach.domain.quota_ledger import (
        PhoneQuotaSettings,
        QuotaAnswer,
        QuotaPolicy,
        Reservation,
    )

__all__ = ["AsyncRedisQuotaGuardian", "QuotaGuardianUnavailable", "RedisQuotaGuardian"]

_log = get_logger(__name__)


def _refused(exc: Exception, pending: PendingReserve) -> QuotaAnswer:
    _log.warning(
        "quota_guardian_unavailable",
        tenant_id=pending.tenant_id,
        phone_id=pending.phone_id,
        lead_id=pending.lead_id,
        error=repr(exc),
    )
    return unavailable(pending.phone_id, pending.at)


class RedisQuotaGuardian:
    """The QuotaGuardian port on Redis (redis-py, synchronous, thread-safe).

    Args:
        url: the Redis URL.
        prefix: the start of every key (no braces: the tenant id is the hash tag).
        policy_for: each tenant's business hours and warm-up ramp.
        phone_source: where a tenant's phones and usage are reloaded from when Redis has
            lost them; without one such a tenant has no phones (PHONE_NOT_ACTIVE).
        socket_timeout: seconds before a call to Redis counts as failed.
        max_connections: the connection pool's bound (None: redis-py's default).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cerniq:",
        policy_for: Callable[[str], QuotaPolicy] = default_policy,
        phone_source: PhoneSource | None = None,
        socket_timeout: float = 0.5,
        max_connections: int | None = None,
    ) -> None:
        self._calls = QuotaCalls(prefix, policy_for)
        self._phone_source = phone_source
        self._reload_lock = threading.Lock()
        self._client = fail_fast_client(
            url, socket_timeout=socket_timeout, max_connections=max_connections
        )

    def _eval(self, script: LuaScript, args: tuple[Any, ...]) -> Any:  # noqa: ANN401  # shaped as its .lua header says
        return evalsha(self._client, script, args)

    def reserve(
        self, tenant_id: str, *, phone_id: str | None, lead_id: str, cost: int, at: datetime
    ) -> QuotaAnswer:
        """Decide and count in one step; GUARDIAN_UNAVAILABLE when Redis fails (see module).

        Raises:
            InvalidCommand: `cost` is neither 0 nor 1.
            ValueError: `at` is naive.
        """
        pending = self._calls.reserve(tenant_id, phone_id, lead_id, cost, at)
        try:
            answer = self._calls.answer(pending, self._eval(pending.script, pending.args))
            if answer is None:
                answer = self._reserve_after_reload(pending)
        except (RedisError, QuotaGuardianUnavailable) as exc:
            return _refused(exc, pending)
        return answer

    def _reserve_after_reload(self, pending: PendingReserve) -> QuotaAnswer:
        if self._phone_source is None:
            return self._calls.without_phones(pending)
        self._reload(pending.tenant_id, self._phone_source)
        answer = self._calls.answer(pending, self._eval(pending.script, pending.args))
        if answer is None:
            raise QuotaGuardianUnavailable(f"tenant {pending.tenant_id}: phones lost again")
        return answer

    def _reload(self, tenant_id: str, source: PhoneSource) -> None:
        # One reload at a time, and none when another thread has just done it.
        with self._reload_lock:
            if self._client.hexists(self._calls.phones_key(tenant_id), LOADED):
                return
            try:
                phones, usage = source(tenant_id)
            except Exception as exc:
                raise QuotaGuardianUnavailable(f"tenant {tenant_id}: phone source failed") from exc
            self._eval(LOAD_PHONES, self._calls.load_phones(tenant_id, phones, usage))
        _log.info("quota_phones_reloaded", tenant_id=tenant_id, phones=len(phones))

    def release(self, reservation: Reservation) -> bool:
        """Give a held reservation back (True if it was held).

        Raises:
            QuotaGuardianUnavailable: Redis failed.
        """
        try:
            return bool(self._eval(RELEASE, self._calls.release(reservation)))
        except RedisError as exc:
            raise QuotaGuardianUnavailable("release failed") from exc

    def usage(self, tenant_id: str, phone_id: str, day: date) -> int:
        """New conversations counted on the phone that day (reloading a lost tenant first).

        Raises:
            QuotaGuardianUnavailable: Redis or the phone source failed.
        """
        key = self._calls.used_key(tenant_id, phone_id, day)
        try:
            if self._phone_source is not None:
                pipe = self._client.pipeline(transaction=False)
                pipe.get(key)
                pipe.hexists(self._calls.phones_key(tenant_id), LOADED)
                used, loaded = pipe.execute()
                if loaded:
                    return int(used or 0)
                self._reload(tenant_id, self._phone_source)
            return int(self._client.get(key) or 0)
        except RedisError as exc:
            raise QuotaGuardianUnavailable("usage failed") from exc

    def set_phone(self, tenant_id: str, phone: PhoneQuotaSettings) -> None:
        """Add or change one phone (reloading a lost tenant first, then this phone over it).

        Raises:
            QuotaGuardianUnavailable: Redis or the phone source failed.
            ConfigurationError: an empty phone id or a negative daily limit.
        """
        args = self._calls.set_phone(tenant_id, phone)
        try:
            if self._phone_source is not None:
                self._reload(tenant_id, self._phone_source)
            self._eval(SET_PHONE, args)
        except RedisError as exc:
            raise QuotaGuardianUnavailable("set_phone failed") from exc

    def load_phones(
        self,
        tenant_id: str,
        phones: Sequence[PhoneQuotaSettings],
        usage: Mapping[tuple[str, date], int] | None = None,
    ) -> None:
        """Replace the tenant's phones and raise counters to at least `usage`, atomically.

        Raises:
            QuotaGuardianUnavailable: Redis failed.
            ConfigurationError: an empty phone id, a negative limit or usage.
        """
        args = self._calls.load_phones(tenant_id, phones, usage)
        try:
            self._eval(LOAD_PHONES, args)
        except RedisError as exc:
            raise QuotaGuardianUnavailable("load_phones failed") from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncRedisQuotaGuardian:
    """The same guardian on redis.asyncio, for callers on an event loop.

    Same arguments, keys, scripts and answers as `RedisQuotaGuardian`; `phone_source` is a
    plain function, run in a worker thread. Close with `aclose()`.

    `socket_timeout` bounds each call as a whole with `asyncio.timeout` rather than being
    handed to redis.asyncio: there it wraps every socket write in `asyncio.wait_for`, a task
    per command, which costs a busy event loop more than the script itself. A call cut off
    by the deadline has its connection dropped by redis-py, never reused half-read.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cerniq:",
        policy_for: Callable[[str], QuotaPolicy] = default_policy,
        phone_source: PhoneSource | None = None,
        socket_timeout: float = 0.5,
        max_connections: int | None = None,
    ) -> None:
        self._calls = QuotaCalls(prefix, policy_for)
        self._phone_source = phone_source
        self._timeout = socket_timeout
        self._reload_lock = asyncio.Lock()
        self._client = redis.asyncio.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=None,  # None, not redis-py's default of 5 s: see the docstring
            socket_connect_timeout=socket_timeout,
            retry=redis.asyncio.retry.Retry(NoBackoff(), 1),
            max_connections=max_connections,
        )

    @contextlib.asynccontextmanager
    async def _deadline(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except TimeoutError as exc:  # the builtin one, from asyncio.timeout
            raise RedisTimeoutError(f"no answer from Redis within {self._timeout} s") from exc

    async def _eval(self, script: LuaScript, args: tuple[Any, ...]) -> Any:  # noqa: ANN401  # shaped as its .lua header says
        # The deadline is inlined here (no _deadline): this is the path every send takes.
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    return await self._client.evalsha(*args)
                except NoScriptError:
                    await self._client.script_load(script.text)
                    return await self._client.evalsha(*args)
        except TimeoutError as exc:
            raise RedisTimeoutError(f"no answer from Redis within {self._timeout} s") from exc

    async def reserve(
        self, tenant_id: str, *, phone_id: str | None, lead_id: str, cost: int, at: datetime
    ) -> QuotaAnswer:
        """Decide and count in one step; GUARDIAN_UNAVAILABLE when Redis fails.

        Raises:
            InvalidCommand: `cost` is neither 0 nor 1.
            ValueError: `at` is naive.
        """
        pending = self._calls.reserve(tenant_id, phone_id, lead_id, cost, at)
        try:
            answer = self._calls.answer(pending, await self._eval(pending.script, pending.args))
            if answer is None:
                answer = await self._reserve_after_reload(pending)
        except (RedisError, QuotaGuardianUnavailable) as exc:
            return _refused(exc, pending)
        return answer

    async def _reserve_after_reload(self, pending: PendingReserve) -> QuotaAnswer:
        if self._phone_source is None:
            return self._calls.without_phones(pending)
        await self._reload(pending.tenant_id, self._phone_source)
        answer = self._calls.answer(pending, await self._eval(pending.script, pending.args))
        if answer is None:
            raise QuotaGuardianUnavailable(f"tenant {pending.tenant_id}: phones lost again")
        return answer

    async def _reload(self, tenant_id: str, source: PhoneSource) -> None:
        async with self._reload_lock:
            async with self._deadline():
                loaded = await self._client.hexists(self._calls.phones_key(tenant_id), LOADED)
            if loaded:
                return
            try:
                # Not under the deadline: the source may be a database query.
                phones, usage = await asyncio.to_thread(source, tenant_id)
            except Exception as exc:
                raise QuotaGuardianUnavailable(f"tenant {tenant_id}: phone source failed") from exc
            await self._eval(LOAD_PHONES, self._calls.load_phones(tenant_id, phones, usage))
        _log.info("quota_phones_reloaded", tenant_id=tenant_id, phones=len(phones))

    async def release(self, reservation: Reservation) -> bool:
        """Give a held reservation back (True if it was held).

        Raises:
            QuotaGuardianUnavailable: Redis failed.
        """
        try:
            return bool(await self._eval(RELEASE, self._calls.release(reservation)))
        except RedisError as exc:
            raise QuotaGuardianUnavailable("release failed") from exc

    async def usage(self, tenant_id: str, phone_id: str, day: date) -> int:
        """New conversations counted on the phone that day (reloading a lost tenant first).

        Raises:
            QuotaGuardianUnavailable: Redis or the phone source failed.
        """
        key = self._calls.used_key(tenant_id, phone_id, day)
        try:
            if self._phone_source is not None:
                pipe = self._client.pipeline(transaction=False)
                pipe.get(key)
                pipe.hexists(self._calls.phones_key(tenant_id), LOADED)
                async with self._deadline():
                    used, loaded = await pipe.execute()
                if loaded:
                    return int(used or 0)
                await self._reload(tenant_id, self._phone_source)
            async with self._deadline():
                return int(await self._client.get(key) or 0)
        except RedisError as exc:
            raise QuotaGuardianUnavailable("usage failed") from exc

    async def set_phone(self, tenant_id: str, phone: PhoneQuotaSettings) -> None:
        """Add or change one phone (reloading a lost tenant first).

        Raises:
            QuotaGuardianUnavailable: Redis or the phone source failed.
            ConfigurationError: an empty phone id or a negative daily limit.
        """
        args = self._calls.set_phone(tenant_id, phone)
        try:
            if self._phone_source is not None:
                await self._reload(tenant_id, self._phone_source)
            await self._eval(SET_PHONE, args)
        except RedisError as exc:
            raise QuotaGuardianUnavailable("set_phone failed") from exc

    async def load_phones(
        self,
        tenant_id: str,
        phones: Sequence[PhoneQuotaSettings],
        usage: Mapping[tuple[str, date], int] | None = None,
    ) -> None:
        """Replace the tenant's phones and raise counters to at least `usage`, atomically.

        Raises:
            QuotaGuardianUnavailable: Redis failed.
            ConfigurationError: an empty phone id, a negative limit or usage.
        """
        args = self._calls.load_phones(tenant_id, phones, usage)
        try:
            await self._eval(LOAD_PHONES, args)
        except RedisError as exc:
            raise QuotaGuardianUnavailable("load_phones failed") from exc

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
