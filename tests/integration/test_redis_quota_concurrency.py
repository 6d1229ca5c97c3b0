"""Many threads and processes against one Redis guardian: no phone ever passes its limit.

16 threads and 4 processes (spawned, so each has its own interpreter and connections) each
ask for 2,000 new conversations with distinct leads on a pool of 3 phones: 1,000 on Monday
at 17:00, then 1,000 on Tuesday at 10:00. Workers start together but move to Tuesday at
their own pace, so Monday's and Tuesday's reservations interleave on the server: the day
boundary must keep the two days' counters apart while both are being raised. Every fourth
request also sends a follow-up (cost 0), which must never be refused.

Limits differ per phone and day (one phone is warming up, its ramp rises overnight), and
far more is asked than allowed, so each phone must end each day at exactly its limit.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cerniq_outreach.adapters.quota.redis_guardian import RedisQuotaGuardian
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.quota import DEFAULT_RAMP
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings

import services

pytestmark = pytest.mark.redis

BUCHAREST = ZoneInfo("Europe/Bucharest")
TENANT = "tenant-busy"
MONDAY, TUESDAY = date(2026, 3, 2), date(2026, 3, 3)
DAYS = ((MONDAY, time(17)), (TUESDAY, time(10)))
PER_DAY = 1_000
THREADS, PROCESSES = 16, 4
PHONES = [
    PhoneQuotaSettings(phone_id="p1", status=PhoneStatus.ACTIVE, daily_limit=150),
    # day 6 of the default ramp on Monday (65), day 7 on Tuesday (74)
    PhoneQuotaSettings(
        phone_id="p2",
        status=PhoneStatus.ACTIVE,
        daily_limit=200,
        warmup_started=MONDAY - timedelta(days=5),
    ),
    PhoneQuotaSettings(phone_id="p3", status=PhoneStatus.ACTIVE, daily_limit=37),
]
QUOTA_REASONS = {QuotaRefusal.QUOTA_EXCEEDED, QuotaRefusal.WARMUP_LIMIT}


def limit_on(phone: PhoneQuotaSettings, day: date) -> int:
    return min(phone.daily_limit, DEFAULT_RAMP.limit_on(phone.warmup_started, day))


def hammer(url: str, prefix: str, worker: str, barrier) -> dict:
    """One worker's requests; returns what it was allowed and anything unexpected."""
    guardian = RedisQuotaGuardian(url, prefix=prefix, socket_timeout=10.0)
    allowed: Counter[str] = Counter()
    unexpected: list[str] = []
    try:
        barrier.wait(timeout=120)
        for day, wall in DAYS:
            at = datetime.combine(day, wall, BUCHAREST).astimezone(UTC)
            for i in range(PER_DAY):
                phone_id = None if i % 4 == 0 else PHONES[i % 3].phone_id
                lead = f"{worker}-{day}-{i}"
                decision = guardian.reserve(
                    TENANT, phone_id=phone_id, lead_id=lead, cost=1, at=at
                ).decision
                if decision.allowed:
                    allowed[f"{decision.phone_id} {day}"] += 1
                elif decision.reason not in QUOTA_REASONS:
                    unexpected.append(f"new contact {lead}: {decision}")
                if i % 4 == 1:
                    follow_up = guardian.reserve(
                        TENANT, phone_id=phone_id, lead_id=f"{lead}-old", cost=0, at=at
                    ).decision
                    if not follow_up.allowed:
                        unexpected.append(f"follow-up {lead}: {follow_up}")
    finally:
        guardian.close()
    return {"allowed": dict(allowed), "unexpected": unexpected}


def _in_process(url, prefix, worker, barrier, results) -> None:
    results.put(hammer(url, prefix, worker, barrier))


def test_concurrent_threads_and_processes_fill_each_phone_exactly_to_its_limit(
    redis_url, redis_prefix
):
    """Across threads, processes and a midnight, each phone-day ends at exactly its limit."""
    prefix = f"{redis_prefix}{services.new_token()}:"
    setup = RedisQuotaGuardian(redis_url, prefix=prefix)
    setup.load_phones(TENANT, PHONES)

    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(THREADS + PROCESSES), context.Queue()
    processes = [
        context.Process(target=_in_process, args=(redis_url, prefix, f"proc{n}", barrier, queue))
        for n in range(PROCESSES)
    ]
    results: list[dict] = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(hammer(redis_url, prefix, f"thread{n}", barrier))
        )
        for n in range(THREADS)
    ]
    for worker in (*processes, *threads):
        worker.start()
    try:
        results += [queue.get(timeout=180) for _ in processes]
    finally:
        for thread in threads:
            thread.join(timeout=180)
        for process in processes:
            process.join(timeout=30)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert len(results) == THREADS + PROCESSES

    allowed: Counter[str] = Counter()
    for result in results:
        allowed.update(result["allowed"])
        assert result["unexpected"] == []
    try:
        for day, _ in DAYS:
            for phone in PHONES:
                limit = limit_on(phone, day)
                assert setup.usage(TENANT, phone.phone_id, day) == limit, (phone, day)
                assert allowed[f"{phone.phone_id} {day}"] == limit, (phone, day)
    finally:
        setup.close()
    assert [limit_on(PHONES[1], day) for day, _ in DAYS] == [65, 74]
