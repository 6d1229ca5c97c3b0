"""The in-process JobQueue of the embedded mode: worker threads, and a heap of waiting jobs.

Jobs are handed over as they would be to a broker (a name and a JSON-ready payload), and a
handler's ending means what `application.jobs` says it means, so the code and the failure
semantics are those of dramatiq on a broker: a failure is retried with backoff, `RetryLater`
waits without spending a retry, `NonRetryable` and running out of retries are logged and
counted in `FAILED_COUNTER`.

Time is the Clock port's. A job that must wait (`not_before`, a `RetryLater`, a retry's
backoff) sits in a heap ordered by clock time until `release_due` moves it to the run queue.
With a clock that runs (`SystemClock`, a `SimulatedClock` with a speed) a background thread
calls `release_due` every `release_interval` real seconds; with a frozen `SimulatedClock`
(speed 0: the demo loop, tests) the caller moves the clock, then calls `release_due()` and
`join()` itself, and no release thread is needed (`release_thread=False`).

Nothing is durable: jobs still waiting when the queue closes are dropped (and logged). The
durable truth is elsewhere (the webhook inbox, the event log) and handlers are idempotent.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from cerniq_outreach.adapters.clock import SystemClock
from cerniq_outreach.application.jobs import (
    DEFAULT_RETRY_POLICY,
    FAILED_COUNTER,
    NonRetryable,
    RetryLater,
    RetryPolicy,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.jobs import JobHandler, JobPayload
    from cerniq_outreach.application.metrics import Counters
    from cerniq_outreach.application.ports import Clock

__all__ = ["FAILED_COUNTER", "InlineJobQueue", "JobStats", "UnknownJob"]

_log = logging.getLogger(__name__)


class UnknownJob(LookupError):
    """No handler (or actor) is registered under the job's name."""


@dataclass(frozen=True, slots=True)
class JobStats:
    """How the runs of one job name ended, since the queue was made.

    Attributes:
        succeeded: runs that returned.
        failed: jobs given up on (`NonRetryable`, or out of retries); also in FAILED_COUNTER.
        retried: runs that failed and were scheduled again with backoff.
        deferred: runs that raised `RetryLater`.
    """

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0


class _Ending(Enum):
    # The values are JobStats' field names.
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRIED = "retried"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class _Job:
    name: str
    payload: JobPayload
    retries: int = 0  # failed runs so far; `RetryLater` does not count


