"""`decide(state, command) -> events`: what the rules make of a command.

A refused command raises a `DomainError` and produces nothing. An accepted one returns the
new events, which the caller appends at the state's version. Events are built one at a time
and folded as they are built, so later checks in the same decision see earlier effects
(an opt-out that leaves no channel then kills the journey, for instance).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from cerniq_outreach.domain import transitions
from cerniq_outreach.domain.commands import (
    AnyCommand,
    CancelMessage,
    Command,
    Enroll,
    ExhaustSequence,
    OptOut,
    Pause,
    QueueMessage,
    ReassignPhone,
    ReceiveReply,
    RecordBounce,
    RecordClicked,
    RecordDelivered,
    RecordFailure,
    RecordOpened,
    RecordRead,
    RecordSent,
    ReleaseControl,
    RequestReview,
    ResolveReview,
    Resume,
    ScoreSentiment,
    StartSequence,
    TakeControl,
    Transition,
)
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    JourneyState,
    MessageStatus,
    OptOutScope,
    ReplyTrigger,
    ReviewResolution,
)
from cerniq_outreach.domain.errors import (
    AlreadyEnrolled,
    ControlError,
    DuplicateMessage,
    IllegalTransition,
    InvalidCommand,
    NotEnrolled,
    OutboundRefused,
    ReviewError,
    SequenceError,
    UnknownMessage,
)
from cerniq_outreach.domain.events import (
    TEXT_PREVIEW_LIMIT,
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
)
from cerniq_outreach.domain.journey import (
    EMAIL_CHANNELS,
    Journey,
    MessageRecord,
    evolve,
    has_channel_left,
    outbound_refusal,
    whatsapp_cost,
)
from cerniq_outreach.domain.review import review_for_reply
from cerniq_outreach.domain.transitions import Cause

S = JourneyState

# Fixed namespace: event ids are uuid5(namespace, "<command id>/<index>"), stable forever.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-93a4-4d0e-9a37-0c7e0f5b8d21")

_CONTACTED = frozenset({S.COLD, S.CONTACTED_WA, S.CONTACTED_EMAIL})


def derive_id(command_id: str, index: int) -> str:
    """The id of the `index`-th thing a command creates; the same for every retry."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_id}/{index}"))


class _Decision:
    """Collects the events of one decision, folding each into the working state."""

    def __init__(self, state: Journey, command: Command, tenant_id: str, lead_id: str) -> None:
        self.state = state
        self.command = command
        self.tenant_id = tenant_id
        self.lead_id = lead_id
        self.events: list[Event] = []

    def emit(self, cls: type[Event], **fields: Any) -> None:  # noqa: ANN401 - fields vary by event type; the Struct validates them
        event = cls(
            event_id=derive_id(self.command.command_id, len(self.events)),
            tenant_id=self.tenant_id,
            lead_id=self.lead_id,
            occurred_at=self.command.at,
            **fields,
        )
        self.events.append(event)
        self.state = evolve(self.state, event)

    def move(self, target: JourneyState, cause: Cause, reason: str | None = None) -> None:
        """Change state through the table; `reason` overrides the cause's wording."""
        source = self.state.stage
        transitions.check(source, target, cause)
        self.emit(StateChanged, from_state=source, to_state=target, reason=reason or cause.value)

    def stop_sequence(self, reason: str) -> None:
        if self.state.sequence_active:
            self.emit(SequenceStopped, reason=reason)

    def end(self, cause: Cause, reason: str | None = None) -> None:
        """Move to DEAD (unless terminal already) and stop any running sequence."""
        self.stop_sequence(reason or cause.value)
        if not self.state.terminal:
            self.move(S.DEAD, cause, reason)


def decide(state: Journey, command: AnyCommand) -> list[Event]:
    """Return the events `command` produces from `state`, or raise a `DomainError`."""
    if isinstance(command, Enroll):
        return _enroll(state, command)
    if not state.enrolled:
        raise NotEnrolled(f"lead has no journey yet ({type(command).__name__})")
    d = _Decision(state, command, state.tenant_id, state.lead_id)
    handler = _HANDLERS[type(command)]
    handler(d, command)
    return d.events


