"""`activity_feed`: one line per event for the dashboard's recent-activity panel.

Follows the log. Idempotent (one row per global position, inserted once), and free of
personal data by design: a summary says what happened ("Reply received on WHATSAPP"), never
who it was or what they wrote, so erasure has nothing to scrub here.

The feed is the leads' activity (each line names its lead): phone-pool events are not on it.
"""

from __future__ import annotations

from datetime import UTC
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from cerniq_outreach.application.projections.base import iso
from cerniq_outreach.domain.events import (
    Event,
    HumanReleasedControl,
    HumanTookControl,
    LeadEnrolled,
    MessageBounced,
    MessageCancelled,
    MessageClicked,
    MessageDelivered,
    MessageFailed,
    MessageOpened,
    MessageQueued,
    MessageRead,
    MessageSent,
    OptedOut,
    PhoneAssigned,
    ReplyReceived,
    ReviewRequested,
    ReviewResolved,
    SentimentScored,
    SequenceSnoozed,
    SequenceStarted,
    SequenceStopped,
    StateChanged,
    event_type_name,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

TABLE = "activity_feed"

_INSERT = """
INSERT INTO activity_feed (global_position, tenant_id, lead_id, event_type, summary, actor,
    occurred_at)
VALUES (:position, :tenant, :lead, :event_type, :summary, :actor, :at)
ON CONFLICT (global_position) DO NOTHING
"""


def summary(event: Event) -> str:  # noqa: C901, PLR0911, PLR0912 - one arm per event type
    """One line, in English, saying what happened; never personal data."""
    match event:
        case LeadEnrolled():
            return f"Enrolled in sequence {event.sequence_id}"
        case PhoneAssigned(previous_phone_id=str(previous)):
            return f"Moved from WhatsApp number {previous} to {event.phone_id}: {event.reason}"
        case PhoneAssigned():
            return f"WhatsApp number {event.phone_id} assigned"
        case MessageQueued(step=int(step)):
            return f"{event.channel} message queued: step {step} of {event.sequence_id}"
        case MessageQueued():
            return f"Manual {event.channel} message queued"
        case MessageSent():
            return f"{event.channel} message sent via {event.provider}"
        case MessageDelivered():
            return "Message delivered"
        case MessageRead():
            return "Message read"
        case MessageOpened():
            return "Email opened"
        case MessageClicked():
            return "Link clicked"
        case MessageBounced():
            return f"Message bounced ({event.kind})"
        case MessageFailed():
            # The provider's reason is left out: it may quote the address it refused.
            return "Message failed for good" if event.permanent else "Message failed (retry)"
        case MessageCancelled():
            return "Queued message cancelled"
        case ReplyReceived():
            return f"Reply received on {event.channel}"
        case SentimentScored():
            triggers = f" [{', '.join(event.triggers)}]" if event.triggers else ""
            return f"Reply scored {event.label} ({event.score}){triggers}"
        case ReviewRequested():
            return f"{event.priority} review opened: {event.reason}"
        case ReviewResolved():
            return f"Review resolved: {event.resolution} by {event.resolved_by}"
        case OptedOut():
            return f"Opted out of {event.channel} ({event.source})"
        case StateChanged():
            return f"{event.from_state} -> {event.to_state}"
        case SequenceStarted():
            return f"Sequence {event.sequence_id} started by {event.started_by}"
        case SequenceStopped():
            return f"Sequence stopped: {event.reason}"
        case SequenceSnoozed():
            return f"Sequence waits until {event.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        case HumanTookControl():
            return f"{event.user} took over the conversation"
        case HumanReleasedControl():
            return f"{event.user} handed the conversation back"
        case _:
            return event_type_name(event)


class ActivityFeedProjection:
    """Writes one feed line per event (see module doc)."""

    name = "activity_feed"
    tables: tuple[str, ...] = (TABLE,)
    keys: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({TABLE: ("global_position",)})
    idempotent: ClassVar[bool] = True

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Add a journey event's line to its tenant's feed; phone events are not leads'."""
        event = record.event
        if not isinstance(event, Event):
            return
        tx.execute(
            _INSERT,
            {
                "position": record.global_position,
                "tenant": record.tenant_id,
                "lead": record.stream_id,
                "event_type": record.event_type,
                "summary": summary(event),
                "actor": record.metadata.actor,
                "at": iso(record.occurred_at),
            },
        )
