"""`decide(state, command) -> events`: what the rules make of a command.

A refused command raises a `DomainError` and produces nothing. An accepted one returns the
new events, which the caller appends at the state's version. Events are built one at a time
and folded as they are built, so later checks in the same decision see earlier effects
(an opt-out that leaves no channel then kills the journey, for instance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cerniq_outreach.domain import transitions
from cerniq_outreach.domain.commands import (
    AnyCommand,
    AttemptSend,
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
    StopSequence,
    TakeControl,
    Transition,
)
from cerniq_outreach.domain.decide_messages import (
    attempt_send,
    cancel_message,
    queue_message,
    reassign_phone,
    record_bounce,
    record_engagement,
    record_failure,
    record_sent,
)
from cerniq_outreach.domain.decision import CONTACTED, Decision, S, derive_id
from cerniq_outreach.domain.enums import (
    OptOutScope,
    ReplyTrigger,
    ReviewResolution,
)
from cerniq_outreach.domain.errors import (
    AlreadyEnrolled,
    ControlError,
    IllegalTransition,
    InvalidCommand,
    NotEnrolled,
    ReviewError,
    SequenceError,
)
from cerniq_outreach.domain.events import (
    TEXT_PREVIEW_LIMIT,
    Event,
    HumanReleasedControl,
    HumanTookControl,
    LeadEnrolled,
    MessageClicked,
    MessageDelivered,
    MessageOpened,
    MessageRead,
    OptedOut,
    ReplyReceived,
    ReviewRequested,
    ReviewResolved,
    SentimentScored,
    SequenceSnoozed,
    SequenceStarted,
)
from cerniq_outreach.domain.journey import Journey
from cerniq_outreach.domain.outbound import has_channel_left
from cerniq_outreach.domain.review import review_for_reply
from cerniq_outreach.domain.transitions import Cause


def decide(state: Journey, command: AnyCommand) -> list[Event]:
    """Return the events `command` produces from `state`, or raise a `DomainError`."""
    if isinstance(command, Enroll):
        return _enroll(state, command)
    if not state.enrolled:
        raise NotEnrolled(f"lead has no journey yet ({type(command).__name__})")
    d = Decision(state, command, state.tenant_id, state.lead_id)
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
    d = Decision(state, c, c.tenant_id, c.lead_id)
    d.emit(
        LeadEnrolled,
        sequence_id=c.sequence_id,
        company=c.company,
        stop_on_reply=c.stop_on_reply,
        consents=c.consents,
        tags=c.tags,
    )
    return d.events


def _reply(d: Decision, c: ReceiveReply) -> None:
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
    if d.state.stage in CONTACTED:
        d.move(S.WARM_REPLY, Cause.REPLY)


def _score(d: Decision, c: ScoreSentiment) -> None:
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


def _request_review(d: Decision, c: RequestReview) -> None:
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


def _resolve_review(d: Decision, c: ResolveReview) -> None:
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


def _opt_out(d: Decision, c: OptOut) -> None:
    s = d.state
    if OptOutScope.ALL in s.opted_out or c.scope in s.opted_out:
        return  # already objected: nothing new to record
    d.emit(OptedOut, channel=c.scope, source=c.source)
    if c.scope is OptOutScope.ALL or not has_channel_left(d.state):
        d.end(Cause.OPT_OUT)


def _pause(d: Decision, c: Pause) -> None:
    d.move(S.PAUSED, Cause.HUMAN_PAUSE, f"paused by {c.by}" + (f": {c.reason}" if c.reason else ""))


def _resume(d: Decision, c: Resume) -> None:
    s = d.state
    if s.stage is not S.PAUSED or s.paused_from is None:
        raise IllegalTransition(f"only a PAUSED journey resumes (it is {s.stage})")
    d.move(s.paused_from, Cause.HUMAN_RESUME, f"resumed by {c.by}")


def _take_control(d: Decision, c: TakeControl) -> None:
    if d.state.controlled_by is not None:
        raise ControlError(f"{d.state.controlled_by} controls the conversation already")
    if d.state.terminal:
        raise ControlError(f"the journey is {d.state.stage}")
    d.emit(HumanTookControl, user=c.user)


def _release_control(d: Decision, c: ReleaseControl) -> None:
    if d.state.controlled_by is None:
        raise ControlError("nobody controls the conversation")
    d.emit(HumanReleasedControl, user=c.user)


_HUMAN_CAUSES = {
    S.NEGOTIATION: Cause.HUMAN_INTEREST,
    S.CONVERTED: Cause.HUMAN_DEAL,
}


def _transition(d: Decision, c: Transition) -> None:
    cause = _HUMAN_CAUSES.get(c.to, Cause.HUMAN_DECISION)
    reason = f"{cause.value} by {c.by}" + (f": {c.reason}" if c.reason else "")
    transitions.check(d.state.stage, c.to, cause)
    if c.to in (S.DEAD, S.CONVERTED):
        d.stop_sequence(reason)
    d.move(c.to, cause, reason)


def _start_sequence(d: Decision, c: StartSequence) -> None:
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


def _stop(d: Decision, c: StopSequence) -> None:
    if not c.reason.strip():
        raise InvalidCommand("a stopped sequence says why")
    d.stop_sequence(c.reason)  # nothing to record when no sequence runs


def _exhaust(d: Decision, c: ExhaustSequence) -> None:
    s = d.state
    if not s.sequence_active:
        raise SequenceError("no sequence is running")
    if s.replied or s.stage not in CONTACTED:
        # A warm sequence ending, or one that ends after a reply, leaves the journey alive.
        d.stop_sequence(f"sequence finished: {c.reason}")
    else:
        d.end(Cause.SEQUENCE_EXHAUSTED)


_HANDLERS: dict[type[Command], Callable[[Decision, Any], None]] = {
    QueueMessage: queue_message,
    ReassignPhone: reassign_phone,
    RecordSent: record_sent,
    AttemptSend: attempt_send,
    CancelMessage: cancel_message,
    RecordDelivered: lambda d, c: record_engagement(d, c.message_id, MessageDelivered, "DELIVERED"),
    RecordRead: lambda d, c: record_engagement(d, c.message_id, MessageRead, "READ"),
    RecordOpened: lambda d, c: record_engagement(d, c.message_id, MessageOpened, "OPENED"),
    RecordClicked: lambda d, c: record_engagement(d, c.message_id, MessageClicked, "CLICKED"),
    RecordBounce: record_bounce,
    RecordFailure: record_failure,
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
    StopSequence: _stop,
    ExhaustSequence: _exhaust,
}