def _enroll(state: Journey, c: Enroll) -> list[Event]:
    if state.enrolled:
        raise AlreadyEnrolled(f"lead {state.lead_id} is enrolled already")
    if not (c.company.phone or c.company.email):
        raise InvalidCommand("a lead needs a phone or an email")
    if not c.company.name.strip():
        raise InvalidCommand("company name is empty")
    d = _Decision(state, c, c.tenant_id, c.lead_id)
    d.emit(
        LeadEnrolled,
        sequence_id=c.sequence_id,
        company=c.company,
        stop_on_reply=c.stop_on_reply,
    )
    return d.events


def _queue(d: _Decision, c: QueueMessage) -> None:
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


def _reassign(d: _Decision, c: ReassignPhone) -> None:
    if d.state.phone_id == c.phone_id:
        raise InvalidCommand(f"the lead is on {c.phone_id} already")
    if not c.reason.strip():
        raise InvalidCommand("a phone reassignment says why")
    d.emit(PhoneAssigned, phone_id=c.phone_id, previous_phone_id=d.state.phone_id, reason=c.reason)


def _queued(d: _Decision, message_id: str) -> MessageRecord:
    """The journey's record of a message, or `UnknownMessage` if it was never queued."""
    record = d.state.messages.get(message_id)
    if record is None:
        raise UnknownMessage(f"message {message_id} was never queued")
    return record


def _sent(d: _Decision, c: RecordSent) -> None:
    record = _queued(d, c.message_id)
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


def _contact_move(d: _Decision, channel: Channel) -> None:
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


def _cancel(d: _Decision, c: CancelMessage) -> None:
    record = _queued(d, c.message_id)
    if record.status is MessageStatus.CANCELLED:
        return
    if not record.pending:
        raise InvalidCommand(f"message {c.message_id} is {record.status}: too late to cancel")
    d.emit(MessageCancelled, message_id=c.message_id, reason=c.reason)


def _engagement(d: _Decision, message_id: str, cls: type[Event], fact: str) -> None:
    record = _queued(d, message_id)
    if fact in record.facts:
        return  # the same fact twice adds nothing (redeliveries carry new provider ids)
    d.emit(cls, message_id=message_id)


def _bounce(d: _Decision, c: RecordBounce) -> None:
    record = _queued(d, c.message_id)
    if f"bounced:{c.kind}" in record.facts:
        return
    d.emit(MessageBounced, message_id=c.message_id, kind=c.kind)
    if c.kind is BounceKind.HARD:
        _after_address_lost(d, record.channel)


def _failure(d: _Decision, c: RecordFailure) -> None:
    record = _queued(d, c.message_id)
    if not record.pending:
        raise InvalidCommand(f"message {c.message_id} is {record.status}: it cannot fail now")
    d.emit(MessageFailed, message_id=c.message_id, reason=c.reason, permanent=c.permanent)
    if c.permanent:
        _after_address_lost(d, record.channel)


def _after_address_lost(d: _Decision, channel: Channel) -> None:
    """An address died: fall back to the other channel, or end the journey."""
    if d.state.terminal:
        return
    if not has_channel_left(d.state):
        d.end(Cause.HARD_BOUNCE)
        return
    if channel is Channel.WHATSAPP and d.state.stage is S.CONTACTED_WA:
        d.move(S.CONTACTED_EMAIL, Cause.WHATSAPP_INVALID)


