"""Decisions about outbound messages: queue, send, provider reports, failures, fallbacks."""

from __future__ import annotations

from cerniq_outreach.domain.commands import (
    AttemptSend,
    CancelMessage,
    QueueMessage,
    ReassignPhone,
    RecordBounce,
    RecordFailure,
    RecordSent,
)
from cerniq_outreach.domain.decision import Decision, S
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    MessageStatus,
)
from cerniq_outreach.domain.errors import (
    DuplicateMessage,
    InvalidCommand,
    OutboundRefused,
    UnknownMessage,
)
from cerniq_outreach.domain.events import (
    Event,
    MessageBounced,
    MessageCancelled,
    MessageFailed,
    MessageQueued,
    MessageSent,
    PhoneAssigned,
    SendAttempted,
)
from cerniq_outreach.domain.journey import EMAIL_CHANNELS, Journey, MessageRecord
from cerniq_outreach.domain.outbound import has_channel_left, outbound_refusal, whatsapp_cost
from cerniq_outreach.domain.transitions import Cause


def queue_message(d: Decision, c: QueueMessage) -> None:
    """Put a message in the outbox: may it go out, step and cost checks, sticky phone."""
    s = d.state
    automated = c.step is not None
    if (c.step is None) != (c.sequence_id is None):
        raise InvalidCommand("a sequence step needs both sequence_id and step")
    if c.message_id in s.messages:
        raise DuplicateMessage(f"message {c.message_id} is queued already")
    refusal = outbound_refusal(s, c.channel, automated=automated)
    if refusal is not None:
        raise OutboundRefused(refusal)
    if automated:
        _check_step(s, c)
    _check_cost(s, c)
    if c.channel is Channel.WHATSAPP:
        if c.phone_id is None:
            raise InvalidCommand("a WhatsApp message names its sending phone")
        if s.phone_id is None:
            d.emit(PhoneAssigned, phone_id=c.phone_id)
        elif s.phone_id != c.phone_id:
            raise OutboundRefused(f"the lead's phone is {s.phone_id} (sticky), not {c.phone_id}")
    elif c.phone_id is not None:
        raise InvalidCommand(f"{c.channel} does not send from a phone")
    d.emit(
        MessageQueued,
        message_id=c.message_id,
        channel=c.channel,
        sequence_id=c.sequence_id,
        step=c.step,
        template_id=c.template_id,
        template_version=c.template_version,
        content_hash=c.content_hash,
        quota_cost=c.quota_cost,
        phone_id=c.phone_id,
    )


def _check_step(s: Journey, c: QueueMessage) -> None:
    assert c.sequence_id is not None  # noqa: S101 - narrowed by the caller's check
    assert c.step is not None  # noqa: S101
    if not s.sequence_active or s.sequence_id != c.sequence_id:
        raise OutboundRefused(f"sequence {c.sequence_id} is not running on this journey")
    if s.snoozed_until is not None and c.at < s.snoozed_until:
        raise OutboundRefused(f"the sequence waits until {s.snoozed_until.isoformat()}")
    if (c.sequence_id, c.step) in s.steps:
        raise DuplicateMessage(f"step {c.step} of {c.sequence_id} is queued already")


def _check_cost(s: Journey, c: QueueMessage) -> None:
    expected = whatsapp_cost(s) if c.channel is Channel.WHATSAPP else 0
    if c.quota_cost != expected:
        raise InvalidCommand(
            f"quota cost of this {c.channel} message is {expected}, not {c.quota_cost}"
        )


def reassign_phone(d: Decision, c: ReassignPhone) -> None:
    """Move the lead to another phone, recording the old one and why."""
    if d.state.phone_id == c.phone_id:
        raise InvalidCommand(f"the lead is on {c.phone_id} already")
    if not c.reason.strip():
        raise InvalidCommand("a phone reassignment says why")
    d.emit(PhoneAssigned, phone_id=c.phone_id, previous_phone_id=d.state.phone_id, reason=c.reason)


def queued(d: Decision, message_id: str) -> MessageRecord:
    """The journey's record of a message, or `UnknownMessage` if it was never queued."""
    record = d.state.messages.get(message_id)
    if record is None:
        raise UnknownMessage(f"message {message_id} was never queued")
    return record


