"""Long-running processes and the tools that drive them: serve, worker, scheduler, demo."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click
import psycopg
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.jobs_dramatiq import run_worker
from cerniq_outreach.adapters.migrations import migrate, reset_database
from cerniq_outreach.application import upkeep
from cerniq_outreach.application.catalog import CatalogError
from cerniq_outreach.application.demo_data import DEMO_TENANT
from cerniq_outreach.application.demo_summary import DAY_KEYS
from cerniq_outreach.bootstrap import open_engine, open_leader_lock, quota_policy
from cerniq_outreach.entrypoints.cli.base import (
    PROG,
    Command,
    database_url_option,
    fail,
    reported_errors,
    settings,
)
from cerniq_outreach.entrypoints.demo import DemoPlan, DemoRefused, run_demo, seed_demo
from cerniq_outreach.entrypoints.demo_rates import LIVELY_RATES
from cerniq_outreach.entrypoints.runtime import EngineLoop
from cerniq_outreach.entrypoints.serve import Server

if TYPE_CHECKING:
    from cerniq_outreach.adapters.channels.sandbox import SandboxProviders
    from cerniq_outreach.settings import Settings

_log = logging.getLogger(__name__)

DEMO_SPEED: Final = 300.0
"""`serve --demo`: five simulated minutes per real second (a working day in half an hour)."""
SCHEDULER_INTERVAL: Final = 1.0
"""Real seconds between two scheduler ticks in production."""


class _Signals:
    """Set by SIGTERM or SIGINT: the process finishes its step and exits.

    The handler only appends to a list: setting a `threading.Event` from a signal handler
    can deadlock against the very wait it interrupts (the handler runs on the waiting
    thread). Waits are sliced instead, so a signal is seen within a tenth of a second.
    """

    def __init__(self) -> None:
        self._received: list[int] = []
        self._pause = threading.Event()  # never set: its wait() is a bounded pause
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self._received.append(signum))

    def is_set(self) -> bool:
        """Whether a stop signal arrived."""
        return bool(self._received)

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for a stop signal; True once one arrived."""
        end = time.monotonic() + seconds
        while not self._received and (left := end - time.monotonic()) > 0:
            self._pause.wait(min(0.1, left))
        return self.is_set()


def _stop_on_signals() -> _Signals:
    """SIGTERM and SIGINT ask the process to stop (see `_Signals`)."""
    return _Signals()


def _needs_shared_quota(loaded: Settings, what: str) -> None:
    if loaded.broker_url is not None and loaded.redis_url is None:
        fail(
            f"{what} with CERNIQ_BROKER_URL needs CERNIQ_REDIS_URL: the quota guardian must be"
            " shared by every process (in-process quota is for the embedded mode only)"
        )


