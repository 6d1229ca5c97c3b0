"""What a provider's webhook says, read into one `WebhookFact` (pure: no I/O, no clock).

`interpret(provider, body, event_id=...)` decodes a verified body, checks its shape, and
returns either the fact (with the provider's event identity, the dedupe key) or `Ignored`
(our own outbound echoes, event types that change no journey). A body of the wrong shape
raises `ShapeError` naming the field at fault; the HTTP layer answers 400 with it.

Event identity, per provider (`providers.md`):
- Resend: the `svix-id` header, the same on every retry of one event.
- TimelinesAI: the message uid. An inbound message is `received:<uid>` whatever the event
  type, because `message:new` and `message:received:new` both fire for one message when both
  are registered; a status report is `status:<uid>:<status>` (delivered, then read).
- Instantly: no event id exists; `(event_type, email_id or lead_email, timestamp)`.

`webhook_commands.commands_for` turns a fact into the journey commands of `domain.md`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final, TypeVar

import msgspec

from cerniq_outreach.domain.contacts import InvalidContact, normalize_email, normalize_phone
from cerniq_outreach.domain.enums import Channel

T = TypeVar("T")
_MISSING: Final = re.compile(r"Object missing required field `([^`]+)`")

MAX_IDENTITY: Final = 512
"""Longest event identity kept (the inbox key); a longer one is a malformed request."""


class Provider(StrEnum):
    """The providers whose webhooks we take (the path segment of `/webhooks/<provider>`)."""

    TIMELINESAI = "timelinesai"
    INSTANTLY = "instantly"
    RESEND = "resend"


class Fact(StrEnum):
    """What a provider reports about a lead's journey."""

    DELIVERED = "delivered"
    READ = "read"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED_HARD = "bounced_hard"
    BOUNCED_SOFT = "bounced_soft"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINT = "complaint"


MESSAGE_FACTS: Final = frozenset(
    {Fact.DELIVERED, Fact.READ, Fact.OPENED, Fact.CLICKED, Fact.BOUNCED_HARD, Fact.BOUNCED_SOFT}
)
"""Facts about one outbound message: they need its message id."""


class Locator(msgspec.Struct, frozen=True, kw_only=True):
    """What the event tells about where it belongs; `LeadLookup` turns it into a lead."""

    channel: Channel
    tenant_id: str | None = None
    lead_id: str | None = None
    message_id: str | None = None
    external_id: str | None = None  # the provider's id of our message (communication log)
    lead_phone: str | None = None  # E.164
    our_phone: str | None = None  # E.164 of the pool number that received it
    lead_email: str | None = None  # normalised


class WebhookFact(msgspec.Struct, frozen=True, kw_only=True):
    """One provider event, read: the job payload of the background processing."""

    provider: Provider
    identity: str
    fact: Fact
    locator: Locator
    text: str = ""
    reply_id: str | None = None  # the provider's id of an inbound message

    @property
    def command_id(self) -> str:
        """The id of the journey command this event becomes (stable across redeliveries)."""
        return f"webhook:{self.provider}:{self.identity}"


class Ignored(msgspec.Struct, frozen=True, kw_only=True):
    """A verified event that changes no journey (an echo of our own send, a status we skip)."""

    provider: Provider
    reason: str


class LeadRef(msgspec.Struct, frozen=True, kw_only=True):
    """The journey an event belongs to, and the message it is about (if it is about one)."""

    tenant_id: str
    lead_id: str
    message_id: str | None = None


