"""The state of one lead's journey, folded from its events.

`evolve(state, event)` never raises: the log is history, and history is applied as written
(a decision that was legal when it was made stays applied). `replay` is `fold(evolve)`.
The state is immutable; `evolve` returns a new one (dicts inside are copied on write and
never mutated in place).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import reduce

import msgspec

from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import (
    TERMINAL_STATES,
    BounceKind,
    Channel,
    JourneyState,
    MessageStatus,
    OptOutScope,
    Priority,
    ReviewReason,
    SentimentLabel,
    opt_out_scope_of,
)
from cerniq_outreach.domain.events import (
    Company,
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
    SendAttempted,
    SentimentScored,
    SequenceSnoozed,
    SequenceStarted,
    SequenceStopped,
    StateChanged,
)

EMAIL_CHANNELS = frozenset({Channel.EMAIL_COLD, Channel.EMAIL_WARM})

_ENGAGEMENT = frozenset({"READ", "OPENED", "CLICKED"})

# How far a message got; a late "delivered" never demotes a "read".
_STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.FAILED: 1,
    MessageStatus.CANCELLED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.BOUNCED: 3,
    MessageStatus.DELIVERED: 3,
    MessageStatus.OPENED: 4,
    MessageStatus.READ: 4,
    MessageStatus.CLICKED: 5,
    MessageStatus.REPLIED: 6,
}


class MessageRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the journey knows of one outbound message."""

    message_id: str
    channel: Channel
    sequence_id: str | None
    step: int | None
    status: MessageStatus
    queued_at: datetime
    sent_at: datetime | None = None
    phone_id: str | None = None
    quota_cost: int = 0
    permanent_failure: bool = False
    facts: frozenset[str] = frozenset()  # provider facts recorded (delivered, read, ...)
    template_id: str | None = None
    template_version: int | None = None
    content_hash: str | None = None
    attempts: int = 0  # provider attempts begun (`SendAttempted`)
    attempted_at: datetime | None = None  # when the latest began

    @property
    def automated(self) -> bool:
        """A sequence step (not a human's message)."""
        return self.step is not None

    @property
    def pending(self) -> bool:
        """Queued, not yet handed to the provider, and not given up on."""
        return self.status is MessageStatus.QUEUED or (
            self.status is MessageStatus.FAILED and not self.permanent_failure
        )


