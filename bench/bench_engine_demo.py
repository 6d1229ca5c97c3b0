"""The engine end to end: `cerniq-outreach demo`, 20 phones, 5,000 leads, 5 business days.

Runs the demo command as its own process (so its peak memory is its own), embedded (SQLite,
in-process quota and jobs) and on PostgreSQL + Redis (a database created on the server of
CERNIQ_BENCH_DATABASE_URL and dropped after, a Redis key prefix of its own on
CERNIQ_BENCH_REDIS_URL). For each: wall time of the whole run (seeding included), messages
sent end to end per second, peak memory. Targets (issue #6): under 60 s embedded, under 90 s
on PostgreSQL + Redis.

Baseline, in the same run and mode: the store alone, appending as many single-event
transactions as the demo's log holds, one stream per lead (no decisions, no jobs, no
projections beyond the inline ones) — what the engine's bookkeeping costs on top.

Prints `RESULT <name> <value> <unit>` lines; no assertion on the figures.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.bootstrap import open_event_store
from cerniq_outreach.domain.events import Company, LeadEnrolled, MessageDelivered
from cerniq_outreach.settings import Settings

SERVER_URL = os.environ.get(
    "CERNIQ_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CERNIQ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PHONES, LEADS, DAYS = 20, 5000, 5


def run_demo(env: dict[str, str], database_url: str) -> dict:
    """One demo run as a process; its JSON summary."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [
            sys.executable, "-m", "cerniq_outreach", "demo",
            "--phones", str(PHONES), "--leads", str(LEADS), "--days", str(DAYS),
            "--seed", "1", "--json", "--database-url", database_url,
        ],
        env=env,
        capture_output=True,
        check=True,
    )  # fmt: skip
    summary = json.loads(done.stdout)
    summary["run"]["process_seconds"] = time.perf_counter() - started
    return summary


def baseline(database_url: str, events: int) -> float:
    """Seconds to append `events` single-event transactions straight to the store."""
    settings = Settings.from_env({"CERNIQ_DATABASE_URL": database_url})
    log = open_event_store(settings, durable=False)
    now = datetime.now(UTC)
    leads = [str(uuid.uuid4()) for _ in range(max(1, events // 10))]
    try:
        started = time.perf_counter()
        for i in range(events):
            lead = leads[i % len(leads)]
            version = i // len(leads)
            if version == 0:
                event = LeadEnrolled(
                    event_id=str(uuid.uuid4()), tenant_id="bench", lead_id=lead,
                    occurred_at=now, sequence_id="cold-default",
                    company=Company(name="Agro Bench SRL", phone="+40722000000"),
                )  # fmt: skip
            else:
                event = MessageDelivered(
                    event_id=str(uuid.uuid4()), tenant_id="bench", lead_id=lead,
                    occurred_at=now, message_id=f"m-{i}",
                )  # fmt: skip
            log.store.append("bench", lead, [event], expected_version=version)
        return time.perf_counter() - started
    finally:
        log.close()


def report(mode: str, summary: dict, base_seconds: float) -> None:
    """The RESULT lines of one mode."""
    run = summary["run"]
    print(f"RESULT engine_demo_{mode}_wall_seconds {run['wall_seconds']:.1f} s")
    print(f"RESULT engine_demo_{mode}_messages_per_second {run['messages_per_second']} msg/s")
    print(f"RESULT engine_demo_{mode}_messages_sent {run['messages_sent']} messages")
    print(f"RESULT engine_demo_{mode}_events {summary['events']} events")
    print(f"RESULT engine_demo_{mode}_peak_memory {run['peak_memory_mb']} MB")
    print(f"RESULT engine_demo_{mode}_baseline_append_seconds {base_seconds:.1f} s")
    print(
        f"RESULT engine_demo_{mode}_vs_bare_appends {run['wall_seconds'] / base_seconds:.2f} ratio"
    )


def embedded(env: dict[str, str]) -> None:
    """The demo on SQLite with in-process quota and jobs, and the bare-append baseline."""
    with tempfile.TemporaryDirectory() as folder:
        summary = run_demo(env, f"sqlite:///{Path(folder) / 'demo.db'}")
        base_url = f"sqlite:///{Path(folder) / 'baseline.db'}"
        migrate(base_url)
        report("embedded", summary, baseline(base_url, summary["events"]))


def postgres(env: dict[str, str]) -> None:
    """The demo on PostgreSQL + Redis (a database of its own), and the baseline there."""
    name = f"cerniq_bench_engine_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(SERVER_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"skipping PostgreSQL + Redis: {exc}".splitlines()[0], file=sys.stderr)
        return
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(SERVER_URL)._replace(path="/" + quote(name)).geturl()
    try:
        pg_env = {
            **env,
            "CERNIQ_REDIS_URL": REDIS_URL,
            "CERNIQ_REDIS_PREFIX": f"cerniq-bench-{secrets.token_hex(4)}:",
        }
        summary = run_demo(pg_env, url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE events RESTART IDENTITY CASCADE")
        report("postgres_redis", summary, baseline(url, summary["events"]))
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    """Both modes, with none of the caller's configuration leaking in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_"))
    }
    env["CERNIQ_LOG_FORMAT"] = "json"
    embedded(env)
    postgres(env)


if __name__ == "__main__":
    main()
