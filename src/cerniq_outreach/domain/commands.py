"""Commands: what someone asks a journey to do. Imperative names; events are their past tense.

Every command carries `command_id` and `at`. Event ids are derived from the command id, so a
retried command (same id) produces the same events and the store's idempotent append turns
the retry into a no-op. Provider events use the provider's own event id as command id.
`at` is the application clock's time (simulated in the demo).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    JourneyState,
    OptOutScope,
    Priority,
    ReplyTrigger,
    ReviewReason,
    ReviewResolution,
    SentimentLabel,
)
from cerniq_outreach.domain.events import Company
from cerniq_outreach.domain.review import SlaPolicy


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every command carries."""

    command_id: str
    at: datetime


class Enroll(Command, frozen=True, kw_only=True):
    """Start the journey of a lead in a cold sequence."""

    tenant_id: str
    lead_id: str
    sequence_id: str
    company: Company
    stop_on_reply: bool = True
    consents: tuple[ConsentRecord, ...] = ()
    tags: tuple[str, ...] = ()


class QueueMessage(Command, frozen=True, kw_only=True):
    """Put one outbound message in the outbox (quota already reserved by the caller).

    With `step` set it is an automated sequence step; without, a human's message.
    A WhatsApp message names its phone; the first one assigns the lead's sticky phone.
    """

    message_id: str
    channel: Channel
    content_hash: str
    sequence_id: str | None = None
    step: int | None = None
    template_id: str | None = None
    template_version: int | None = None
    quota_cost: int = 0
    phone_id: str | None = None


class ReassignPhone(Command, frozen=True, kw_only=True):
    """Move the lead to another WhatsApp number (its phone was banned): recorded, never silent."""

    phone_id: str
    reason: str


class RecordSent(Command, frozen=True, kw_only=True):
    """The provider accepted a queued message."""

    message_id: str
    provider: str
    external_id: str


class AttemptSend(Command, frozen=True, kw_only=True):
    """A worker is about to call the provider for a queued message (see `SendAttempted`)."""

    message_id: str


class CancelMessage(Command, frozen=True, kw_only=True):
    """A queued message will not go out (a rule closed the way before the send)."""

    message_id: str
    reason: str


class RecordDelivered(Command, frozen=True, kw_only=True):
    """Provider event: delivered."""

    message_id: str


class RecordRead(Command, frozen=True, kw_only=True):
    """Provider event: read (WhatsApp)."""

    message_id: str


class RecordOpened(Command, frozen=True, kw_only=True):
    """Provider event: email opened."""

    message_id: str


class RecordClicked(Command, frozen=True, kw_only=True):
    """Provider event: link clicked."""

    message_id: str


class RecordBounce(Command, frozen=True, kw_only=True):
    """Provider event: bounced."""

    message_id: str
    kind: BounceKind


class RecordFailure(Command, frozen=True, kw_only=True):
    """The provider refused the message; `permanent` failures (invalid number) are final."""

    message_id: str
    reason: str
    permanent: bool


class ReceiveReply(Command, frozen=True, kw_only=True):
    """The lead wrote back.

    `out_of_office_until` is set when the deterministic rules read an out-of-office
    autoresponder: the sequence then waits instead of stopping.
    """

    channel: Channel
    external_id: str
    text: str
    content_hash: str
    out_of_office_until: datetime | None = None


class ScoreSentiment(Command, frozen=True, kw_only=True):
    """Record the analyser's reading of the latest reply; it may open a review or opt out."""

    score: int
    label: SentimentLabel
    confidence: float
    triggers: frozenset[ReplyTrigger] = frozenset()
    sla: SlaPolicy = SlaPolicy()


class RequestReview(Command, frozen=True, kw_only=True):
    """Hand the journey to a human (manual flag, bounce, ...)."""

    reason: ReviewReason
    priority: Priority
    sla: SlaPolicy = SlaPolicy()


class ResolveReview(Command, frozen=True, kw_only=True):
    """A human closes a review item, possibly moving the journey on."""

    review_id: str
    resolution: ReviewResolution
    resolved_by: str


class OptOut(Command, frozen=True, kw_only=True):
    """The lead objects to a channel family or to everything."""

    scope: OptOutScope
    source: str


class Pause(Command, frozen=True, kw_only=True):
    """A human pauses the journey."""

    by: str
    reason: str = ""


class Resume(Command, frozen=True, kw_only=True):
    """A human resumes a paused journey (back to the state it was paused from)."""

    by: str


class TakeControl(Command, frozen=True, kw_only=True):
    """A human takes over the conversation; automation goes silent."""

    user: str


class ReleaseControl(Command, frozen=True, kw_only=True):
    """The human hands the conversation back to automation."""

    user: str


class Transition(Command, frozen=True, kw_only=True):
    """A human moves the journey (NEGOTIATION, CONVERTED, DEAD)."""

    to: JourneyState
    reason: str
    by: str


class StartSequence(Command, frozen=True, kw_only=True):
    """A human starts a warm sequence (after a reply, the only automation allowed)."""

    sequence_id: str
    by: str
    stop_on_reply: bool = True


class StopSequence(Command, frozen=True, kw_only=True):
    """Stop the running sequence without ending the journey.

    Another lead of the same company objected or answered badly: automation writes to the
    company no more, while this lead's journey stays open for a person.
    """

    reason: str


class ExhaustSequence(Command, frozen=True, kw_only=True):
    """The running sequence has no step left to send."""

    reason: str = "no steps left"


AnyCommand = (
    Enroll
    | QueueMessage
    | ReassignPhone
    | RecordSent
    | AttemptSend
    | CancelMessage
    | RecordDelivered
    | RecordRead
    | RecordOpened
    | RecordClicked
    | RecordBounce
    | RecordFailure
    | ReceiveReply
    | ScoreSentiment
    | RequestReview
    | ResolveReview
    | OptOut
    | Pause
    | Resume
    | TakeControl
    | ReleaseControl
    | Transition
    | StartSequence
    | StopSequence
    | ExhaustSequence
)
