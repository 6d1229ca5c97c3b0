"""Whole simulated business days, as fast as the machine allows (`cerniq-outreach demo`).

The demo seeds a tenant (`demo`) with a phone pool and leads, then drives the engine on a
stopped simulated clock: it moves the clock a minute at a time through each business
window (a quarter hour at a time through nights and weekends, when only webhooks arrive)
and turns the engine once per move (`EngineLoop.step`), so every decision sees the time it
would see in production. Providers are the sandbox's; a live key refuses the run.

With a broker configured the jobs go through it, to dramatiq workers started in this
process (they share the simulated clock); with Redis the guardian is Redis Lua. The summary
is read back from the log (`application.demo_summary`).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import dramatiq

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.jobs_dramatiq import DramatiqJobQueue, start_worker
from cerniq_outreach.application import upkeep
from cerniq_outreach.application.demo_data import DEMO_TENANT, demo_leads, demo_phones
from cerniq_outreach.application.demo_summary import summarise
from cerniq_outreach.application.enrolment import EnrolOutcome
from cerniq_outreach.bootstrap import open_engine, quota_policy
from cerniq_outreach.entrypoints.runtime import EngineLoop

if TYPE_CHECKING:
    from collections.abc import Callable

    from cerniq_outreach.bootstrap import Engine
    from cerniq_outreach.domain.business_hours import BusinessHours
    from cerniq_outreach.settings import Settings

DEMO_START: Final = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
"""A Monday, 08:00 in Bucharest: the demo's first morning unless told otherwise."""
OPEN_STEP: Final = timedelta(minutes=1)
CLOSED_STEP: Final = timedelta(minutes=15)
WORKER_THREADS: Final = {"sqlite": 2, "postgres": 6}
"""Job threads of the demo: SQLite takes one writer at a time, so more only contend;
PostgreSQL's round trips overlap."""


class DemoRefused(Exception):
    """The demo cannot run with this configuration (a live provider key, say)."""


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """What to simulate."""

    phones: int
    leads: int
    days: int
    seed: int
    start: datetime = DEMO_START


def seed_demo(engine: Engine, plan: DemoPlan) -> dict[str, str]:
    """Add the pool and enrol the leads; returns phone id -> number."""
    today = engine.pool.today(DEMO_TENANT)
    numbers: dict[str, str] = {}
    for phone in demo_phones(plan.phones, seed=plan.seed, today=today):
        view = engine.pool.add(
            DEMO_TENANT,
            phone.number,
            label=phone.label,
            warmup_started=phone.warmup_started,
            by="demo",
            command_id=f"demo-phone/{phone.number}",
        )
        numbers[view.phone_id] = view.number
        sandbox = engine.sandbox
        if sandbox is not None:
            sandbox.whatsapp.connect(view.number)
    collected = engine.clock.now() - timedelta(days=30)
    for lead in demo_leads(plan.leads, seed=plan.seed, collected_at=collected):
        result = engine.enrolment.enroll(DEMO_TENANT, lead, actor="demo")
        if result.outcome is EnrolOutcome.REFUSED:  # pragma: no cover - the data is valid
            raise DemoRefused(f"demo lead refused: {result.detail}")
    return numbers


def drive(
    loop: EngineLoop,
    clock: SimulatedClock,
    hours: BusinessHours,
    days: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Run `days` business days from the clock's time; returns the steps taken."""
    steps = 0
    first = hours.next_open(clock.now())
    day_start = first
    for day in range(days):
        window_end = hours.window_end(day_start)
        while clock.now() < window_end:
            loop.step()
            steps += 1
            clock.advance(OPEN_STEP)
        # After hours: webhooks still arrive (replies at night), nothing is sent.
        next_start = hours.next_open(window_end)
        while clock.now() < next_start and day < days - 1:
            loop.step()
            steps += 1
            clock.advance(min(CLOSED_STEP, next_start - clock.now()))
        if progress is not None:
            progress(day + 1, days)
        day_start = next_start
    loop.step()  # what the last minute of the last day queued or received
    return steps


def run_demo(
    settings: Settings,
    plan: DemoPlan,
    *,
    progress: Callable[[int, int], None] | None = None,
    queue_name: str = "cerniq-demo",
) -> dict[str, Any]:
    """Seed, drive and summarise one demo run on the configured (emptied) store."""
    live = [name for name in ("timelinesai", "instantly", "resend") if settings.provider(name).live]
    if live:
        raise DemoRefused(
            f"the demo sends to the sandbox only; unset the API keys of: {', '.join(live)}"
        )
    clock = SimulatedClock(plan.start, speed=0)
    hours = quota_policy(settings)(DEMO_TENANT).hours
    started = time.perf_counter()
    with ExitStack() as stack:
        engine = open_engine(
            settings,
            clock=clock,
            sandbox_seed=plan.seed,
            release_thread=False,
            inline_workers=WORKER_THREADS[settings.database_backend],
            queue_name=queue_name,
            # A simulation's store: losing its last commits to a power cut costs nothing,
            # and skipping an fsync per commit is most of "as fast as the machine allows".
            durable=False,
        )
        stack.callback(engine.close)
        settle = None
        if isinstance(engine.jobs, DramatiqJobQueue):
            settle = _broker_settle(
                engine.jobs,
                start_worker(engine.jobs.broker, WORKER_THREADS[settings.database_backend]),
            )
            stack.callback(settle.worker.stop)
        # Nobody works the review desk in a demo: every review breaches its SLA. Those
        # alerts are counted in the summary instead of flooding the terminal.
        alerts = logging.getLogger(upkeep.__name__)
        stack.callback(alerts.setLevel, alerts.level)
        alerts.setLevel(logging.CRITICAL)
        numbers = seed_demo(engine, plan)
        loop = EngineLoop(engine, settle=settle)
        steps = drive(loop, clock, hours, plan.days, progress=progress)
        engine.projector.catch_up()
        summary = summarise(engine.follower.store.export(tenant_id=DEMO_TENANT), hours, numbers)
        summary["sla_breaches"] = engine.counters.total(upkeep.BREACH_COUNTER)
    wall = time.perf_counter() - started
    sent = sum(
        day["new_contacts"] + day["follow_ups"] + day["emails_cold"] + day["emails_warm"]
        for day in summary["days"]
    )
    summary["run"] = {
        "tenant_id": DEMO_TENANT,
        "phones": plan.phones,
        "leads": plan.leads,
        "days": plan.days,
        "seed": plan.seed,
        "steps": steps,
        "messages_sent": sent,
        "wall_seconds": round(wall, 3),
        "messages_per_second": round(sent / wall, 1) if wall > 0 else None,
        "peak_memory_mb": round(_peak_rss_mb(), 1),
    }
    return summary


class _broker_settle:  # noqa: N801 - a callable used like a function
    """Wait for the broker's jobs of a step: release held ones, drain, until quiet."""

    def __init__(self, jobs: DramatiqJobQueue, worker: dramatiq.Worker) -> None:
        self.jobs = jobs
        self.worker = worker

    def __call__(self) -> None:
        self.jobs.release_due()
        self.jobs.drain(self.worker, self.jobs.queue_name)
        while self.jobs.release_due():
            self.jobs.drain(self.worker, self.jobs.queue_name)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
