"""The periodic jobs the scheduler enqueues: review SLAs, phone health, the statistics rollup.

- `SlaCheck` (`CHECK_SLAS`): an open review past its deadline is breached; each breach
  raises one alert (a log line at ERROR and `cerniq_review_sla_breaches_total`), recorded in
  `review_sla_alerts` so a repeated check does not alert twice.
- `PhoneHealth` (`PHONE_HEALTH`): asks the WhatsApp provider which numbers are connected and
  records a health check per phone of every pool; a disconnected ACTIVE phone is paused
  automatically (`domain.phones`), and the guardian learns it before anything is recorded.
- `StatsRollup` (`DAILY_STATS`): brings the follower read models (daily statistics, quota
  audit, activity feed) up to the log.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

from cerniq_outreach.application.projections.base import iso
from cerniq_outreach.domain.contacts import InvalidContact, normalize_phone
from cerniq_outreach.domain.enums import PhoneStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from cerniq_outreach.application.channels import WhatsAppChannel
    from cerniq_outreach.application.jobs import JobPayload
    from cerniq_outreach.application.metrics import Counters
    from cerniq_outreach.application.phone_pool import PhonePool
    from cerniq_outreach.application.ports import Clock, ReadModelDatabase
    from cerniq_outreach.application.projector import Projector

_log = logging.getLogger(__name__)

BREACH_COUNTER: Final = "cerniq_review_sla_breaches_total"
"""Reviews whose SLA deadline passed while open, labelled tenant and priority."""
CONNECTED: Final = frozenset({"active", "connected", "online"})
"""TimelinesAI account statuses that mean the number can send (*unconfirmed* list)."""

_BREACHED = """
SELECT q.tenant_id, q.review_id, q.lead_id, q.priority, q.sla_due_at
FROM human_review_queue q
LEFT JOIN review_sla_alerts a ON a.tenant_id = q.tenant_id AND a.review_id = q.review_id
WHERE q.status = 'OPEN' AND q.sla_due_at <= :now AND a.review_id IS NULL
ORDER BY q.sla_due_at LIMIT 1000
"""
_ALERTED = """
INSERT INTO review_sla_alerts (tenant_id, review_id, alerted_at)
VALUES (:tenant, :review, :now) ON CONFLICT (tenant_id, review_id) DO NOTHING
"""


class SlaCheck:
    """Alerts, once each, on open reviews past their SLA deadline."""

    def __init__(self, read_models: ReadModelDatabase, clock: Clock, counters: Counters) -> None:
        self._db = read_models
        self._clock = clock
        self._counters = counters

    def handle(self, payload: JobPayload) -> None:
        """Run one check (the payload is ignored)."""
        del payload
        self.run()

    def run(self) -> int:
        """Alert on the breaches not alerted yet; return how many."""
        now = iso(self._clock.now())
        with self._db.transaction() as tx:
            rows = tx.fetchall(_BREACHED, {"now": now})
            for row in rows:
                tx.execute(
                    _ALERTED, {"tenant": row["tenant_id"], "review": row["review_id"], "now": now}
                )
        for row in rows:
            self._counters.inc(BREACH_COUNTER, tenant=row["tenant_id"], priority=row["priority"])
            _log.error(
                "review SLA breached",
                extra={
                    "tenant_id": row["tenant_id"],
                    "review_id": row["review_id"],
                    "lead_id": row["lead_id"],
                    "priority": row["priority"],
                },
            )
        return len(rows)


class PhoneHealth:
    """Records each pool phone's connection as the WhatsApp provider reports it."""

    def __init__(
        self,
        pool: PhonePool,
        whatsapp: WhatsAppChannel,
        *,
        link: Callable[[str], None] | None = None,
    ) -> None:
        """`link(number)`, when given, links each pool number first (the sandbox's accounts)."""
        self._pool = pool
        self._whatsapp = whatsapp
        self._link = link

    def handle(self, payload: JobPayload) -> None:
        """Run one round (the payload is ignored)."""
        del payload
        self.run()

    def run(self) -> int:
        """Check every phone of every tenant; return how many checks were recorded."""
        if self._link is not None:
            for tenant in self._pool.directory.tenants():
                for phone in self._pool.directory.phones(tenant):
                    self._link(phone.number)
        connected: dict[str, bool] = {}
        for account in self._whatsapp.accounts():
            try:
                connected[normalize_phone(account.phone)] = account.status.casefold() in CONNECTED
            except InvalidContact:
                continue
        recorded = 0
        for tenant in self._pool.directory.tenants():
            for phone in self._pool.directory.phones(tenant):
                if phone.status in (PhoneStatus.BANNED, PhoneStatus.QUARANTINE):
                    continue  # a person decides about those
                is_connected = connected.get(phone.number, False)
                if phone.connected is is_connected and is_connected:
                    continue  # nothing new to record for a healthy phone
                self._pool.record_health_check(
                    tenant,
                    phone.phone_id,
                    connected=is_connected,
                    detail=None if is_connected else "not connected at the provider",
                )
                recorded += 1
        return recorded


class StatsRollup:
    """Brings the follower projections up to the log.

    One catch-up at a time per process: a `Projector` keeps its last checkpoints in memory
    and is not made for two threads at once (processes exclude each other through the
    checkpoint rows). A rollup that finds another running skips: that one catches up.
    """

    def __init__(self, projector: Projector) -> None:
        self._projector = projector
        self._running = threading.Lock()

    def handle(self, payload: JobPayload) -> None:
        """Catch the follower projections up (the payload is ignored)."""
        del payload
        if not self._running.acquire(blocking=False):
            return
        try:
            self._projector.catch_up()
        finally:
            self._running.release()
