"""Quota guardian on Redis: decisions per second and latency, against raw EVALSHA.

Uses the Redis named by CERNIQ_BENCH_REDIS_URL (default: the local server), under a key
prefix of this run's own, deleted at the end. Measures, side by side in one run:

- the single-phone script (`reserve` on a named phone) and the any-phone script (`reserve`
  with no phone: the script picks the ACTIVE phone with the most quota left among 20),
- against a raw EVALSHA of a trivial one-key script (`INCR KEYS[1]`) from the same client
  library,
- with 1 client calling sequentially (redis-py, the sync adapter) and with 50 concurrent
  asyncio clients (redis.asyncio, the async adapter) sharing one connection pool.

Every decision is an allowed new conversation (a new lead each time; limits are set high
enough never to bind), so each one runs the whole script: status, window, limit, increment
and reservation. Guardian and baseline alternate in rounds so drift hits both alike.

Prints `RESULT <name> <value> <unit>` lines; no assertion on the figures.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import statistics
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis
import redis.asyncio as aredis

from cerniq_outreach.adapters.quota.redis_guardian import (
    AsyncRedisQuotaGuardian,
    RedisQuotaGuardian,
)
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.quota import WarmupRamp
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings, QuotaPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

REDIS_URL = os.environ.get("CERNIQ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TENANT = "bench"
PHONES = 20
AT = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Bucharest: open
SEQUENTIAL_CALLS = 4000  # per kind and round
CLIENTS = 50
CONCURRENT_CALLS = 200  # per client, kind and round
ROUNDS = 3
TRIVIAL = "return redis.call('INCR', KEYS[1])"

_leads = itertools.count()
# A ramp that never binds (and a limit no day reaches): every decision is an allowed new
# conversation, the whole script's path, not a cheaper refusal.
UNBOUND = QuotaPolicy(ramp=WarmupRamp(start=10**9, ceiling=10**9, days=1))


def policy(_tenant: str) -> QuotaPolicy:
    """The bench's policy for every tenant: the default hours, no binding limit."""
    return UNBOUND


def phones() -> list[PhoneQuotaSettings]:
    """A pool of 20 ACTIVE, fully warmed phones whose limits never bind in the bench."""
    return [
        PhoneQuotaSettings(phone_id=f"p{i:02d}", status=PhoneStatus.ACTIVE, daily_limit=10**9)
        for i in range(PHONES)
    ]


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return cuts[49] / 1000, cuts[98] / 1000


def report(name: str, calls: int, seconds: float, samples_ns: list[int]) -> float:
    """Print rate and latency RESULT lines for one kind; return the rate."""
    rate = calls / seconds
    p50, p99 = percentiles(samples_ns)
    print(f"RESULT {name}_rate {rate:.0f} decisions/s")
    print(f"RESULT {name}_p50 {p50:.0f} us")
    print(f"RESULT {name}_p99 {p99:.0f} us")
    return rate


# --- one client, sequential -----------------------------------------------------------------


def sequential(prefix: str) -> None:
    """The sync adapter and raw EVALSHA, one call at a time, in alternating rounds."""
    guardian = RedisQuotaGuardian(REDIS_URL, prefix=prefix, policy_for=policy)
    guardian.load_phones(TENANT, phones())
    client = redis.Redis.from_url(REDIS_URL)
    sha = client.script_load(TRIVIAL)
    raw_key = f"{prefix}{{{TENANT}}}:raw"

    def raw() -> object:
        return client.evalsha(sha, 1, raw_key)

    def single() -> object:
        return guardian.reserve(TENANT, phone_id="p07", lead_id=f"l{next(_leads)}", cost=1, at=AT)

    def any_phone() -> object:
        return guardian.reserve(TENANT, phone_id=None, lead_id=f"l{next(_leads)}", cost=1, at=AT)

    kinds: dict[str, Callable[[], object]] = {
        "raw": raw,
        "single": single,
        "any": any_phone,
    }
    for call in kinds.values():  # warm: scripts loaded, connection open
        call()
    spent = dict.fromkeys(kinds, 0.0)
    samples: dict[str, list[int]] = {kind: [] for kind in kinds}
    for round_ in range(ROUNDS):
        order = list(kinds) if round_ % 2 == 0 else list(reversed(kinds))
        for kind in order:
            call, lat = kinds[kind], samples[kind]
            began = time.perf_counter()
            for _ in range(SEQUENTIAL_CALLS):
                t0 = time.perf_counter_ns()
                call()
                lat.append(time.perf_counter_ns() - t0)
            spent[kind] += time.perf_counter() - began
    calls = SEQUENTIAL_CALLS * ROUNDS
    raw_rate = report("quota_raw_evalsha_seq", calls, spent["raw"], samples["raw"])
    for kind in ("single", "any"):
        rate = report(f"quota_{kind}_seq", calls, spent[kind], samples[kind])
        print(f"RESULT quota_{kind}_seq_vs_raw_evalsha {rate / raw_rate:.2f} ratio")
    guardian.close()
    client.close()