class ShapeError(ValueError):
    """The body is not JSON, or not the provider's shape; `field` is a JSON path (`$.data`)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


# --- wire shapes (unknown fields allowed: providers add fields) ------------------------------


class _Tag(msgspec.Struct, frozen=True):
    name: str
    value: str


class _Bounce(msgspec.Struct, frozen=True):
    type: str = ""  # Permanent | Transient | Undetermined


class _ResendEnvelope(msgspec.Struct, frozen=True):
    type: str
    data: dict[str, Any]


class _ResendEmail(msgspec.Struct, frozen=True):
    email_id: str
    # The API takes tags as [{name, value}]; webhook events show them as an object.
    tags: dict[str, str] | list[_Tag] | None = None
    bounce: _Bounce | None = None


class _Phone(msgspec.Struct, frozen=True):
    phone: str | None = None


class _TimelinesMessage(msgspec.Struct, frozen=True):
    message_uid: str
    direction: str | None = None  # "sent" | "received"
    from_me: bool | None = None
    text: str | None = None
    status: str | None = None  # delivered | read on status reports (*unconfirmed* shape)
    sender: _Phone | None = None
    recipient: _Phone | None = None


class _TimelinesEnvelope(msgspec.Struct, frozen=True):
    event_type: str
    message: dict[str, Any] | None = None
    chat: _Phone | None = None
    whatsapp_account: _Phone | None = None


class _InstantlyEvent(msgspec.Struct, frozen=True):
    event_type: str
    timestamp: str | int | float  # ISO text in the documentation; epoch numbers accepted
    lead_email: str | None = None
    email_id: str | None = None
    campaign_id: str | None = None
    reply_text: str | None = None
    # Custom variables come back flat in the payload; the cold-email step sets these three.
    cerniq_tenant_id: str | None = None
    cerniq_lead_id: str | None = None
    cerniq_message_id: str | None = None


_RESEND_FACTS: Final = {
    "email.delivered": Fact.DELIVERED,
    "email.opened": Fact.OPENED,
    "email.clicked": Fact.CLICKED,
    "email.complained": Fact.COMPLAINT,
}
_INSTANTLY_FACTS: Final = {
    "email_opened": Fact.OPENED,
    "email_link_clicked": Fact.CLICKED,
    "link_clicked": Fact.CLICKED,
    "reply_received": Fact.REPLY,
    "auto_reply_received": Fact.AUTO_REPLY,
    "email_bounced": Fact.BOUNCED_HARD,
    "lead_unsubscribed": Fact.UNSUBSCRIBED,
}
_TIMELINES_STATUS: Final = {"delivered": Fact.DELIVERED, "read": Fact.READ}


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise _shape_error(exc, "$") from None
    except msgspec.DecodeError as exc:
        raise ShapeError("$", str(exc)) from None


def _convert(obj: object, kind: type[T], at: str) -> T:
    try:
        return msgspec.convert(obj, type=kind)
    except msgspec.ValidationError as exc:
        raise _shape_error(exc, at) from None


def _shape_error(exc: msgspec.ValidationError, at: str) -> ShapeError:
    """Keep the JSON path of msgspec's "Expected `str`, got `int` - at `$.x`" as the field.

    A missing field is named in the path too ("Object missing required field `x`").
    """
    message = str(exc)
    detail, _, path = message.rpartition(" - at `")
    if not detail:
        detail, path = message, "$`"
    field = at + path.rstrip("`").removeprefix("$")
    missing = _MISSING.match(detail)
    if missing:
        field += f".{missing.group(1)}"
    return ShapeError(field, detail)


def interpret(
    provider: Provider, body: bytes, *, event_id: str | None = None
) -> WebhookFact | Ignored:
    """Read a verified webhook body; `event_id` is Resend's `svix-id` header."""
    if provider is Provider.RESEND:
        return _resend(body, event_id)
    if provider is Provider.TIMELINESAI:
        return _timelinesai(body)
    return _instantly(body)


def _identity(value: str, field: str) -> str:
    if not value or len(value) > MAX_IDENTITY:
        raise ShapeError(field, f"event identity must be 1..{MAX_IDENTITY} characters")
    return value


def _resend(body: bytes, event_id: str | None) -> WebhookFact | Ignored:
    envelope = _decode(body, _ResendEnvelope)
    bounced = envelope.type == "email.bounced"
    fact = _RESEND_FACTS.get(envelope.type)
    if fact is None and not bounced:
        return Ignored(provider=Provider.RESEND, reason=f"event type {envelope.type}")
    data = _convert(envelope.data, _ResendEmail, "$.data")
    if bounced:
        # Resend: Permanent, Transient or Undetermined. Only a transient one may pass later;
        # an undetermined bounce is treated as hard, which errs on the side of not writing.
        transient = data.bounce is not None and data.bounce.type.lower() == "transient"
        fact = Fact.BOUNCED_SOFT if transient else Fact.BOUNCED_HARD
    assert fact is not None  # noqa: S101 - set above on every path that reaches here
    tags = _tags(data.tags)
    return WebhookFact(
        provider=Provider.RESEND,
        identity=_identity(event_id or "", "svix-id"),
        fact=fact,
        locator=Locator(
            channel=Channel.EMAIL_WARM,
            tenant_id=tags.get("tenant_id"),
            lead_id=tags.get("lead_id"),
            message_id=tags.get("message_id"),
            external_id=data.email_id,
        ),
    )


