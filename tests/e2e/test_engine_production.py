"""The engine end to end in production mode, with crashes.

PostgreSQL, Redis, dramatiq on the broker, and real worker and scheduler processes, sending
over real HTTP to the provider emulator. Every process shares a simulated clock
(`CERNIQ_CLOCK`, anchored to the wall clock, two hours a real second), so five business days
pass in under a minute. Midway a worker is killed with
SIGKILL while it holds jobs, and later the scheduler (which runs the dispatcher) too; both
are restarted. Then the proof, from `events export` alone and the emulator's request log:
every invariant held, every `MessageQueued` ended with exactly one `MessageSent` (or a
recorded failure or cancellation) and exactly one provider request, and the rebuilt read
models equal the live ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.application.demo_data import DEMO_TENANT
from cerniq_outreach.bootstrap import open_clock, open_engine, quota_policy
from cerniq_outreach.entrypoints.demo import DemoPlan, seed_demo
from cerniq_outreach.settings import Settings
from engine_support import audit_from_export, cli, describe

import services

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.broker]

SPEED = 7200  # simulated seconds per real second: two hours a second
START = datetime(2026, 3, 2, 6, 50, tzinfo=UTC)  # Monday 08:50 in Bucharest
PLAN = DemoPlan(phones=3, leads=60, days=5, seed=5)
_CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
DEADLINE = 240.0  # real seconds any wait may take before the test fails


class Processes:
    """The engine's processes, started as a deployment would (`python -m cerniq_outreach`)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self._count = Counter[str]()
        self._files: list[Any] = []

    def start(self, name: str, *args: str) -> None:
        self._count[name] += 1
        log = (self.logs / f"{name}-{self._count[name]}.log").open("wb")
        self._files.append(log)
        self.running[name] = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "cerniq_outreach", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()
        for log in self._files:
            log.close()

    def alive(self) -> None:
        for name, process in self.running.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}: {self.tail()}"

    def tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
            for path in sorted(self.logs.glob("*.log"))
        )


def wait_until(what: str, condition: Callable[[], bool], processes: Processes) -> None:
    """Poll `condition` until it holds (or fail after DEADLINE, showing the process logs)."""
    deadline = time.monotonic() + DEADLINE
    pause = threading.Event()
    while not condition():
        processes.alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{processes.tail()}")
        pause.wait(0.2)


def counts(url: str) -> Counter[str]:
    """Events by type, straight from the log."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT event_type, count(*) FROM events GROUP BY event_type")
        return Counter(dict(rows))


def unsettled(url: str) -> int:
    """Queued messages without a MessageSent, MessageFailed or MessageCancelled yet."""
    c = counts(url)
    return c["MessageQueued"] - c["MessageSent"] - c["MessageFailed"] - c["MessageCancelled"]


def _tag(email: dict, name: str) -> str | None:
    return next((t["value"] for t in email.get("tags", []) if t["name"] == name), None)


@pytest.fixture
def database(postgres_server_url: str) -> Iterator[str]:
    with services.fresh_database(postgres_server_url) as url:
        migrate(url)
        yield url


@pytest.fixture
def services_env(database: str, redis_url: str, redis_prefix: str, broker_url: str, broker_prefix):
    """This run's database, Redis keys and broker queue, as the processes' environment."""
    return {
        "CERNIQ_DATABASE_URL": database,
        "CERNIQ_REDIS_URL": redis_url,
        "CERNIQ_REDIS_PREFIX": f"{redis_prefix}e2e:",
        "CERNIQ_BROKER_URL": broker_url,
        "CERNIQ_BROKER_QUEUE": broker_prefix.queue("e2e"),
    }


@pytest.fixture
def deployment(services_env: dict[str, str], emulator) -> dict[str, str]:
    """The environment of every process: the services, the shared clock, the emulator."""
    control = emulator.control
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)},
        **services_env,
        "CERNIQ_CLOCK": f"start={START.isoformat()} speed={SPEED} anchor={time.time()}",
        "CERNIQ_LOG_FORMAT": "json",
        # A killed worker's attempts are checked with the provider after 5 real seconds.
        "CERNIQ_SEND_LEASE_SECONDS": "5",
    }
    for provider in ("timelinesai", "instantly", "resend"):
        env[f"{provider.upper()}_API_KEY"] = control.api_keys[provider]
        env[f"{provider.upper()}_BASE_URL"] = f"{emulator.url}/{provider}"
    return env


def test_production_processes_survive_crashes_and_keep_every_invariant(
    deployment, emulator, tmp_path
):
    """Kill a worker mid-batch and the scheduler once: still one send per message, all rules."""
    env = deployment
    database = env["CERNIQ_DATABASE_URL"]
    settings = Settings.from_env(env)
    clock = open_clock(settings)
    hours = quota_policy(settings)(DEMO_TENANT).hours

    engine = open_engine(settings, run_jobs=False)
    try:
        numbers = seed_demo(engine, PLAN)
    finally:
        engine.close()
    with emulator.control.lock:
        emulator.control.whatsapp_accounts = dict.fromkeys(numbers.values(), "active")

    processes = Processes(env, tmp_path)
    try:
        processes.start("worker-a", "worker", "--threads", "4")
        processes.start("worker-b", "worker", "--threads", "4")
        processes.start("scheduler", "scheduler", "--interval", "0.2")

        wait_until("the first sends", lambda: counts(database)["MessageSent"] >= 15, processes)
        processes.kill("worker-a")  # mid-batch: it holds jobs it has not acknowledged
        processes.start("worker-a", "worker", "--threads", "4")

        wait_until("more sends", lambda: counts(database)["MessageSent"] >= 40, processes)
        processes.kill("scheduler")  # the dispatcher dies with it, its checkpoint behind
        processes.start("scheduler", "scheduler", "--interval", "0.2")

        end = hours.window_end(hours.next_open(START) + timedelta(days=PLAN.days - 1))
        wait_until("the last business day to end", lambda: clock.now() > end, processes)
        wait_until("every queued message to settle", lambda: unsettled(database) == 0, processes)
    finally:
        processes.stop_all()

    cli_env = {k: v for k, v in env.items() if k.startswith("CERNIQ_")}
    report, types = audit_from_export(cli_env, hours)
    assert report.ok, describe(report)
    assert types["MessageSent"] >= 40
    assert types["LeadEnrolled"] == PLAN.leads
    _one_provider_request_per_send(emulator.control, report.summary.sent)
    verify = cli(cli_env, "replay", "--verify")
    assert verify.exit_code == 0, verify.output


def _one_provider_request_per_send(control, sent: dict[str, int]) -> None:
    """Each recorded send was exactly one request to its provider, whatever was killed when."""
    with control.lock:
        whatsapp = Counter((m["phone"], m["text"]) for m in control.whatsapp_sent)
        cold = Counter((lead["campaign"], lead["email"]) for lead in control.leads.values())
        warm = Counter(_tag(m, "message_id") for m in control.emails_sent)
    for channel, requests in (("WHATSAPP", whatsapp), ("EMAIL_COLD", cold), ("EMAIL_WARM", warm)):
        assert not [k for k, n in requests.items() if n > 1], f"{channel} sent twice"
        assert sum(requests.values()) == sent.get(channel, 0), channel
    assert sent.get("EMAIL_COLD", 0) > 0  # the run reached the sequence's email step
