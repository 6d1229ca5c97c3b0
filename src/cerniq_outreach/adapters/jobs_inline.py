"""The in-process JobQueue of the embedded mode: worker threads on a `queue.Queue`.

Jobs are handed over as they would be to a broker (a name and a JSON-ready payload), so the
code that runs them is the code dramatiq will run (issue #6). A failing job is logged and
counted, then dropped: handlers are idempotent and the durable truth is elsewhere (the
webhook inbox, the event log), and the embedded mode has no broker to redeliver from.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.jobs import JobHandler, JobPayload
    from cerniq_outreach.application.metrics import Counters

FAILED_COUNTER: Final = "cerniq_jobs_failed_total"
_log = logging.getLogger(__name__)


class UnknownJob(LookupError):
    """No handler is registered under the job's name."""


class InlineJobQueue:
    """JobQueue on `workers` daemon threads of this process.

    Args:
        handlers: the function that runs each job name.
        counters: where failed jobs are counted.
        workers: how many threads take jobs.
    """

    def __init__(
        self, handlers: Mapping[str, JobHandler], counters: Counters, *, workers: int = 1
    ) -> None:
        self._handlers = dict(handlers)
        self._counters = counters
        # None tells a worker to stop (one per worker, queued behind the jobs already there).
        self._queue: queue.Queue[tuple[str, JobPayload] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"cerniq-job-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def enqueue(self, job_name: str, payload: JobPayload) -> None:
        """Queue one job; an unknown name is refused at once, not in the worker."""
        if job_name not in self._handlers:
            raise UnknownJob(job_name)
        self._queue.put((job_name, payload))

    def join(self) -> None:
        """Block until every job queued so far has run (tests, and a clean shutdown)."""
        self._queue.join()

    def pending(self) -> int:
        """Jobs queued and not yet finished (approximate while workers run)."""
        return self._queue.unfinished_tasks

    def close(self) -> None:
        """Let queued jobs finish, then stop the workers."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._run(*item)
            finally:
                self._queue.task_done()

    def _run(self, name: str, payload: JobPayload) -> None:
        try:
            self._handlers[name](payload)
        except Exception:  # noqa: BLE001 - any job failure: the worker must live on
            # The worker thread must survive any job; the failure is logged and counted.
            _log.exception("job failed", extra={"job": name})
            self._counters.inc(FAILED_COUNTER, job=name)