def _tags(tags: dict[str, str] | list[_Tag] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if isinstance(tags, dict):
        return tags
    return {tag.name: tag.value for tag in tags}


def _timelinesai(body: bytes) -> WebhookFact | Ignored:
    envelope = _decode(body, _TimelinesEnvelope)
    if not envelope.event_type.startswith("message:"):
        return Ignored(provider=Provider.TIMELINESAI, reason=f"event type {envelope.event_type}")
    if envelope.message is None:
        raise ShapeError("$.message", "a message event carries its message")
    message = _convert(envelope.message, _TimelinesMessage, "$.message")
    uid = message.message_uid
    outbound = (
        message.direction == "sent"
        or message.from_me is True
        or envelope.event_type == "message:sent:new"
    )
    if outbound:
        status = _TIMELINES_STATUS.get((message.status or "").lower())
        if status is None:
            # Route on direction, not only on event_type: our own send comes back as an echo.
            return Ignored(provider=Provider.TIMELINESAI, reason="own outbound message")
        return WebhookFact(
            provider=Provider.TIMELINESAI,
            identity=_identity(f"status:{uid}:{status.value}", "$.message.message_uid"),
            fact=status,
            locator=Locator(channel=Channel.WHATSAPP, external_id=uid),
        )
    raw_phone = _first_phone(message.sender, envelope.chat)
    if raw_phone is None:
        raise ShapeError("$.message.sender.phone", "an inbound message names its sender")
    try:
        lead_phone = normalize_phone(raw_phone)
    except InvalidContact as exc:
        raise ShapeError("$.message.sender.phone", str(exc)) from None
    our_raw = _first_phone(envelope.whatsapp_account, message.recipient)
    return WebhookFact(
        provider=Provider.TIMELINESAI,
        identity=_identity(f"received:{uid}", "$.message.message_uid"),
        fact=Fact.REPLY,
        locator=Locator(channel=Channel.WHATSAPP, lead_phone=lead_phone, our_phone=_phone(our_raw)),
        text=message.text or "",
        reply_id=uid,
    )


def _first_phone(*holders: _Phone | None) -> str | None:
    return next((h.phone for h in holders if h is not None and h.phone), None)


def _phone(raw: str | None) -> str | None:
    """Our pool number, best effort: it only narrows the lookup, so a bad one is dropped."""
    if not raw:
        return None
    try:
        return normalize_phone(raw)
    except InvalidContact:
        return None


def _instantly(body: bytes) -> WebhookFact | Ignored:
    event = _decode(body, _InstantlyEvent)
    fact = _INSTANTLY_FACTS.get(event.event_type)
    if fact is None:
        # email_sent included: MessageSent was recorded when the lead went to the campaign.
        return Ignored(provider=Provider.INSTANTLY, reason=f"event type {event.event_type}")
    if not event.lead_email:
        raise ShapeError("$.lead_email", "a lead event names the lead's address")
    try:
        email = normalize_email(event.lead_email)
    except InvalidContact as exc:
        raise ShapeError("$.lead_email", str(exc)) from None
    key = f"{event.event_type}:{event.email_id or email}:{event.timestamp}"
    return WebhookFact(
        provider=Provider.INSTANTLY,
        identity=_identity(key, "$.timestamp"),
        fact=fact,
        locator=Locator(
            channel=Channel.EMAIL_COLD,
            tenant_id=event.cerniq_tenant_id,
            lead_id=event.cerniq_lead_id,
            message_id=event.cerniq_message_id,
            lead_email=email,
        ),
        text=event.reply_text or "",
        reply_id=event.email_id,
    )
