"""The dispatcher: the log is the outbox; each `MessageQueued` becomes one send job.

`DispatchProjection` follows the global log like any projector (its checkpoint row is
`dispatcher`), and for each `MessageQueued` enqueues the send job of its channel with ids
only (tenant, lead, message). For each `ReplyReceived` it enqueues the reply analysis, and
for each opt-out or negative score the company-level stop (`application.company_stop`).

NO JOB WITHOUT AN EVENT: jobs are made only from what the log holds. NO EVENT WITHOUT A JOB:
the checkpoint moves past a batch only in the transaction that follows the enqueues, so a
dispatcher that dies in between enqueues the batch again when it restarts. A job may thus
be enqueued twice; the send worker is idempotent (a message with `MessageSent` is not sent
again, and a message whose attempt is in flight is checked with the provider first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from cerniq_outreach.application.jobs import (
    ANALYSE_REPLY,
    COMPANY_STOP,
    SEND_COLD_EMAIL,
    SEND_WARM_EMAIL,
    SEND_WHATSAPP,
)
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.domain.enums import Channel, SentimentLabel
from cerniq_outreach.domain.events import MessageQueued, OptedOut, ReplyReceived, SentimentScored

if TYPE_CHECKING:
    from cerniq_outreach.application.jobs import JobQueue
    from cerniq_outreach.application.ports import EventStore, ReadModelDatabase, SqlTx
    from cerniq_outreach.application.records import RecordedEvent

SEND_JOBS: Final = {
    Channel.WHATSAPP: SEND_WHATSAPP,
    Channel.EMAIL_COLD: SEND_COLD_EMAIL,
    Channel.EMAIL_WARM: SEND_WARM_EMAIL,
}
"""The send job of each channel the engine sends on."""


class DispatchProjection:
    """Enqueues the job each dispatchable event calls for (a projection with no tables)."""

    name = "dispatcher"
    tables: tuple[str, ...] = ()

    def __init__(self, queue: JobQueue, *, analyse_replies: bool = True) -> None:
        self._queue = queue
        self._analyse = analyse_replies
        self.enqueued = 0

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Enqueue the job for `record`, if it calls for one."""
        del tx  # nothing is written: the checkpoint is the projector's
        event = record.event
        if isinstance(event, MessageQueued):
            job = SEND_JOBS.get(event.channel)
            if job is None:
                return  # PHONE and MANUAL messages are a person's own doing
            payload = {
                "tenant_id": record.tenant_id,
                "lead_id": record.stream_id,
                "message_id": event.message_id,
            }
        elif isinstance(event, ReplyReceived) and self._analyse:
            job = ANALYSE_REPLY
            payload = {
                "tenant_id": record.tenant_id,
                "lead_id": record.stream_id,
                "event_id": record.event_id,
            }
        elif (reason := _company_stop_reason(event)) is not None:
            job = COMPANY_STOP
            payload = {
                "tenant_id": record.tenant_id,
                "lead_id": record.stream_id,
                "event_id": record.event_id,
                "reason": reason,
            }
        else:
            return
        self._queue.enqueue(job, payload)
        self.enqueued += 1


def _company_stop_reason(event: object) -> str | None:
    """Why this event stops outreach to the lead's company, if it does."""
    if isinstance(event, OptedOut):
        return f"opted out ({event.channel})"
    if isinstance(event, SentimentScored) and event.label is SentimentLabel.NEGATIVE:
        return "answered negatively"
    return None


def dispatcher(
    follower_store: EventStore,
    read_models: ReadModelDatabase,
    queue: JobQueue,
    *,
    analyse_replies: bool = True,
) -> Projector:
    """A projector that runs `DispatchProjection` (`run_once`, `catch_up`, `run_forever`)."""
    return Projector(
        follower_store,
        read_models,
        [DispatchProjection(queue, analyse_replies=analyse_replies)],
    )