def _reply(d: _Decision, c: ReceiveReply) -> None:
    d.emit(
        ReplyReceived,
        channel=c.channel,
        external_id=c.external_id,
        text_preview=c.text[:TEXT_PREVIEW_LIMIT],
        content_hash=c.content_hash,
    )
    s = d.state
    if s.terminal:
        return
    if c.out_of_office_until is not None:
        # An autoresponder is not a person answering: the sequence waits and goes on.
        if s.sequence_active and c.out_of_office_until > c.at:
            d.emit(SequenceSnoozed, until=c.out_of_office_until, reason="out of office")
        return
    if s.sequence_active and s.stop_on_reply:
        d.stop_sequence("reply received")
    if d.state.stage in _CONTACTED:
        d.move(S.WARM_REPLY, Cause.REPLY)


def _score(d: _Decision, c: ScoreSentiment) -> None:
    if not -100 <= c.score <= 100:  # noqa: PLR2004 - the documented score range
        raise InvalidCommand(f"sentiment score {c.score} is outside -100..100")
    if not 0.0 <= c.confidence <= 1.0:
        raise InvalidCommand(f"confidence {c.confidence} is outside 0..1")
    d.emit(
        SentimentScored,
        score=c.score,
        label=c.label,
        confidence=c.confidence,
        triggers=tuple(sorted(c.triggers)),
    )
    if ReplyTrigger.OPT_OUT in c.triggers and OptOutScope.ALL not in d.state.opted_out:
        d.emit(OptedOut, channel=OptOutScope.ALL, source="reply keyword")
    if ReplyTrigger.OPT_OUT in c.triggers:
        d.end(Cause.OPT_OUT)
    elif ReplyTrigger.COMPLAINT in c.triggers:
        d.end(Cause.COMPLAINT)
    ticket = review_for_reply(c.score, c.label, c.confidence, c.triggers)
    if ticket is not None:
        d.emit(
            ReviewRequested,
            review_id=derive_id(c.command_id, 1000),
            reason=ticket.reason,
            priority=ticket.priority,
            sla_due_at=c.sla.deadline(ticket.priority, c.at),
        )


def _request_review(d: _Decision, c: RequestReview) -> None:
    d.emit(
        ReviewRequested,
        review_id=derive_id(c.command_id, 1000),
        reason=c.reason,
        priority=c.priority,
        sla_due_at=c.sla.deadline(c.priority, c.at),
    )


_RESOLUTION_MOVES = {
    ReviewResolution.MOVED_TO_NEGOTIATION: (S.NEGOTIATION, Cause.HUMAN_INTEREST),
    ReviewResolution.CONVERTED: (S.CONVERTED, Cause.HUMAN_DEAL),
    ReviewResolution.MARKED_DEAD: (S.DEAD, Cause.HUMAN_DECISION),
}


def _resolve_review(d: _Decision, c: ResolveReview) -> None:
    if c.review_id in d.state.resolved_reviews:
        raise ReviewError(f"review {c.review_id} is resolved already")
    if c.review_id not in d.state.open_reviews:
        raise ReviewError(f"review {c.review_id} does not exist on this journey")
    d.emit(
        ReviewResolved, review_id=c.review_id, resolution=c.resolution, resolved_by=c.resolved_by
    )
    if c.resolution in _RESOLUTION_MOVES:
        target, cause = _RESOLUTION_MOVES[c.resolution]
        if target is S.DEAD:
            d.end(cause, f"review: {cause.value} by {c.resolved_by}")
        else:
            d.move(target, cause, f"review: {cause.value} by {c.resolved_by}")
    elif c.resolution is ReviewResolution.TAKEN_OVER and d.state.controlled_by is None:
        d.emit(HumanTookControl, user=c.resolved_by)
    elif c.resolution is ReviewResolution.HANDED_BACK and d.state.controlled_by is not None:
        d.emit(HumanReleasedControl, user=c.resolved_by)


def _opt_out(d: _Decision, c: OptOut) -> None:
    s = d.state
    if OptOutScope.ALL in s.opted_out or c.scope in s.opted_out:
        return  # already objected: nothing new to record
    d.emit(OptedOut, channel=c.scope, source=c.source)
    if c.scope is OptOutScope.ALL or not has_channel_left(d.state):
        d.end(Cause.OPT_OUT)