class InlineJobQueue:
    """JobQueue on `workers` threads of this process; thread-safe.

    Args:
        handlers: the function that runs each job name.
        counters: where given-up jobs are counted (FAILED_COUNTER, labelled `job`).
        clock: the time `not_before`, `RetryLater` and backoff are read against.
        workers: how many threads run jobs.
        policy: retries and backoff of failing jobs.
        start: start the worker (and release) threads now; else call `start()`.
        release_thread: release due jobs from a background thread; leave it off with a
            frozen clock, whose owner calls `release_due()` after moving it.
        release_interval: real seconds between two looks of the release thread.
    """

    def __init__(
        self,
        handlers: Mapping[str, JobHandler],
        counters: Counters,
        *,
        clock: Clock | None = None,
        workers: int = 1,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        start: bool = True,
        release_thread: bool = True,
        release_interval: float = 0.02,
    ) -> None:
        if workers < 1:
            raise ValueError(f"at least one worker is needed, not {workers}")
        self._handlers = dict(handlers)
        self._counters = counters
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._policy = policy
        self._workers = workers
        self._release_thread = release_thread
        self._release_interval = release_interval
        # One lock guards all the state below; workers wait on `_has_work`, `join` on `_idle`.
        # Two conditions on one lock, so a notify meant for a worker never wakes a joiner.
        self._lock = threading.Lock()
        self._has_work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._ready: deque[_Job] = deque()
        # (clock time, sequence, job): the sequence keeps equal times in arrival order and
        # spares the heap from ever comparing two jobs.
        self._waiting: list[tuple[datetime, int, _Job]] = []
        self._sequence = itertools.count()
        self._running = 0
        self._endings: dict[str, dict[_Ending, int]] = {}
        self._started = False
        self._closing = False
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._stop_releasing = threading.Event()
        if start:
            self.start()

    # --- the JobQueue port ------------------------------------------------------------------

    def enqueue(
        self, job_name: str, payload: JobPayload, *, not_before: datetime | None = None
    ) -> None:
        """Queue one job, to run at once or not before `not_before` (clock time).

        Raises:
            UnknownJob: no handler is registered under `job_name` (refused here, not later).
            ValueError: `not_before` is a naive datetime.
            RuntimeError: the queue is closed.
        """
        if job_name not in self._handlers:
            raise UnknownJob(job_name)
        if not_before is not None:
            _require_aware(not_before)
        job = _Job(job_name, payload)
        waits = not_before is not None and not_before > self._clock.now()
        with self._lock:
            if self._closed:
                raise RuntimeError("the job queue is closed")
            if waits and not_before is not None:
                heapq.heappush(self._waiting, (not_before, next(self._sequence), job))
            else:
                self._ready.append(job)
                self._has_work.notify()

    # --- driving and observing ----------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (and the release thread); does nothing the second time."""
        with self._lock:
            if self._started or self._closing:
                return
            self._started = True
            self._threads = [
                threading.Thread(target=self._work, name=f"cerniq-job-{i}", daemon=True)
                for i in range(self._workers)
            ]
            if self._release_thread:
                self._threads.append(
                    threading.Thread(target=self._release, name="cerniq-job-release", daemon=True)
                )
        for thread in self._threads:
            thread.start()

    def release_due(self) -> int:
        """Move the waiting jobs whose time the clock has reached to the run queue; how many."""
        now = self._clock.now()
        released = 0
        with self._lock:
            while self._waiting and self._waiting[0][0] <= now:
                self._ready.append(heapq.heappop(self._waiting)[2])
                released += 1
            if released:
                self._has_work.notify(released)
        return released

    def next_due(self) -> datetime | None:
        """The clock time of the earliest waiting job, or None when none waits."""
        with self._lock:
            return self._waiting[0][0] if self._waiting else None

    def join(self) -> None:
        """Block until every runnable job has run, those they enqueue included.

        Waiting jobs (not yet due) are not waited for: move the clock and `release_due()`.

        Raises:
            RuntimeError: jobs are queued but the workers were never started.
        """
        with self._lock:
            if not self._started and self._ready:
                raise RuntimeError("join() would never return: the workers are not started")
            while self._ready or self._running:
                self._idle.wait()

    def pending(self) -> int:
        """Jobs queued and not yet finished: runnable, running and waiting."""
        with self._lock:
            return len(self._ready) + self._running + len(self._waiting)

    def delayed(self) -> int:
        """Jobs waiting for their clock time."""
        with self._lock:
            return len(self._waiting)

    def stats(self) -> dict[str, JobStats]:
        """How the runs of each job name have ended so far."""
        with self._lock:
            return {
                name: JobStats(**{ending.value: n for ending, n in endings.items()})
                for name, endings in self._endings.items()
            }

    def close(self) -> None:
        """Let the runnable jobs finish, stop the threads, and drop the waiting jobs."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._has_work.notify_all()
        self._stop_releasing.set()
        for thread in self._threads:
            thread.join()
        with self._lock:
            self._closed = True
            dropped = len(self._waiting) + len(self._ready)
            self._waiting.clear()
            self._ready.clear()
            self._idle.notify_all()
        if dropped:
            _log.warning("job queue closed with jobs not run", extra={"dropped": dropped})

    # --- the threads ------------------------------------------------------------------------

    def _release(self) -> None:
        while not self._stop_releasing.wait(self._release_interval):
            self.release_due()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._ready and not self._closing:
                    self._has_work.wait()
                if not self._ready:
                    return  # closing, and nothing runnable is left
                job = self._ready.popleft()
                self._running += 1
            ending: _Ending | None = None
            again: tuple[datetime, _Job] | None = None
            try:
                ending, again = self._run(job)
            finally:
                # The job's next run (if any) is queued in the same critical section that
                # ends this one, so `join` never sees a moment with neither.
                with self._lock:
                    self._running -= 1
                    if ending is not None:
                        endings = self._endings.setdefault(job.name, dict.fromkeys(_Ending, 0))
                        endings[ending] += 1
                    if again is not None:
                        at, next_run = again
                        heapq.heappush(self._waiting, (at, next(self._sequence), next_run))
                    if not self._ready and not self._running:
                        self._idle.notify_all()

    def _run(self, job: _Job) -> tuple[_Ending, tuple[datetime, _Job] | None]:
        log_extra = {"job": job.name, "retries": job.retries}
        try:
            self._handlers[job.name](job.payload)
        except RetryLater as later:
            if later.at.tzinfo is None or later.at.utcoffset() is None:
                _log.exception("job deferred to a naive time, given up", extra=log_extra)
                return self._give_up(job), None
            _log.info(
                "job deferred",
                extra={**log_extra, "at": later.at.isoformat(), "reason": later.reason},
            )
            return _Ending.DEFERRED, (later.at, job)
        except NonRetryable:
            _log.exception("job failed, not retryable", extra=log_extra)
            return self._give_up(job), None
        except Exception:  # noqa: BLE001 - any other failure may pass: retry it
            retries = job.retries + 1
            if retries > self._policy.max_retries:
                _log.exception("job failed, out of retries", extra=log_extra)
                return self._give_up(job), None
            backoff = self._policy.backoff(retries)
            _log.warning(
                "job failed, will retry", exc_info=True, extra={**log_extra, "backoff": backoff}
            )
            at = self._clock.now() + timedelta(seconds=backoff)
            return _Ending.RETRIED, (at, replace(job, retries=retries))
        return _Ending.SUCCEEDED, None

    def _give_up(self, job: _Job) -> _Ending:
        self._counters.inc(FAILED_COUNTER, job=job.name)
        return _Ending.FAILED


def _require_aware(instant: datetime) -> None:
    # A naive time cannot be ordered against the clock's aware ones (TypeError in the heap).
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is needed, not naive {instant.isoformat()}")
