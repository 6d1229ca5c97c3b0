"""The rate limiter contract, written once and run against every adapter.

In-process and Redis must wait exactly as `domain.rate_limit.take` says: a fresh bucket
bursts to its capacity, refills continuously, never refills for time that runs backwards,
and keeps each key apart. The waits are compared for equality, not closeness: the Lua
script repeats the model's floating-point steps.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from cerniq_outreach.adapters.quota.memory import MemoryRateLimiter
from cerniq_outreach.adapters.quota.redis_rate_limiter import RedisRateLimiter
from cerniq_outreach.domain import rate_limit
from cerniq_outreach.domain.errors import InvalidCommand
from cerniq_outreach.domain.rate_limit import TIMELINESAI_LIMIT, RateLimit

import services

NOON = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ADAPTERS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=ADAPTERS)
def make_limiter(request):
    made = []

    def make():
        if request.param == "memory":
            limiter = MemoryRateLimiter()
        else:
            url = request.getfixturevalue("redis_url")
            prefix = f"{request.getfixturevalue('redis_prefix')}{services.new_token()}:"
            limiter = RedisRateLimiter(url, prefix=prefix)
            made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


def test_a_fresh_bucket_bursts_to_its_capacity_then_waits(make_limiter):
    """50 TimelinesAI calls go at once; the 51st waits 1.2 s, the time one token takes."""
    limiter = make_limiter()
    waits = [limiter.acquire("ws-1", TIMELINESAI_LIMIT, at=NOON) for _ in range(51)]
    assert waits[:50] == [0.0] * 50
    assert waits[50] == pytest.approx(1.2)
    empty = rate_limit.Bucket(tokens=0.0, updated_ms=rate_limit.to_ms(NOON))
    assert waits[50] == rate_limit.take(empty, TIMELINESAI_LIMIT, NOON)[1]


def test_tokens_come_back_with_time_and_not_when_time_runs_back(make_limiter):
    """A second later one token is back; an earlier instant refills nothing."""
    limiter, limit = make_limiter(), RateLimit(capacity=2, period_seconds=2.0)
    assert limiter.acquire("k", limit, at=NOON) == 0.0
    assert limiter.acquire("k", limit, at=NOON) == 0.0
    assert limiter.acquire("k", limit, at=NOON - timedelta(seconds=5)) == 1.0
    assert limiter.acquire("k", limit, at=NOON + timedelta(seconds=1)) == 0.0
    assert limiter.acquire("k", limit, at=NOON + timedelta(seconds=1)) == 1.0
    assert limiter.acquire("k", limit, at=NOON + timedelta(seconds=1.5), cost=2) == 1.5


def test_buckets_are_kept_apart_by_key(make_limiter):
    """Emptying one key's bucket leaves another key's full."""
    limiter, limit = make_limiter(), RateLimit(capacity=1, period_seconds=1.0)
    assert limiter.acquire("resend", limit, at=NOON) == 0.0
    assert limiter.acquire("resend", limit, at=NOON) > 0
    assert limiter.acquire("instantly", limit, at=NOON) == 0.0


@pytest.mark.parametrize("cost", [0, 3])
def test_a_cost_outside_one_to_capacity_is_an_invalid_command(make_limiter, cost):
    """A request that could never pass is refused loudly, not made to wait forever."""
    with pytest.raises(InvalidCommand):
        make_limiter().acquire("k", RateLimit(capacity=2, period_seconds=1.0), at=NOON, cost=cost)


limits = st.builds(
    RateLimit,
    capacity=st.integers(1, 6),
    period_seconds=st.sampled_from([0.3, 0.5, 1.0, 1.7, 60.0]),
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(-300, 2_000),  # milliseconds since the previous request; may run back
        st.integers(1, 6),
    ),
    max_size=40,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=limits, steps=steps)
def test_every_wait_equals_the_models(make_limiter, limit, steps):
    """For any requests on any clock, each wait equals domain.rate_limit.take's exactly."""
    limiter, buckets, at = make_limiter(), {}, NOON
    for key, step_ms, drawn_cost in steps:
        at += timedelta(milliseconds=step_ms)
        cost = min(drawn_cost, limit.capacity)
        buckets[key], expected = rate_limit.take(buckets.get(key), limit, at, cost)
        assert limiter.acquire(key, limit, at=at, cost=cost) == expected


def test_an_unreachable_redis_makes_callers_wait():
    """With Redis down a provider call waits (and is logged); it never goes out unmetered."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{port}/0", unavailable_wait=1.0)
    try:
        with capture_logs() as logs:
            assert limiter.acquire("k", TIMELINESAI_LIMIT, at=NOON) == 1.0
    finally:
        limiter.close()
    assert [entry["event"] for entry in logs] == ["rate_limiter_unavailable"]
