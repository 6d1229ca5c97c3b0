"""The in-process job queue's own controls: a frozen clock moved by hand, join, stats, close.

The failure semantics it shares with dramatiq are in tests/contract/test_job_queue_contract.py;
these are what only the embedded adapter offers (the demo loop drives it: move the clock,
`release_due()`, `join()`).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.jobs_inline import InlineJobQueue, JobStats, UnknownJob
from cerniq_outreach.application.jobs import (
    FAILED_COUNTER,
    NonRetryable,
    RetryLater,
    RetryPolicy,
)
from cerniq_outreach.application.metrics import Counters

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_retries=2, min_backoff_seconds=10, max_backoff_seconds=15)


@pytest.fixture
def clock():
    return SimulatedClock(T0, speed=0)


@pytest.fixture
def ran():
    return []


@pytest.fixture
def make_queue(clock, ran):
    """A frozen-clock queue with no release thread; its handlers append to `ran`."""
    made: list[InlineJobQueue] = []

    def make(handlers=None, **options) -> InlineJobQueue:
        handlers = handlers or {"job": ran.append}
        queue = InlineJobQueue(
            handlers,
            options.pop("counters", Counters()),
            clock=clock,
            policy=options.pop("policy", POLICY),
            release_thread=False,
            **options,
        )
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()


def test_waiting_jobs_are_released_in_clock_order_once_due(make_queue, clock, ran):
    """`release_due` lets out exactly the jobs whose time has come, earliest first."""
    queue = make_queue()
    queue.enqueue("job", {"n": "late"}, not_before=T0 + timedelta(minutes=10))
    queue.enqueue("job", {"n": "early"}, not_before=T0 + timedelta(minutes=5))
    queue.join()

    assert ran == []
    assert queue.delayed() == 2
    assert queue.next_due() == T0 + timedelta(minutes=5)
    assert queue.release_due() == 0

    clock.advance(timedelta(minutes=5))
    assert queue.release_due() == 1
    queue.join()
    assert ran == [{"n": "early"}]
    assert queue.next_due() == T0 + timedelta(minutes=10)

    clock.advance(timedelta(hours=1))
    assert queue.release_due() == 1
    queue.join()
    assert ran == [{"n": "early"}, {"n": "late"}]
    assert queue.next_due() is None
    assert queue.delayed() == 0


def test_a_not_before_already_past_runs_at_once(make_queue, ran):
    """A job whose `not_before` the clock has reached needs no release: `join` runs it."""
    queue = make_queue()
    queue.enqueue("job", b"now", not_before=T0)
    queue.enqueue("job", b"before", not_before=T0 - timedelta(minutes=1))
    queue.join()

    assert sorted(ran) == [b"before", b"now"]
    assert queue.delayed() == 0


def test_join_waits_for_the_jobs_a_running_job_enqueues(make_queue, ran):
    """`join` returns only when the follow-up jobs enqueued by handlers have run too."""
    queue: InlineJobQueue

    def chain(payload):
        ran.append(payload)
        if payload["n"] < 5:
            queue.enqueue("chain", {"n": payload["n"] + 1})

    queue = make_queue({"chain": chain}, workers=3)
    queue.enqueue("chain", {"n": 1})
    queue.join()

    assert ran == [{"n": n} for n in range(1, 6)]
    assert queue.pending() == 0


def test_retries_wait_their_backoff_in_clock_time(make_queue, clock):
    """Retry n waits `policy.backoff(n)` clock seconds; past `max_retries` it is dropped."""
    counters = Counters()
    attempts = []

    def flaky(_payload):
        attempts.append(clock.now())
        raise TimeoutError("provider timed out")

    queue = make_queue({"flaky": flaky}, counters=counters)
    queue.enqueue("flaky", {"lead_id": "l1"})
    queue.join()
    assert queue.next_due() == T0 + timedelta(seconds=10)

    clock.advance(timedelta(seconds=10))
    queue.release_due()
    queue.join()
    assert queue.next_due() == T0 + timedelta(seconds=10 + 15)  # 20 s, capped at 15

    clock.advance(timedelta(seconds=15))
    queue.release_due()
    queue.join()

    assert attempts == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=25)]
    assert queue.next_due() is None
    assert counters.value(FAILED_COUNTER, job="flaky") == 1
    assert queue.stats() == {"flaky": JobStats(retried=2, failed=1)}


def test_stats_count_how_each_run_ended(make_queue, clock):
    """Every run is counted once under its ending: succeeded, failed, retried or deferred."""
    counters = Counters()

    def defer_once(_payload):
        if clock.now() == T0:
            raise RetryLater(T0 + timedelta(hours=1), "outside business hours")

    def refuse(_payload):
        raise NonRetryable("unknown template")

    queue = make_queue(
        {"defer": defer_once, "refuse": refuse, "ok": lambda _payload: None}, counters=counters
    )
    queue.enqueue("defer", {})
    queue.enqueue("refuse", {})
    queue.enqueue("ok", {})
    queue.enqueue("ok", {})
    queue.join()
    clock.advance(timedelta(hours=1))
    assert queue.release_due() == 1
    queue.join()

    assert queue.stats() == {
        "defer": JobStats(deferred=1, succeeded=1),
        "refuse": JobStats(failed=1),
        "ok": JobStats(succeeded=2),
    }
    assert counters.value(FAILED_COUNTER, job="refuse") == 1
    assert counters.total(FAILED_COUNTER) == 1


def test_many_threads_enqueue_and_every_job_runs_once(make_queue):
    """Concurrent producers and workers lose no job and run none twice."""
    seen: list[int] = []
    lock = threading.Lock()

    def record(payload):
        with lock:
            seen.append(payload["n"])

    queue = make_queue({"job": record}, workers=4)
    go = threading.Barrier(8)

    def produce(first):
        go.wait()
        for n in range(first, first + 250):
            queue.enqueue("job", {"n": n})

    producers = [threading.Thread(target=produce, args=(i * 250,)) for i in range(8)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    queue.join()

    assert sorted(seen) == list(range(2000))
    assert queue.stats()["job"] == JobStats(succeeded=2000)


def test_nothing_runs_before_start(make_queue, ran):
    """With `start=False` jobs wait for `start()`; `join` refuses to wait forever meanwhile."""
    queue = make_queue(start=False)
    queue.enqueue("job", {"n": 1})

    with pytest.raises(RuntimeError, match="not started"):
        queue.join()
    assert ran == []

    queue.start()
    queue.join()
    assert ran == [{"n": 1}]


def test_close_runs_runnable_jobs_drops_waiting_ones_and_refuses_more(make_queue, ran):
    """`close` lets queued jobs finish, drops the not-yet-due ones, then refuses new jobs."""
    queue = make_queue(start=False)
    queue.enqueue("job", {"n": "later"}, not_before=T0 + timedelta(days=1))
    queue.enqueue("job", {"n": "now"})
    queue.start()

    queue.close()

    assert ran == [{"n": "now"}]
    assert queue.pending() == 0
    with pytest.raises(RuntimeError, match="closed"):
        queue.enqueue("job", {"n": "after"})


def test_enqueue_refuses_unknown_names_and_naive_times(make_queue):
    """An unknown job name, or a `not_before` without a time zone, is refused at enqueue."""
    queue = make_queue()

    with pytest.raises(UnknownJob):
        queue.enqueue("no.such.job", {})
    with pytest.raises(ValueError, match="timezone-aware"):
        queue.enqueue("job", {}, not_before=datetime(2026, 3, 2, 9, 0))  # noqa: DTZ001 - the point


def test_the_release_thread_releases_due_jobs_on_a_running_clock(ran):
    """With a running clock and the release thread, a waiting job runs without any caller help."""
    clock = SimulatedClock(T0, speed=3600)
    done = threading.Event()

    def handle(payload):
        ran.append((payload, clock.now()))
        done.set()

    queue = InlineJobQueue({"job": handle}, Counters(), clock=clock)
    try:
        at = clock.now() + timedelta(minutes=6)
        queue.enqueue("job", b"x", not_before=at)
        assert done.wait(timeout=20), "the waiting job was never released"
    finally:
        queue.close()

    assert ran[0][0] == b"x"
    assert ran[0][1] >= at
