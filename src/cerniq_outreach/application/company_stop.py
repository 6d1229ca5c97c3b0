"""Company-level stop: one person's objection or bad answer stops outreach to the company.

domain.md: "A negative reply or opt-out from one person can stop outreach to the whole
company (tenant setting, on by default)." The dispatcher enqueues `COMPANY_STOP` for every
`OptedOut` and every negative `SentimentScored`; this job finds the tenant's other leads of
the same company — by fiscal code (CUI), else by company name — and stops their running
sequences (`StopSequence`). Their journeys stay open: a person may still write, and a warm
sequence may still be started by hand. Command ids derive from the triggering event, so a
redelivered job stops nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from cerniq_outreach.application.jobs import read_payload
from cerniq_outreach.application.projections.search import search_key, search_pattern
from cerniq_outreach.application.records import Metadata
from cerniq_outreach.domain.commands import StopSequence
from cerniq_outreach.domain.errors import DomainError

if TYPE_CHECKING:
    from cerniq_outreach.application.jobs import JobPayload
    from cerniq_outreach.application.journeys import JourneyCommands
    from cerniq_outreach.application.ports import Clock, ReadModelDatabase

_log = logging.getLogger(__name__)
ACTOR = "worker:company-stop"

_BY_FISCAL_CODE = """
SELECT lead_id FROM gold_lead_journey
WHERE tenant_id = :tenant AND fiscal_code = :fiscal AND lead_id <> :lead AND sequence_active = 1
"""
# Names match folded (case and diacritics aside, as leads are typed both ways): the
# search column narrows the candidates, an exact comparison of folded names decides.
_BY_NAME = r"""
SELECT lead_id, company_name FROM gold_lead_journey
WHERE tenant_id = :tenant AND search_text LIKE :pattern ESCAPE '\' AND lead_id <> :lead
    AND sequence_active = 1 AND fiscal_code IS NULL
"""


class CompanyStopJob(msgspec.Struct, frozen=True, kw_only=True):
    """The payload: the lead whose event triggers the stop, and that event."""

    tenant_id: str
    lead_id: str
    event_id: str
    reason: str


class CompanyStop:
    """The `COMPANY_STOP` handler.

    Args:
        journeys: runs `StopSequence` on each sibling lead.
        read_models: where the tenant's leads are looked up (`gold_lead_journey`).
        clock: the time of the stops.
        enabled_for: whether a tenant wants company-level stops (on by default; tenants
            choose with issue #8's tenant settings).
    """

    def __init__(
        self,
        journeys: JourneyCommands,
        read_models: ReadModelDatabase,
        clock: Clock,
        *,
        enabled_for: Callable[[str], bool] = lambda _tenant: True,
    ) -> None:
        self._journeys = journeys
        self._db = read_models
        self._clock = clock
        self._enabled_for = enabled_for

    def handle(self, payload: JobPayload) -> None:
        """Stop the company's other leads' sequences; idempotent."""
        job = read_payload(payload, CompanyStopJob)
        if not self._enabled_for(job.tenant_id):
            return
        for sibling in self.siblings(job.tenant_id, job.lead_id):
            command = StopSequence(
                command_id=f"company-stop/{job.event_id}/{sibling}",
                at=self._clock.now(),
                reason=f"company stop: another lead of the company {job.reason}",
            )
            try:
                self._journeys.run(
                    job.tenant_id,
                    sibling,
                    [command],
                    metadata=Metadata(actor=ACTOR, causation_id=job.event_id),
                )
            except DomainError as exc:
                _log.info("company stop skipped", extra={"lead_id": sibling, "code": exc.code})

    def siblings(self, tenant_id: str, lead_id: str) -> list[str]:
        """The tenant's other leads of the same company whose sequence still runs."""
        company = self._journeys.load(tenant_id, lead_id).company
        if company is None:
            return []
        params = {"tenant": tenant_id, "lead": lead_id}
        with self._db.transaction(tenant_id) as tx:
            if company.fiscal_code:
                rows = tx.fetchall(_BY_FISCAL_CODE, {**params, "fiscal": company.fiscal_code})
                return sorted(row["lead_id"] for row in rows)
            rows = tx.fetchall(_BY_NAME, {**params, "pattern": search_pattern(company.name)})
        name = search_key(company.name)
        return sorted(r["lead_id"] for r in rows if search_key(r["company_name"]) == name)
