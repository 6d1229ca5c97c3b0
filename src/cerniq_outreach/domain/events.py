"""The event catalogue: everything that can happen to a lead's journey or to a phone.

Two families share the log, each in streams of its own: journey events (`Event`, one stream
per lead, the stream id is the lead id) and phone-pool events (`PhoneEvent`, one stream per
WhatsApp number, the stream id is `phone:<phone_id>`). `stream_of` says which stream an event
belongs to; the event store refuses an event appended to any other.

Events are frozen msgspec Structs in one tagged union. The tag (stored as `type`) is written
explicitly and never changes, even if a class is renamed. Schema evolution follows msgspec's
rules: a new field always gets a default, a field's type never changes; a breaking change
bumps the class's `SCHEMA_VERSION` and registers an upcaster in `codec.py`.

Unknown fields are tolerated on decode (never `forbid_unknown_fields` here): an old reader
must survive a newer writer's extra fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar

import msgspec

from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    JourneyState,
    OptOutScope,
    PhoneStatus,
    Priority,
    ReplyTrigger,
    ReviewReason,
    ReviewResolution,
    SentimentLabel,
)

TEXT_PREVIEW_LIMIT = 500

# Constraints checked whenever an event is decoded (stored data is validated on read).
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Score = Annotated[int, msgspec.Meta(ge=-100, le=100)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
QuotaCost = Annotated[int, msgspec.Meta(ge=0, le=1)]
Reputation = Annotated[int, msgspec.Meta(ge=0, le=100)]
# Only the sign is a property of the stored data; the ceiling (200) is a rule of the day,
# checked when a phone is registered or changed, so a later ceiling needs no new schema.
DailyLimit = Annotated[int, msgspec.Meta(ge=0)]

PHONE_STREAM_PREFIX = "phone:"
"""Stream ids of phones start with this; a lead id never does (the store refuses it)."""


class Company(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The company (and its contact person) a lead stands for; personal data lives here."""

    name: str
    fiscal_code: str | None = None
    county: str | None = None
    phone: str | None = None
    email: str | None = None
    contact_name: str | None = None


# gc=False: events are immutable leaves that never form reference cycles, so the cyclic
# garbage collector need not track them; replaying a million of them otherwise spends a
# third of its time in full collections.
class BaseEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Fields every stored event carries, of either family. `occurred_at` comes from the clock."""

    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str
    tenant_id: str
    occurred_at: AwareDatetime


class Event(BaseEvent, frozen=True, kw_only=True):
    """A journey event: something that happened to one lead (its stream is the lead id)."""

    lead_id: str


class LeadEnrolled(Event, frozen=True, kw_only=True, tag="LeadEnrolled"):
    """The journey starts: the lead joins a (cold) sequence."""

    sequence_id: str
    company: Company
    stop_on_reply: bool = True
    consents: tuple[ConsentRecord, ...] = ()
    tags: tuple[str, ...] = ()


class PhoneAssigned(Event, frozen=True, kw_only=True, tag="PhoneAssigned"):
    """The WhatsApp number that will write to this lead from now on (sticky)."""

    phone_id: str
    previous_phone_id: str | None = None
    reason: str = "first WhatsApp message"


class MessageQueued(Event, frozen=True, kw_only=True, tag="MessageQueued"):
    """An outbound message was decided and its quota reserved; the log is the outbox.

    A manual (human) message has no sequence and step, and a free-text one no template.
    """

    message_id: str
    channel: Channel
    sequence_id: str | None = None
    step: int | None = None
    template_id: str | None = None
    template_version: int | None = None
    content_hash: str
    quota_cost: QuotaCost = 0
    phone_id: str | None = None


class MessageSent(Event, frozen=True, kw_only=True, tag="MessageSent"):
    """The provider accepted the message (for EMAIL_COLD: the lead was handed to Instantly)."""

    message_id: str
    channel: Channel
    phone_id: str | None = None
    quota_cost: QuotaCost = 0
    provider: str
    external_id: str


class MessageDelivered(Event, frozen=True, kw_only=True, tag="MessageDelivered"):
    """The provider reports the message reached the recipient's device or mailbox."""

    message_id: str


class MessageRead(Event, frozen=True, kw_only=True, tag="MessageRead"):
    """WhatsApp read receipt."""

    message_id: str


class MessageOpened(Event, frozen=True, kw_only=True, tag="MessageOpened"):
    """An email was opened (tracking pixel)."""

    message_id: str


class MessageClicked(Event, frozen=True, kw_only=True, tag="MessageClicked"):
    """A link in an email was clicked."""

    message_id: str


class MessageBounced(Event, frozen=True, kw_only=True, tag="MessageBounced"):
    """The address refused the message; hard means for good."""

    message_id: str
    kind: BounceKind


class MessageFailed(Event, frozen=True, kw_only=True, tag="MessageFailed"):
    """The provider refused or lost the message; permanent failures are not retried."""

    message_id: str
    reason: str
    permanent: bool


class SendAttempted(Event, frozen=True, kw_only=True, tag="SendAttempted"):
    """A worker is about to hand the message to its provider (attempt `attempt`).

    Recorded before the provider call, so a worker that dies between the call and
    `MessageSent` leaves a trace: whoever picks the message up next asks the provider
    whether it went out before sending again. Appending it at the stream's version also
    makes two workers holding the same job exclude each other (one gets a conflict).
    """

    message_id: str
    attempt: int


class MessageCancelled(Event, frozen=True, kw_only=True, tag="MessageCancelled"):
    """A queued message will not be sent: between queueing and sending, a rule closed the way."""

    message_id: str
    reason: str