# --- 50 asyncio clients ---------------------------------------------------------------------


async def concurrent(prefix: str) -> None:
    """The async adapter and raw EVALSHA from 50 concurrent tasks, alternating rounds."""
    guardian = AsyncRedisQuotaGuardian(
        REDIS_URL, prefix=prefix, policy_for=policy, max_connections=CLIENTS
    )
    sync_loader = RedisQuotaGuardian(REDIS_URL, prefix=prefix, policy_for=policy)
    sync_loader.load_phones(TENANT, phones())
    sync_loader.close()
    client = aredis.Redis.from_url(REDIS_URL, max_connections=CLIENTS)
    sha = await client.script_load(TRIVIAL)
    raw_key = f"{prefix}{{{TENANT}}}:raw"

    async def raw() -> object:
        return await client.evalsha(sha, 1, raw_key)  # type: ignore[misc]

    async def single() -> object:
        return await guardian.reserve(
            TENANT, phone_id="p07", lead_id=f"l{next(_leads)}", cost=1, at=AT
        )

    async def any_phone() -> object:
        return await guardian.reserve(
            TENANT, phone_id=None, lead_id=f"l{next(_leads)}", cost=1, at=AT
        )

    kinds: dict[str, Callable[[], Awaitable[object]]] = {
        "raw": raw,
        "single": single,
        "any": any_phone,
    }

    async def worker(call: Callable[[], Awaitable[object]], lat: list[int]) -> None:
        for _ in range(CONCURRENT_CALLS):
            t0 = time.perf_counter_ns()
            await call()
            lat.append(time.perf_counter_ns() - t0)

    for call in kinds.values():  # warm: scripts loaded, pool filled
        await asyncio.gather(*(call() for _ in range(CLIENTS)))
    spent = dict.fromkeys(kinds, 0.0)
    samples: dict[str, list[int]] = {kind: [] for kind in kinds}
    for round_ in range(ROUNDS):
        order = list(kinds) if round_ % 2 == 0 else list(reversed(kinds))
        for kind in order:
            began = time.perf_counter()
            await asyncio.gather(*(worker(kinds[kind], samples[kind]) for _ in range(CLIENTS)))
            spent[kind] += time.perf_counter() - began
    calls = CLIENTS * CONCURRENT_CALLS * ROUNDS
    raw_rate = report("quota_raw_evalsha_conc50", calls, spent["raw"], samples["raw"])
    for kind in ("single", "any"):
        rate = report(f"quota_{kind}_conc50", calls, spent[kind], samples[kind])
        print(f"RESULT quota_{kind}_conc50_vs_raw_evalsha {rate / raw_rate:.2f} ratio")
    await guardian.aclose()
    await client.aclose()


def main() -> None:
    """Run both measurements under a prefix of this run's own, then delete its keys."""
    prefix = f"cerniq-bench:{secrets.token_hex(4)}:"
    try:
        sequential(prefix)
        asyncio.run(concurrent(prefix))
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


if __name__ == "__main__":
    main()
