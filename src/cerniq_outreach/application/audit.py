"""A lead's journey explained event by event: what happened, and the state before and after.

The states come from folding the stream with `domain.journey.evolve`, the same function
decisions use, so the audit shows exactly what the engine believed at each step, not a
second interpretation of the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cerniq_outreach.domain.events import (
    BaseEvent,
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
    PhoneHealthChecked,
    PhoneRegistered,
    PhoneSettingsChanged,
    PhoneStatusChanged,
    ReplyReceived,
    ReviewRequested,
    ReviewResolved,
    SendAttempted,
    SentimentScored,
    SequenceSnoozed,
    SequenceStarted,
    SequenceStopped,
    StateChanged,
    event_type_name,
)
from cerniq_outreach.domain.journey import Journey, evolve

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cerniq_outreach.application.records import RecordedEvent

# A reply preview in a one-line summary: enough to recognise it, not the whole text.
_PREVIEW = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditStep:
    """One event of the journey with the state the engine held before and after it."""

    record: RecordedEvent
    summary: str
    before: Journey
    after: Journey


def audit_trail(records: Iterable[RecordedEvent]) -> list[AuditStep]:
    """Fold a stream's events in order, keeping each step's before and after state.

    Only journey events fold into a journey: a phone's events (which never share a lead's
    stream) are left out.
    """
    steps: list[AuditStep] = []
    state = Journey()
    for record in records:
        event = record.event
        if not isinstance(event, Event):
            continue
        after = evolve(state, event)
        steps.append(AuditStep(record=record, summary=summarize(event), before=state, after=after))
        state = after
    return steps


def state_view(state: Journey) -> dict[str, Any]:
    """The parts of a journey state an auditor reads, as plain JSON-ready data.

    Personal data (the company and its contact) is left out: the events show it, or show
    it erased, and a state dump is no place to copy it again.
    """
    return {
        "stage": str(state.stage),
        "paused_from": None if state.paused_from is None else str(state.paused_from),
        "sequence_id": state.sequence_id,
        "sequence_active": state.sequence_active,
        "snoozed_until": None if state.snoozed_until is None else state.snoozed_until.isoformat(),
        "phone_id": state.phone_id,
        "controlled_by": state.controlled_by,
        "open_reviews": sorted(state.open_reviews),
        "opted_out": sorted(str(scope) for scope in state.opted_out),
        "replied": state.replied,
        "sentiment": None
        if state.sentiment_label is None
        else f"{state.sentiment_label} {state.sentiment_score}",
        "messages": {m.message_id: str(m.status) for m in state.messages.values()},
        "whatsapp_invalid": state.whatsapp_invalid,
        "email_invalid": state.email_invalid,
    }


def state_changes(before: Journey, after: Journey) -> dict[str, tuple[Any, Any]]:
    """The fields of `state_view` an event changed: name -> (before, after)."""
    old, new = state_view(before), state_view(after)
    return {key: (old[key], new[key]) for key in new if old[key] != new[key]}


def summarize(event: BaseEvent) -> str:  # noqa: C901, PLR0911, PLR0912 - one arm per event type
    """One line saying what an event means, for people reading an audit."""
    if not isinstance(event, Event):
        return _summarize_phone(event)
    match event:
        case LeadEnrolled():
            return f"enrolled in sequence {event.sequence_id}: {event.company.name}"
        case PhoneAssigned():
            return f"phone {event.phone_id} assigned ({event.reason})"
        case MessageQueued():
            step = "manual" if event.step is None else f"step {event.step}"
            template = (
                "free text"
                if event.template_id is None
                else f"template {event.template_id} v{event.template_version}"
            )
            return (
                f"{event.channel} message {event.message_id} queued "
                f"({step}, {template}, quota cost {event.quota_cost})"
            )
        case MessageSent():
            return (
                f"{event.channel} message {event.message_id} sent via {event.provider} "
                f"({event.external_id})"
            )
        case MessageDelivered() | MessageRead() | MessageOpened() | MessageClicked():
            verb = event_type_name(event).removeprefix("Message").lower()
            return f"message {event.message_id} {verb}"
        case MessageBounced():
            return f"message {event.message_id} bounced ({event.kind})"
        case MessageFailed():
            how = "failed for good" if event.permanent else "failed (will retry)"
            return f"message {event.message_id} {how}: {event.reason}"
        case MessageCancelled():
            return f"message {event.message_id} cancelled: {event.reason}"
        case SendAttempted():
            return f"message {event.message_id}: provider attempt {event.attempt} begins"
        case ReplyReceived():
            text = event.text_preview
            preview = text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"
            return f"reply on {event.channel}: {preview!r}"
        case SentimentScored():
            triggers = f"; triggers {', '.join(event.triggers)}" if event.triggers else ""
            return (
                f"sentiment {event.label} {event.score:+d} "
                f"(confidence {event.confidence:.2f}{triggers})"
            )
        case ReviewRequested():
            return (
                f"{event.priority} review {event.review_id} requested: {event.reason}, "
                f"due {event.sla_due_at.isoformat()}"
            )
        case ReviewResolved():
            return f"review {event.review_id} resolved ({event.resolution}) by {event.resolved_by}"
        case OptedOut():
            return f"opted out of {event.channel} ({event.source})"
        case StateChanged():
            return f"{event.from_state} -> {event.to_state}: {event.reason}"
        case SequenceStarted():
            return f"sequence {event.sequence_id} started by {event.started_by}"
        case SequenceStopped():
            return f"sequence stopped: {event.reason}"
        case SequenceSnoozed():
            return f"sequence snoozed until {event.until.isoformat()}: {event.reason}"
        case HumanTookControl():
            return f"{event.user} took control"
        case HumanReleasedControl():
            return f"{event.user} released control"
        case _:
            return event_type_name(event)


def _summarize_phone(event: BaseEvent) -> str:
    """`summarize` for a phone-pool event."""
    match event:
        case PhoneRegistered():
            warmup = event.warmup_started.isoformat() if event.warmup_started else "none"
            return (
                f"number {event.number} added, {event.status}, limit {event.daily_limit} a day,"
                f" warm-up from {warmup}"
            )
        case PhoneStatusChanged():
            return f"{event.previous} -> {event.status}: {event.reason}"
        case PhoneSettingsChanged():
            warmup = event.warmup_started.isoformat() if event.warmup_started else "none"
            return (
                f"settings: label {event.label!r}, account {event.account_id!r},"
                f" limit {event.daily_limit} a day, warm-up from {warmup}"
            )
        case PhoneHealthChecked():
            found = ["connected" if event.connected else "disconnected"]
            if event.reputation is not None:
                found.append(f"reputation {event.reputation}")
            if event.ban_warning:
                found.append("ban warning")
            return "health check: " + ", ".join(found)
        case _:
            return event_type_name(event)