class ReplyReceived(Event, frozen=True, kw_only=True, tag="ReplyReceived"):
    """The lead wrote back; the preview is at most 500 characters."""

    channel: Channel
    external_id: str
    text_preview: Annotated[str, msgspec.Meta(max_length=TEXT_PREVIEW_LIMIT)]
    content_hash: str


class SentimentScored(Event, frozen=True, kw_only=True, tag="SentimentScored"):
    """The analyser's reading of the latest reply."""

    score: Score
    label: SentimentLabel
    confidence: Confidence
    triggers: tuple[ReplyTrigger, ...] = ()


class ReviewRequested(Event, frozen=True, kw_only=True, tag="ReviewRequested"):
    """A human must look at this journey before automation writes again."""

    review_id: str
    reason: ReviewReason
    priority: Priority
    sla_due_at: AwareDatetime


class ReviewResolved(Event, frozen=True, kw_only=True, tag="ReviewResolved"):
    """A human closed a review item."""

    review_id: str
    resolution: ReviewResolution
    resolved_by: str


class OptedOut(Event, frozen=True, kw_only=True, tag="OptedOut"):
    """The lead objected; nothing goes out on that channel family (or any) ever again."""

    channel: OptOutScope
    source: str


class StateChanged(Event, frozen=True, kw_only=True, tag="StateChanged"):
    """The journey moved between states, next to the event that caused it."""

    from_state: JourneyState
    to_state: JourneyState
    reason: str


class SequenceStarted(Event, frozen=True, kw_only=True, tag="SequenceStarted"):
    """A human started a (warm) sequence on the journey."""

    sequence_id: str
    started_by: str
    stop_on_reply: bool = True


class SequenceStopped(Event, frozen=True, kw_only=True, tag="SequenceStopped"):
    """The running sequence will send no further steps."""

    reason: str


class SequenceSnoozed(Event, frozen=True, kw_only=True, tag="SequenceSnoozed"):
    """An out-of-office reply: the sequence waits until `until`, then goes on."""

    until: AwareDatetime
    reason: str


class HumanTookControl(Event, frozen=True, kw_only=True, tag="HumanTookControl"):
    """A person owns the conversation; automation stays silent."""

    user: str


class HumanReleasedControl(Event, frozen=True, kw_only=True, tag="HumanReleasedControl"):
    """The person handed the conversation back to automation."""

    user: str


class PhoneEvent(BaseEvent, frozen=True, kw_only=True):
    """A phone-pool event: something that happened to one WhatsApp number of the tenant.

    Its stream is `phone:<phone_id>`. A phone's number, label and account are business data
    of the tenant, not personal data of a data subject: nothing here is ever sealed.
    """

    phone_id: str


class PhoneRegistered(PhoneEvent, frozen=True, kw_only=True, tag="PhoneRegistered"):
    """A WhatsApp number joined the tenant's pool (`number` is E.164).

    `warmup_started` is day 1 of its warm-up ramp; None means fully warmed already.
    """

    number: str
    label: str | None = None
    account_id: str | None = None
    daily_limit: DailyLimit
    warmup_started: date | None = None
    status: PhoneStatus
    by: str | None = None


class PhoneStatusChanged(PhoneEvent, frozen=True, kw_only=True, tag="PhoneStatusChanged"):
    """The number's status moved; only ACTIVE sends. `by` is None when the engine decided."""

    status: PhoneStatus
    previous: PhoneStatus
    reason: str
    by: str | None = None


class PhoneSettingsChanged(PhoneEvent, frozen=True, kw_only=True, tag="PhoneSettingsChanged"):
    """The number's settings now are these (all four, whichever of them changed)."""

    label: str | None = None
    account_id: str | None = None
    daily_limit: DailyLimit
    warmup_started: date | None = None
    by: str | None = None


class PhoneHealthChecked(PhoneEvent, frozen=True, kw_only=True, tag="PhoneHealthChecked"):
    """What a health check of the number found (at `occurred_at`).

    `reputation` is the provider's 0-100 quality score when it gives one; `detail` its
    own words about the account's state.
    """

    connected: bool
    reputation: Reputation | None = None
    ban_warning: bool = False
    detail: str | None = None


AnyEvent = (
    LeadEnrolled
    | PhoneAssigned
    | MessageQueued
    | MessageSent
    | MessageDelivered
    | MessageRead
    | MessageOpened
    | MessageClicked
    | MessageBounced
    | MessageFailed
    | MessageCancelled
    | SendAttempted
    | ReplyReceived
    | SentimentScored
    | ReviewRequested
    | ReviewResolved
    | OptedOut
    | StateChanged
    | SequenceStarted
    | SequenceStopped
    | SequenceSnoozed
    | HumanTookControl
    | HumanReleasedControl
    | PhoneRegistered
    | PhoneStatusChanged
    | PhoneSettingsChanged
    | PhoneHealthChecked
)

EVENT_TYPES: tuple[type[BaseEvent], ...] = AnyEvent.__args__

EVENT_CLASSES: dict[str, type[BaseEvent]] = {
    str(cls.__struct_config__.tag): cls for cls in EVENT_TYPES
}


def event_type_name(event: BaseEvent) -> str:
    """The stable tag of an event, as stored in the log's `event_type` column."""
    return str(type(event).__struct_config__.tag)


def phone_stream(phone_id: str) -> str:
    """The stream id of a phone's events."""
    return PHONE_STREAM_PREFIX + phone_id


def stream_of(event: BaseEvent) -> str:
    """The stream an event belongs to: its lead's id, or `phone:<phone_id>` for a phone.

    Raises:
        TypeError: `event` is of neither family (a programming error).
    """
    if isinstance(event, Event):
        return event.lead_id
    if isinstance(event, PhoneEvent):
        return phone_stream(event.phone_id)
    raise TypeError(f"{type(event).__name__} belongs to no stream family")