class OpenReview(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A review item not yet resolved."""

    review_id: str
    reason: ReviewReason
    priority: Priority
    sla_due_at: datetime


# gc=False (here and above): states are rebuilt, never mutated, and hold no back references,
# so they cannot be part of a reference cycle; untracked, replay avoids collector passes.
class Journey(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Everything decisions need to know about one lead's journey."""

    tenant_id: str = ""
    lead_id: str = ""
    version: int = 0
    enrolled: bool = False
    enrolled_at: datetime | None = None
    stage: JourneyState = JourneyState.COLD
    paused_from: JourneyState | None = None
    company: Company | None = None
    sequence_id: str | None = None
    sequence_active: bool = False
    stop_on_reply: bool = True
    sequence_started_at: datetime | None = None
    snoozed_until: datetime | None = None
    phone_id: str | None = None
    whatsapp_contacted: bool = False
    messages: dict[str, MessageRecord] = msgspec.field(default_factory=dict)
    steps: dict[tuple[str, int], str] = msgspec.field(default_factory=dict)
    opted_out: frozenset[OptOutScope] = frozenset()
    whatsapp_invalid: bool = False
    email_invalid: bool = False
    controlled_by: str | None = None
    open_reviews: dict[str, OpenReview] = msgspec.field(default_factory=dict)
    resolved_reviews: frozenset[str] = frozenset()
    replied: bool = False
    last_reply_at: datetime | None = None
    last_contact_at: datetime | None = None
    sentiment_score: int | None = None
    sentiment_label: SentimentLabel | None = None
    consents: tuple[ConsentRecord, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        """CONVERTED and DEAD absorb: nothing moves a journey out of them."""
        return self.stage in TERMINAL_STATES

    @property
    def under_review(self) -> bool:
        """An unresolved review keeps automation away from the lead."""
        return bool(self.open_reviews)

    @property
    def engaged(self) -> bool:
        """The lead showed interest short of a reply: read, opened or clicked a message."""
        return any(m.facts & _ENGAGEMENT for m in self.messages.values())


def replay(events: Iterable[Event], state: Journey | None = None) -> Journey:
    """Fold events into a journey state (from empty, or from `state`)."""
    return reduce(evolve, events, state or Journey())


def evolve(state: Journey, event: Event) -> Journey:  # noqa: C901, PLR0911, PLR0912 - one arm per event type
    """Apply one event to the state. Never raises."""
    s = msgspec.structs.replace(state, version=state.version + 1)
    match event:
        case LeadEnrolled():
            return msgspec.structs.replace(
                s,
                tenant_id=event.tenant_id,
                lead_id=event.lead_id,
                enrolled=True,
                enrolled_at=event.occurred_at,
                company=event.company,
                consents=event.consents,
                tags=event.tags,
                sequence_id=event.sequence_id,
                sequence_active=True,
                stop_on_reply=event.stop_on_reply,
                sequence_started_at=event.occurred_at,
            )
        case PhoneAssigned():
            return msgspec.structs.replace(s, phone_id=event.phone_id)
        case MessageQueued():
            record = MessageRecord(
                message_id=event.message_id,
                channel=event.channel,
                sequence_id=event.sequence_id,
                step=event.step,
                status=MessageStatus.QUEUED,
                queued_at=event.occurred_at,
                phone_id=event.phone_id,
                quota_cost=event.quota_cost,
                template_id=event.template_id,
                template_version=event.template_version,
                content_hash=event.content_hash,
            )
            steps = s.steps
            if event.sequence_id is not None and event.step is not None:
                steps = {**steps, (event.sequence_id, event.step): event.message_id}
            return msgspec.structs.replace(
                s, messages={**s.messages, event.message_id: record}, steps=steps
            )
        case MessageSent():
            s = _update_message(
                s, event.message_id, status=MessageStatus.SENT, sent_at=event.occurred_at
            )
            return msgspec.structs.replace(
                s,
                last_contact_at=event.occurred_at,
                whatsapp_contacted=s.whatsapp_contacted or event.channel is Channel.WHATSAPP,
            )
        case MessageDelivered():
            return _record_fact(s, event.message_id, MessageStatus.DELIVERED)
        case MessageRead():
            return _record_fact(s, event.message_id, MessageStatus.READ)
        case MessageOpened():
            return _record_fact(s, event.message_id, MessageStatus.OPENED)
        case MessageClicked():
            return _record_fact(s, event.message_id, MessageStatus.CLICKED)
        case MessageBounced():
            s = _record_fact(
                s, event.message_id, MessageStatus.BOUNCED, fact=f"bounced:{event.kind}"
            )
            bounced = s.messages.get(event.message_id)
            if event.kind is BounceKind.HARD and bounced is not None:
                if bounced.channel in EMAIL_CHANNELS:
                    return msgspec.structs.replace(s, email_invalid=True)
                if bounced.channel is Channel.WHATSAPP:
                    return msgspec.structs.replace(s, whatsapp_invalid=True)
            return s
        case MessageFailed():
            s = _update_message(
                s,
                event.message_id,
                status=MessageStatus.FAILED,
                permanent_failure=event.permanent,
            )
            failed = s.messages.get(event.message_id)
            if event.permanent and failed is not None:
                if failed.channel is Channel.WHATSAPP:
                    return msgspec.structs.replace(s, whatsapp_invalid=True)
                if failed.channel in EMAIL_CHANNELS:
                    return msgspec.structs.replace(s, email_invalid=True)
            return s
        case SendAttempted():
            return _attempted(s, event)
        case MessageCancelled():
            return _update_message(s, event.message_id, status=MessageStatus.CANCELLED)
        case ReplyReceived():
            s = _mark_replied(s, event.channel)
            return msgspec.structs.replace(s, replied=True, last_reply_at=event.occurred_at)
        case SentimentScored():
            return msgspec.structs.replace(
                s, sentiment_score=event.score, sentiment_label=event.label
            )
        case ReviewRequested():
            review = OpenReview(
                review_id=event.review_id,
                reason=event.reason,
                priority=event.priority,
                sla_due_at=event.sla_due_at,
            )
            return msgspec.structs.replace(
                s, open_reviews={**s.open_reviews, event.review_id: review}
            )
        case ReviewResolved():
            reviews = {k: v for k, v in s.open_reviews.items() if k != event.review_id}
            return msgspec.structs.replace(
                s,
                open_reviews=reviews,
                resolved_reviews=s.resolved_reviews | {event.review_id},
            )
        case OptedOut():
            return msgspec.structs.replace(s, opted_out=s.opted_out | {event.channel})
        case StateChanged():
            paused_from = s.paused_from
            if event.to_state is JourneyState.PAUSED:
                paused_from = event.from_state
            elif event.from_state is JourneyState.PAUSED:
                paused_from = None
            return msgspec.structs.replace(s, stage=event.to_state, paused_from=paused_from)
        case SequenceStarted():
            return msgspec.structs.replace(
                s,
                sequence_id=event.sequence_id,
                sequence_active=True,
                stop_on_reply=event.stop_on_reply,
                sequence_started_at=event.occurred_at,
                snoozed_until=None,
            )
        case SequenceStopped():
            return msgspec.structs.replace(s, sequence_active=False, snoozed_until=None)
        case SequenceSnoozed():
            return msgspec.structs.replace(s, snoozed_until=event.until)
        case HumanTookControl():
            return msgspec.structs.replace(s, controlled_by=event.user)
        case HumanReleasedControl():
            return msgspec.structs.replace(s, controlled_by=None)
        case _:
            # An event type this fold does not use (added later, or read-model only).
            return s


def _attempted(s: Journey, event: SendAttempted) -> Journey:
    record = s.messages.get(event.message_id)
    if record is None:
        return s
    record = msgspec.structs.replace(record, attempts=event.attempt, attempted_at=event.occurred_at)
    return msgspec.structs.replace(s, messages={**s.messages, event.message_id: record})


def _update_message(
    s: Journey,
    message_id: str,
    *,
    status: MessageStatus,
    sent_at: datetime | None = None,
    permanent_failure: bool | None = None,
) -> Journey:
    record = s.messages.get(message_id)
    if record is None:
        return s
    changes: dict[str, object] = {"status": status}
    if sent_at is not None:
        changes["sent_at"] = sent_at
    if permanent_failure is not None:
        changes["permanent_failure"] = permanent_failure
    record = msgspec.structs.replace(record, **changes)
    return msgspec.structs.replace(s, messages={**s.messages, message_id: record})


def _record_fact(
    s: Journey, message_id: str, status: MessageStatus, *, fact: str | None = None
) -> Journey:
    record = s.messages.get(message_id)
    if record is None:
        return s
    facts = record.facts | {fact or status.value}
    if _STATUS_RANK[status] > _STATUS_RANK[record.status]:
        record = msgspec.structs.replace(record, status=status, facts=facts)
    else:
        record = msgspec.structs.replace(record, facts=facts)
    return msgspec.structs.replace(s, messages={**s.messages, message_id: record})


def _mark_replied(s: Journey, channel: Channel) -> Journey:
    """The latest sent message on the reply's channel family becomes REPLIED."""
    family = opt_out_scope_of(channel)
    candidates = [
        m
        for m in s.messages.values()
        if m.sent_at is not None and opt_out_scope_of(m.channel) == family
    ]
    if not candidates:
        return s
    latest = max(candidates, key=lambda m: m.sent_at or m.queued_at)
    return _record_fact(s, latest.message_id, MessageStatus.REPLIED)
