"""`serve`: the HTTP app over the engine, with the engine's loop in-process when embedded.

Production runs `serve` (HTTP only: webhooks in, jobs out to the broker), `worker` and one
`scheduler`. `serve --embedded` runs the loop (`EngineLoop`) on a background thread and the
jobs on in-process threads. `--demo` seeds the demo tenant into a fresh store and runs a
simulated clock fast enough to watch a working day go by in a few minutes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import pika
import redis

from cerniq_outreach.application.demo_data import DEMO_TENANT
from cerniq_outreach.application.sending import SENT_COUNTER
from cerniq_outreach.application.upkeep import BREACH_COUNTER
from cerniq_outreach.bootstrap import quota_policy
from cerniq_outreach.entrypoints.http.app import create_app
from cerniq_outreach.entrypoints.http.ops import OpsState, ops_router
from cerniq_outreach.entrypoints.http.webhooks import WebhookGate
from cerniq_outreach.entrypoints.runtime import EngineLoop

if TYPE_CHECKING:
    from litestar import Litestar

    from cerniq_outreach.bootstrap import Engine

_log = logging.getLogger(__name__)

STEP_INTERVAL: Final = 0.2
"""Real seconds between two turns of the embedded loop."""

_TODAY = """
SELECT channel, SUM(sent) AS sent, SUM(replied) AS replied, SUM(reviews_opened) AS reviews,
    SUM(opted_out) AS opted_out
FROM outreach_daily_stats WHERE tenant_id = :tenant AND stat_date = :day GROUP BY channel
"""
_RECENT = """
SELECT occurred_at, summary FROM activity_feed WHERE tenant_id = :tenant
ORDER BY global_position DESC LIMIT 15
"""


class Server:
    """The app and, when embedded, the loop thread; `start()` / `stop()` run from the app."""

    def __init__(self, engine: Engine, *, embedded: bool, tenant: str | None = None) -> None:
        self.engine = engine
        self.embedded = embedded
        self.tenant = tenant
        self.loop = EngineLoop(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread (embedded only)."""
        if not self.embedded or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self.loop.run,
            args=(self._stop,),
            kwargs={"interval": STEP_INTERVAL},
            name="cerniq-engine",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop thread and wait for its current step to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def app(self) -> Litestar:
        """The Litestar app: webhooks, operations routes, the status page."""
        engine = self.engine
        receiver = engine.receiver
        gate = WebhookGate(
            intake=receiver.intake,
            resend=receiver.resend,
            timelinesai=receiver.timelinesai,
            instantly=receiver.instantly,
            counters=engine.counters,
        )
        state = OpsState(
            checks=self._checks(),
            counters=engine.counters,
            status=self.snapshot if self.embedded else None,
        )
        return create_app(
            webhooks=gate,
            route_handlers=[ops_router(state)],
            on_startup=[self.start],
            on_shutdown=[self.stop],
        )

    def snapshot(self) -> dict[str, Any]:
        """What the status page shows: the clock, today's counts, the latest events."""
        engine = self.engine
        now = engine.clock.now()
        tenant = self.tenant or DEMO_TENANT
        hours = quota_policy(engine.settings)(tenant).hours
        tz = ZoneInfo(hours.zone)
        day = hours.local_date(now).isoformat()
        counts: dict[str, int] = {}
        with engine.follower.read_models.transaction() as tx:
            for row in tx.fetchall(_TODAY, {"tenant": tenant, "day": day}):
                channel = row["channel"]
                if channel != "ALL":
                    counts[f"sent {channel}"] = int(row["sent"] or 0)
                counts["replies"] = counts.get("replies", 0) + int(row["replied"] or 0)
                counts["reviews opened"] = counts.get("reviews opened", 0) + int(
                    row["reviews"] or 0
                )
                counts["opt-outs"] = counts.get("opt-outs", 0) + int(row["opted_out"] or 0)
            recent = tx.fetchall(_RECENT, {"tenant": tenant})
        counts["sent since start (this process)"] = engine.counters.total(SENT_COUNTER)
        counts["review SLAs breached (this process)"] = engine.counters.total(BREACH_COUNTER)
        local = now.astimezone(tz)
        return {
            "mode": "embedded" if self.embedded else "production",
            "clock": f"{local:%A %d %B %Y, %H:%M} ({hours.zone})",
            "counts": counts,
            "recent": [
                {"at": _local(row["occurred_at"], tz), "text": row["summary"]} for row in recent
            ],
        }

    def _checks(self) -> dict[str, Callable[[], None]]:
        settings = self.engine.settings
        checks: dict[str, Callable[[], None]] = {}

        def database() -> None:
            with self.engine.follower.read_models.transaction() as tx:
                tx.fetchall("SELECT 1 AS ok")

        checks["database"] = database
        if settings.redis_url is not None:
            url = settings.redis_url

            def redis_ping() -> None:
                client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
                try:
                    client.ping()
                finally:
                    client.close()

            checks["redis"] = redis_ping
        broker_url = settings.broker_url
        if broker_url is not None:

            def broker_ping() -> None:
                if broker_url.startswith(("amqp://", "amqps://")):
                    params = pika.URLParameters(broker_url)
                    params.socket_timeout = 2
                    params.connection_attempts = 1
                    pika.BlockingConnection(params).close()
                    return
                client = redis.Redis.from_url(broker_url, socket_timeout=2)
                try:
                    client.ping()
                finally:
                    client.close()

            checks["broker"] = broker_ping
        return checks


def _local(value: object, tz: ZoneInfo) -> str:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return f"{when.astimezone(tz):%a %H:%M}"
