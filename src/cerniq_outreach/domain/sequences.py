"""Sequences: numbered steps, each a channel, a template and a delay after the previous one.

`next_action` answers the scheduler's question for one journey: which step is due and
when, or why nothing is (waiting for the previous send, automation blocked, or nothing left).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.consent import ConsentPolicy, check_consent
from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.errors import SequenceError
from cerniq_outreach.domain.journey import Journey
from cerniq_outreach.domain.outbound import automation_refusal, channel_refusal

DEFAULT_EXHAUST_AFTER_HOURS = 5 * 24
"""A lead gets five days to answer the last step before its sequence ends without reply."""

AUTOMATED_CHANNELS = frozenset({Channel.WHATSAPP, Channel.EMAIL_COLD, Channel.EMAIL_WARM})


class SequenceStep(msgspec.Struct, frozen=True, kw_only=True):
    """One step: after `delay` from the previous step's send, send `template_id` on `channel`.

    `campaign_id` names the Instantly campaign a cold-email step hands the lead to.
    `only_if_engaged` sends the step only to a lead who read, opened or clicked an earlier
    message (the default sequence's warm email); others skip it.
    """

    number: int
    channel: Channel
    template_id: str
    delay_hours: int = 0
    delay_minutes: int = 0
    campaign_id: str | None = None
    only_if_engaged: bool = False

    @property
    def delay(self) -> timedelta:
        """The wait after the previous step (after enrolment, for the first)."""
        return timedelta(hours=self.delay_hours, minutes=self.delay_minutes)


class Sequence(msgspec.Struct, frozen=True, kw_only=True):
    """An ordered set of steps. A warm sequence is the only automation allowed after a reply."""

    sequence_id: str
    name: str
    steps: tuple[SequenceStep, ...]
    stop_on_reply: bool = True
    respect_business_hours: bool = True
    warm: bool = False
    exhaust_after_hours: int = DEFAULT_EXHAUST_AFTER_HOURS

    @property
    def exhaust_after(self) -> timedelta:
        """How long after the last step the lead has to answer before the sequence ends."""
        return timedelta(hours=self.exhaust_after_hours)

    def ordered(self) -> tuple[SequenceStep, ...]:
        """The steps by number."""
        return tuple(sorted(self.steps, key=lambda step: step.number))


def validate(sequence: Sequence) -> Sequence:
    """Return the sequence if it follows the rules, else raise `SequenceError`."""
    if not sequence.steps:
        raise SequenceError(f"sequence {sequence.sequence_id} has no steps")
    numbers = [step.number for step in sequence.steps]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise SequenceError(f"step numbers must be unique; repeated: {duplicates}")
    if sequence.exhaust_after_hours < 0:
        raise SequenceError("exhaust_after_hours cannot be negative")
    for step in sequence.steps:
        if step.number < 1:
            raise SequenceError(f"step numbers start at 1 (got {step.number})")
        if step.delay_hours < 0 or step.delay_minutes < 0:
            raise SequenceError(f"step {step.number}: delays cannot be negative")
        if step.channel not in AUTOMATED_CHANNELS:
            raise SequenceError(f"step {step.number}: {step.channel} is not an automated channel")
        if sequence.warm and step.channel is Channel.EMAIL_COLD:
            raise SequenceError(f"step {step.number}: a warm sequence sends no cold email")
    return sequence


class StepDue(msgspec.Struct, frozen=True, kw_only=True):
    """`step` should be queued at `due_at` (already inside business hours if required)."""

    step: SequenceStep
    due_at: datetime


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    """A step was queued and is not settled yet; nothing new until it is."""

    reason: str


class Blocked(msgspec.Struct, frozen=True, kw_only=True):
    """Automation may not write to this journey now (pause, review, human, not running)."""

    reason: str


class Exhausted(msgspec.Struct, frozen=True, kw_only=True):
    """No step is left that could reach the lead: the sequence ends at `at`.

    `at` leaves the lead time to answer the last message (`Sequence.exhaust_after`); a
    reply or an engagement before then changes the answer.
    """

    reason: str
    at: datetime


NextAction = StepDue | Waiting | Blocked | Exhausted


def next_action(
    sequence: Sequence,
    journey: Journey,
    hours: BusinessHours,
    consent: ConsentPolicy | None = None,
) -> NextAction:
    """What the scheduler should do next for this journey in this sequence.

    A step whose channel is closed for the lead (opt-out, dead address, a reply before a
    cold email, no lawful basis under `consent`, no engagement for `only_if_engaged`) is
    skipped: a later step may still reach the lead.
    """
    if not journey.sequence_active or journey.sequence_id != sequence.sequence_id:
        return Blocked(reason=f"sequence {sequence.sequence_id} is not running on this journey")
    blocked = automation_refusal(journey)
    if blocked is not None:
        return Blocked(reason=blocked)
    settled = _last_settled_step(sequence, journey)
    if isinstance(settled, Waiting):
        return settled
    last_number, anchor = settled
    if anchor is None:
        return Blocked(reason="the journey has no start time")
    for step in sequence.ordered():
        if step.number <= last_number:
            continue
        if step_refusal(step, journey, consent) is not None:
            continue  # that step cannot reach this lead: the next one may
        due = anchor + step.delay
        if journey.snoozed_until is not None and due < journey.snoozed_until:
            due = journey.snoozed_until
        if sequence.respect_business_hours:
            due = hours.next_open(due)
        return StepDue(step=step, due_at=due)
    return Exhausted(
        reason=f"no step after {last_number} can reach the lead",
        at=anchor + sequence.exhaust_after,
    )


def step_refusal(
    step: SequenceStep, journey: Journey, consent: ConsentPolicy | None = None
) -> str | None:
    """Why `step` cannot go to this lead (it is skipped), or None when it can."""
    refusal = channel_refusal(journey, step.channel, automated=True)
    if refusal is not None:
        return refusal
    if step.only_if_engaged and not journey.engaged:
        return f"step {step.number} goes only to leads who engaged"
    if consent is not None:
        refused = check_consent(consent, journey.consents, step.channel)
        if refused is not None:
            return refused.message
    return None


def _last_settled_step(
    sequence: Sequence, journey: Journey
) -> tuple[int, datetime | None] | Waiting:
    """The number and time of the last step done (0 and the start when none), or Waiting."""
    last_number = 0
    anchor = journey.sequence_started_at or journey.enrolled_at
    for step in sequence.ordered():
        message_id = journey.steps.get((sequence.sequence_id, step.number))
        if message_id is None:
            continue
        record = journey.messages[message_id]
        if record.pending:
            return Waiting(reason=f"step {step.number} is queued and not sent yet")
        last_number = step.number
        anchor = record.sent_at or record.queued_at
    return last_number, anchor