def record_sent(d: Decision, c: RecordSent) -> None:
    """Record the provider's acceptance once; a retry finds it recorded and adds nothing."""
    record = queued(d, c.message_id)
    if record.sent_at is not None:
        return  # a retried job finds the send recorded: one step, one message
    if not record.pending:
        raise OutboundRefused(f"message {c.message_id} is {record.status}: it may not be sent")
    refusal = outbound_refusal(d.state, record.channel, automated=record.automated)
    if refusal is not None:
        raise OutboundRefused(refusal)
    d.emit(
        MessageSent,
        message_id=c.message_id,
        channel=record.channel,
        phone_id=record.phone_id,
        quota_cost=record.quota_cost,
        provider=c.provider,
        external_id=c.external_id,
    )
    _contact_move(d, record.channel)


def _contact_move(d: Decision, channel: Channel) -> None:
    stage = d.state.stage
    if channel is Channel.WHATSAPP:
        if stage is S.COLD:
            d.move(S.CONTACTED_WA, Cause.WHATSAPP_SENT)
        elif stage is S.CONTACTED_EMAIL:
            d.move(S.CONTACTED_WA, Cause.MOVED_TO_WHATSAPP)
    elif channel in EMAIL_CHANNELS:
        if stage is S.COLD:
            d.move(S.CONTACTED_EMAIL, Cause.EMAIL_SENT)
        elif stage is S.CONTACTED_WA:
            d.move(S.CONTACTED_EMAIL, Cause.MOVED_TO_EMAIL)


def attempt_send(d: Decision, c: AttemptSend) -> None:
    """Mark the next provider attempt of a pending message (the worker's lock and trace)."""
    record = queued(d, c.message_id)
    if not record.pending:
        raise OutboundRefused(f"message {c.message_id} is {record.status}: it may not be sent")
    refusal = outbound_refusal(d.state, record.channel, automated=record.automated)
    if refusal is not None:
        raise OutboundRefused(refusal)
    d.emit(SendAttempted, message_id=c.message_id, attempt=record.attempts + 1)


def cancel_message(d: Decision, c: CancelMessage) -> None:
    """Give up a queued message before it is sent."""
    record = queued(d, c.message_id)
    if record.status is MessageStatus.CANCELLED:
        return
    if not record.pending:
        raise InvalidCommand(f"message {c.message_id} is {record.status}: too late to cancel")
    d.emit(MessageCancelled, message_id=c.message_id, reason=c.reason)


def record_engagement(d: Decision, message_id: str, cls: type[Event], fact: str) -> None:
    """Record delivered / read / opened / clicked once per message."""
    record = queued(d, message_id)
    if fact in record.facts:
        return  # the same fact twice adds nothing (redeliveries carry new provider ids)
    d.emit(cls, message_id=message_id)


def record_bounce(d: Decision, c: RecordBounce) -> None:
    """Record a bounce; a hard one loses the address (fallback or end)."""
    record = queued(d, c.message_id)
    if f"bounced:{c.kind}" in record.facts:
        return
    d.emit(MessageBounced, message_id=c.message_id, kind=c.kind)
    if c.kind is BounceKind.HARD:
        after_address_lost(d, record.channel)


def record_failure(d: Decision, c: RecordFailure) -> None:
    """Record a provider refusal; a permanent one loses the address."""
    record = queued(d, c.message_id)
    if not record.pending:
        raise InvalidCommand(f"message {c.message_id} is {record.status}: it cannot fail now")
    d.emit(MessageFailed, message_id=c.message_id, reason=c.reason, permanent=c.permanent)
    if c.permanent:
        after_address_lost(d, record.channel)


def after_address_lost(d: Decision, channel: Channel) -> None:
    """An address died: fall back to the other channel, or end the journey."""
    if d.state.terminal:
        return
    if not has_channel_left(d.state):
        d.end(Cause.HARD_BOUNCE)
        return
    if channel is Channel.WHATSAPP and d.state.stage is S.CONTACTED_WA:
        d.move(S.CONTACTED_EMAIL, Cause.WHATSAPP_INVALID)
