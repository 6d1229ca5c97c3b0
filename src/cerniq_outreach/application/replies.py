"""The reply analysis job: a reply's text scored, and the journey told what it means.

`ReplyReceived` (from a webhook) is dispatched as an `ANALYSE_REPLY` job naming the event.
The job reads the reply from the journey's stream, asks the analyser, and runs
`ScoreSentiment`: the domain records the score and, from the label, confidence and
triggers, opts the lead out, ends the journey on a complaint, or opens a review with its
priority and SLA deadline. The command id derives from the reply event, so a redelivered
job records nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import msgspec

from cerniq_outreach.application.jobs import NonRetryable, read_payload
from cerniq_outreach.application.records import Metadata
from cerniq_outreach.domain.commands import ScoreSentiment
from cerniq_outreach.domain.decision import derive_id
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.domain.events import ReplyReceived
from cerniq_outreach.domain.review import SlaPolicy

if TYPE_CHECKING:
    from datetime import datetime

    from cerniq_outreach.application.jobs import JobPayload
    from cerniq_outreach.application.journeys import JourneyCommands
    from cerniq_outreach.application.ports import Clock, EventStore
    from cerniq_outreach.domain.reply_analysis import ReplyAnalysis

_log = logging.getLogger(__name__)
ANALYSER_ACTOR = "worker:analyse-reply"


class ReplyAnalyser(Protocol):
    """Reads a reply: label, score, confidence and triggers (offline rules or a model)."""

    def analyse(self, text: str, *, received_at: datetime) -> ReplyAnalysis:
        """The analysis of one reply text."""
        ...


class AnalyseJob(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of an analysis job: the reply event's ids."""

    tenant_id: str
    lead_id: str
    event_id: str


class ReplyAnalysisJob:
    """The `ANALYSE_REPLY` handler."""

    def __init__(
        self,
        *,
        store: EventStore,
        journeys: JourneyCommands,
        analyser: ReplyAnalyser,
        clock: Clock,
        sla_for: Callable[[str], SlaPolicy] = lambda _t: SlaPolicy(),
    ) -> None:
        self._store = store
        self._journeys = journeys
        self._analyser = analyser
        self._clock = clock
        self._sla_for = sla_for

    def handle(self, payload: JobPayload) -> None:
        """Score the reply the job names and record what it means; idempotent."""
        job = read_payload(payload, AnalyseJob)
        records = self._store.read_stream(job.tenant_id, job.lead_id)
        command_id = f"score/{job.event_id}"
        if any(r.event_id == derive_id(command_id, 0) for r in records):
            return  # scored before (a redelivered job): deciding again could differ
        reply = next((r.event for r in records if r.event_id == job.event_id), None)
        if not isinstance(reply, ReplyReceived):
            raise NonRetryable(f"event {job.event_id} is not a reply of lead {job.lead_id}")
        analysis = self._analyser.analyse(reply.text_preview, received_at=reply.occurred_at)
        command = ScoreSentiment(
            command_id=command_id,
            at=self._clock.now(),
            score=analysis.score,
            label=analysis.label,
            confidence=analysis.confidence,
            triggers=frozenset(analysis.triggers),
            sla=self._sla_for(job.tenant_id),
        )
        try:
            self._journeys.run(
                job.tenant_id,
                job.lead_id,
                [command],
                metadata=Metadata(actor=ANALYSER_ACTOR, causation_id=job.event_id),
            )
        except DomainError as exc:
            _log.warning("reply analysis refused", extra={"lead_id": job.lead_id, "code": exc.code})
            raise NonRetryable(str(exc)) from exc