def _store_has_events(url: str) -> bool:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return False
        lite = sqlite3.connect(path)
        try:
            tables = lite.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
            return (
                bool(tables) and lite.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None
            )
        finally:
            lite.close()
    with psycopg.connect(url, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return False
        return conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None


def _prepare_store(url: str, *, reset: bool) -> None:
    """Migrate the store; refuse one that holds events unless `reset` (then empty it)."""
    if _store_has_events(url):
        if not reset:
            fail("the store already holds events; give --reset to empty it first (all data goes)")
        reset_database(url)
    else:
        migrate(url)


@click.command(cls=Command)
@click.option("--host", default="127.0.0.1", help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, help="TCP port to listen on.")
@click.option("--embedded", is_flag=True, help="Also run the workers and the scheduler in-process.")
@click.option("--demo", is_flag=True, help="Seed demo data and run on a fast simulated clock.")
def serve(host: str, port: int, embedded: bool, demo: bool) -> None:
    """Serve the HTTP API, provider webhooks and the dashboard.

    With --demo (which implies --embedded) a fresh demo store is seeded with 20 phones and
    1,000 leads, and a simulated clock runs five minutes a second from the next business
    morning, so messages, replies and reviews flow at once, whatever the hour.
    """
    loaded = settings()
    embedded = embedded or demo
    if not embedded:
        _needs_shared_quota(loaded, "serve")
    with reported_errors():
        if demo:
            loaded = _demo_store(loaded)
        else:
            migrate(loaded.database_url)
        clock = None
        if demo:
            hours = quota_policy(loaded)(DEMO_TENANT).hours
            clock = SimulatedClock(hours.next_open(datetime.now(UTC)), speed=DEMO_SPEED)
        try:
            engine = open_engine(
                loaded,
                clock=clock,
                run_jobs=embedded,
                sandbox_rates=LIVELY_RATES if demo else None,
            )
        except CatalogError as exc:
            fail(str(exc))
        try:
            if demo:
                plan = DemoPlan(phones=20, leads=1000, days=1, seed=0)
                seed_demo(engine, plan)
            engine.projector.catch_up()
            engine.pool.sync_guardian()
            server = Server(engine, embedded=embedded, tenant=DEMO_TENANT if demo else None)
            app = server.app()
            url = f"http://{host}:{port}/"
            click.echo(f"{PROG}: serving on {url}", err=True)
            if demo:
                click.echo(
                    f"{PROG}: demo tenant '{DEMO_TENANT}', 20 phones, 1,000 leads, simulated"
                    f" clock x{DEMO_SPEED:g} from {engine.clock.now():%Y-%m-%d %H:%M} UTC",
                    err=True,
                )
                # Nobody works the review desk in a demo: breaches are counted on the status
                # page and in the activity lines instead of logged one by one.
                logging.getLogger(upkeep.__name__).setLevel(logging.CRITICAL)
                reporter = _Reporter(server)
                reporter.start()
            # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again for the
            # handler that was there before it: a no-op here, so the engine below is closed
            # and the process exits 0 instead of dying by the signal.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: None)
            uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
        finally:
            engine.close()


class _Reporter:
    """Prints a line of activity every few seconds (the demo's heartbeat on the terminal)."""

    def __init__(self, server: Server, every: float = 5.0) -> None:
        self._server = server
        self._every = every
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="cerniq-reporter", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                snap = self._server.snapshot()
            except Exception:  # noqa: BLE001 - a report is not worth a crash
                _log.debug("activity report skipped", exc_info=True)
                continue
            counts = " · ".join(f"{k} {v}" for k, v in snap["counts"].items())
            click.echo(f"[{snap['clock']}] {counts}", err=True)


def _demo_store(loaded: Settings) -> Settings:
    """The demo's store: a fresh SQLite file, or the configured one if it is empty."""
    if os.environ.get("CERNIQ_DATABASE_URL"):
        if _store_has_events(loaded.database_url):
            fail("--demo seeds its own data: point CERNIQ_DATABASE_URL at an empty store")
        migrate(loaded.database_url)
        return loaded
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = Path("var") / f"demo-{stamp}.db"
    url = f"sqlite:///{path}"
    migrate(url)
    click.echo(f"{PROG}: demo data in {path}", err=True)
    return dataclasses.replace(loaded, database_url=url)


@click.command(cls=Command)
@click.option("--threads", type=click.IntRange(1, 64), default=8, help="Job threads.")
def worker(threads: int) -> None:
    """Run a dramatiq worker for all actors.

    Sends, webhook processing, reply analysis and the periodic jobs run here, taking jobs
    from CERNIQ_BROKER_URL. Stops cleanly on SIGTERM (the current jobs finish).
    """
    loaded = settings()
    if loaded.broker_url is None:
        fail("worker needs CERNIQ_BROKER_URL (embedded, `serve --embedded` runs the jobs)")
    _needs_shared_quota(loaded, "worker")
    stop = _stop_on_signals()
    with reported_errors():
        engine = open_engine(loaded, run_jobs=True)
        try:
            engine.pool.sync_guardian()
            sandbox = engine.sandbox
            if sandbox is not None:
                # The sandbox answers the sends made in this process: its webhooks are
                # emitted from here, as they come due.
                threading.Thread(
                    target=_pump, args=(sandbox, stop), name="cerniq-sandbox", daemon=True
                ).start()
            click.echo(f"{PROG}: worker running with {threads} threads", err=True)
            # run_worker watches SIGTERM/SIGINT itself (its handlers replace ours meanwhile).
            run_worker(engine.broker, threads=threads)
        finally:
            engine.close()


def _pump(sandbox: SandboxProviders, stop: _Signals, every: float = 0.5) -> None:
    while not stop.wait(every):
        try:
            sandbox.pump()
        except Exception:  # noqa: BLE001 - a failed webhook is logged; the pump goes on
            _log.exception("sandbox webhook delivery failed")


@click.command(cls=Command)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=SCHEDULER_INTERVAL,
    help="Real seconds between two ticks.",
)
def scheduler(interval: float) -> None:
    """Run the periodic scheduler tick.

    Each tick queues due sequence steps, dispatches queued messages to the workers, and
    enqueues review SLA checks, phone health and the statistics rollup. Run one; it holds a
    database lock, so a second one waits until the first stops.
    """
    loaded = settings()
    _needs_shared_quota(loaded, "scheduler")
    stop = _stop_on_signals()
    with reported_errors():
        lock = open_leader_lock(loaded)
        click.echo(f"{PROG}: scheduler waiting for the leader lock", err=True)
        if not lock.acquire(stop):
            return
        engine = open_engine(loaded, run_jobs=loaded.broker_url is None)
        try:
            engine.projector.catch_up()
            engine.pool.sync_guardian()
            click.echo(f"{PROG}: scheduler is the leader; ticking", err=True)
            loop = EngineLoop(engine)
            while not stop.is_set():
                if not lock.held():
                    fail("the scheduler lost its lock (database session gone); stopping")
                loop.step()
                stop.wait(interval)
        finally:
            engine.close()
            lock.release()