def _pause(d: _Decision, c: Pause) -> None:
    d.move(S.PAUSED, Cause.HUMAN_PAUSE, f"paused by {c.by}" + (f": {c.reason}" if c.reason else ""))


def _resume(d: _Decision, c: Resume) -> None:
    s = d.state
    if s.stage is not S.PAUSED or s.paused_from is None:
        raise IllegalTransition(f"only a PAUSED journey resumes (it is {s.stage})")
    d.move(s.paused_from, Cause.HUMAN_RESUME, f"resumed by {c.by}")


def _take_control(d: _Decision, c: TakeControl) -> None:
    if d.state.controlled_by is not None:
        raise ControlError(f"{d.state.controlled_by} controls the conversation already")
    if d.state.terminal:
        raise ControlError(f"the journey is {d.state.stage}")
    d.emit(HumanTookControl, user=c.user)


def _release_control(d: _Decision, c: ReleaseControl) -> None:
    if d.state.controlled_by is None:
        raise ControlError("nobody controls the conversation")
    d.emit(HumanReleasedControl, user=c.user)


_HUMAN_CAUSES = {
    S.NEGOTIATION: Cause.HUMAN_INTEREST,
    S.CONVERTED: Cause.HUMAN_DEAL,
}


def _transition(d: _Decision, c: Transition) -> None:
    cause = _HUMAN_CAUSES.get(c.to, Cause.HUMAN_DECISION)
    reason = f"{cause.value} by {c.by}" + (f": {c.reason}" if c.reason else "")
    transitions.check(d.state.stage, c.to, cause)
    if c.to in (S.DEAD, S.CONVERTED):
        d.stop_sequence(reason)
    d.move(c.to, cause, reason)


def _start_sequence(d: _Decision, c: StartSequence) -> None:
    s = d.state
    if s.terminal:
        raise SequenceError(f"the journey is {s.stage}")
    if s.sequence_active:
        raise SequenceError(f"sequence {s.sequence_id} is still running")
    if any(seq == c.sequence_id for seq, _ in s.steps):
        raise SequenceError(f"sequence {c.sequence_id} ran on this journey before")
    d.emit(
        SequenceStarted, sequence_id=c.sequence_id, started_by=c.by, stop_on_reply=c.stop_on_reply
    )


def _exhaust(d: _Decision, c: ExhaustSequence) -> None:
    s = d.state
    if not s.sequence_active:
        raise SequenceError("no sequence is running")
    if s.replied or s.stage not in _CONTACTED:
        # A warm sequence ending, or one that ends after a reply, leaves the journey alive.
        d.stop_sequence(f"sequence finished: {c.reason}")
    else:
        d.end(Cause.SEQUENCE_EXHAUSTED)


_HANDLERS: dict[type[Command], Callable[[_Decision, Any], None]] = {
    QueueMessage: _queue,
    ReassignPhone: _reassign,
    RecordSent: _sent,
    CancelMessage: _cancel,
    RecordDelivered: lambda d, c: _engagement(d, c.message_id, MessageDelivered, "DELIVERED"),
    RecordRead: lambda d, c: _engagement(d, c.message_id, MessageRead, "READ"),
    RecordOpened: lambda d, c: _engagement(d, c.message_id, MessageOpened, "OPENED"),
    RecordClicked: lambda d, c: _engagement(d, c.message_id, MessageClicked, "CLICKED"),
    RecordBounce: _bounce,
    RecordFailure: _failure,
    ReceiveReply: _reply,
    ScoreSentiment: _score,
    RequestReview: _request_review,
    ResolveReview: _resolve_review,
    OptOut: _opt_out,
    Pause: _pause,
    Resume: _resume,
    TakeControl: _take_control,
    ReleaseControl: _release_control,
    Transition: _transition,
    StartSequence: _start_sequence,
    ExhaustSequence: _exhaust,
}
