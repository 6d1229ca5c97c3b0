"""The engine's heartbeat in one process: what `serve --embedded`, `scheduler` and `demo` run.

`EngineLoop.step()` is one turn of the wheel, in the order work flows:

1. the scheduler ticks (follows the log, works out due times, queues due steps);
2. the dispatcher turns new `MessageQueued` and `ReplyReceived` into jobs;
3. (embedded) the job threads run them: sends, then the webhooks the sandbox answers
   with, then the analysis of replies those webhooks recorded;
4. periodic upkeep is enqueued when due: statistics rollup, review SLAs, phone health.

`run(stop)` turns it on a real-time interval until `stop` is set: that is the embedded
server's background thread and the production `scheduler` process (with a broker, the
jobs go to the workers instead of threads here). The demo calls `step()` itself between
moves of its simulated clock.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from cerniq_outreach.application.jobs import CHECK_SLAS, DAILY_STATS, PHONE_HEALTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from cerniq_outreach.bootstrap import Engine

_log = logging.getLogger(__name__)

UPKEEP_EVERY: Final = {
    DAILY_STATS: timedelta(minutes=5),
    CHECK_SLAS: timedelta(minutes=5),
    PHONE_HEALTH: timedelta(minutes=15),
}
"""How often (clock time) each periodic job is enqueued."""


@dataclass(slots=True)
class StepReport:
    """What one step did."""

    queued: int = 0
    dispatched: int = 0
    webhooks: int = 0


class EngineLoop:
    """Turns the engine: scheduler, dispatcher, (in-process) jobs, sandbox, upkeep."""

    def __init__(
        self,
        engine: Engine,
        *,
        upkeep: bool = True,
        settle: Callable[[], None] | None = None,
    ) -> None:
        """`settle` waits for the jobs enqueued so far (default: the in-process queue's)."""
        self.engine = engine
        self._upkeep = upkeep
        self._settle_jobs = settle
        self._last_upkeep: dict[str, datetime] = {}
        self._lock = threading.Lock()  # one step at a time: the scheduler is single-threaded

    def step(self) -> StepReport:
        """One turn (see the module doc); with in-process jobs, returns when they are done."""
        engine = self.engine
        report = StepReport()
        with self._lock:
            tick = engine.scheduler.tick()
            report.queued = tick.queued
            report.dispatched += engine.dispatcher.catch_up()
            self._settle()
            sandbox = engine.sandbox
            if sandbox is not None:
                report.webhooks = sandbox.pump()
                self._settle()
                # Replies recorded by those webhooks are analysed in the same step.
                report.dispatched += engine.dispatcher.catch_up()
                self._settle()
            if self._upkeep:
                self._enqueue_upkeep()
        return report

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        """Step every `interval` real seconds until `stop` is set; errors are logged, not fatal."""
        while not stop.is_set():
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the loop outlives one bad step
                _log.exception("engine step failed; trying again")
            stop.wait(interval)

    def _settle(self) -> None:
        """Run the jobs due now to the end (in-process; with a broker, `settle` or nothing)."""
        if self._settle_jobs is not None:
            self._settle_jobs()
            return
        jobs = self.engine.inline_jobs
        if jobs is None:
            return
        while True:
            jobs.release_due()
            jobs.join()
            if not jobs.release_due():
                return
            # Jobs deferred to exactly now (a retry without delay) run in this same step.

    def _enqueue_upkeep(self) -> None:
        now = self.engine.clock.now()
        for job, every in UPKEEP_EVERY.items():
            last = self._last_upkeep.get(job)
            if last is None or now - last >= every:
                self._last_upkeep[job] = now
                self.engine.jobs.enqueue(job, {"at": now.isoformat()})
        self._settle()