@click.command(cls=Command)
@click.option(
    "--phones", type=click.IntRange(min=1), default=20, help="WhatsApp numbers in the pool."
)
@click.option("--leads", type=click.IntRange(min=1), default=1000, help="Leads to enroll.")
@click.option("--days", type=click.IntRange(min=1), default=5, help="Business days to simulate.")
@click.option("--seed", type=int, default=0, help="Random seed; the same seed gives the same run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--database-url",
    callback=database_url_option,
    help="Store to write into (default: CERNIQ_DATABASE_URL, else a new SQLite file in ./var/).",
)
@click.option("--reset", is_flag=True, help="Empty a store that already holds events first.")
def demo(
    *,
    phones: int,
    leads: int,
    days: int,
    seed: int,
    as_json: bool,
    database_url: str | None,
    reset: bool,
) -> None:
    """Simulate business days against sandbox providers.

    Runs whole simulated days as fast as the machine allows and prints a summary. It refuses a
    store that already holds events unless --reset is given.
    """
    loaded = settings()
    url = database_url or (loaded.database_url if os.environ.get("CERNIQ_DATABASE_URL") else None)
    if url is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = Path("var") / f"demo-{stamp}-seed{seed}.db"
        url = f"sqlite:///{path}"
        click.echo(f"{PROG} demo: writing into {path}", err=True)
    loaded = dataclasses.replace(loaded, database_url=url)
    plan = DemoPlan(phones=phones, leads=leads, days=days, seed=seed)
    with reported_errors():
        _prepare_store(url, reset=reset)
        try:
            if sys.stderr.isatty() and not as_json:
                with Progress(transient=True) as bar:
                    task = bar.add_task("simulating", total=days)
                    summary = run_demo(
                        loaded, plan, progress=lambda done, _t: bar.update(task, completed=done)
                    )
            else:
                summary = run_demo(loaded, plan)
        except (DemoRefused, CatalogError) as exc:
            fail(str(exc))
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    console = Console(width=120)
    days = Table(title="Per day")
    days.add_column("date", justify="right")
    for key in DAY_KEYS:
        days.add_column(key.replace("_", " "), justify="right")
    for day in summary["days"]:
        days.add_row(day["date"], *(str(day[key]) for key in DAY_KEYS))
    console.print(days)
    phones = Table(title="Per phone")
    for column in ("number", "new contacts", "follow-ups", "busiest day"):
        phones.add_column(column, justify="right")
    for phone in summary["phones"]:
        busiest = max((d["new_contacts"] for d in phone["days"]), default=0)
        phones.add_row(
            str(phone["number"]), str(phone["new_contacts"]), str(phone["follow_ups"]), str(busiest)
        )
    console.print(phones)
    states = ", ".join(f"{k} {v}" for k, v in summary["final_states"].items())
    run = summary["run"]
    console.print(f"Final states: {states}")
    console.print(
        f"{run['messages_sent']} messages in {run['wall_seconds']} s"
        f" ({run['messages_per_second']} per second), peak memory {run['peak_memory_mb']} MB"
    )


COMMANDS: Final = (serve, worker, scheduler, demo)
