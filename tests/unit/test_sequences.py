"""Sequence definitions and the scheduler's next step for a journey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import Channel, OptOutScope
from cerniq_outreach.domain.errors import SequenceError
from cerniq_outreach.domain.events import Company
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.domain.sequences import (
    Blocked,
    Exhausted,
    Sequence,
    SequenceStep,
    StepDue,
    Waiting,
    next_action,
    validate,
)

HOURS = BusinessHours()
MONDAY_10 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 10:00 Bucharest (EET, UTC+2)

SEQ = Sequence(
    sequence_id="cold",
    name="Default",
    steps=(
        SequenceStep(number=1, channel=Channel.WHATSAPP, template_id="wa1"),
        SequenceStep(number=2, channel=Channel.WHATSAPP, template_id="wa2", delay_hours=48),
        SequenceStep(number=3, channel=Channel.EMAIL_COLD, template_id="em1", delay_hours=72),
    ),
)


def enrolled(company: Company | None = None) -> Journey:
    cmd = c.Enroll(
        command_id="e",
        at=MONDAY_10,
        tenant_id="t",
        lead_id="l",
        sequence_id="cold",
        company=company or Company(name="Agro", phone="+40722123456", email="a@agro.ro"),
    )
    return replay(decide(Journey(), cmd))


def run(state: Journey, command) -> Journey:
    return replay(decide(state, command), state)


def test_step_numbers_must_be_unique():
    """Two steps with one number are refused."""
    dup = Sequence(
        sequence_id="s",
        name="s",
        steps=(
            SequenceStep(number=1, channel=Channel.WHATSAPP, template_id="a"),
            SequenceStep(number=1, channel=Channel.EMAIL_COLD, template_id="b"),
        ),
    )
    with pytest.raises(SequenceError, match="unique"):
        validate(dup)


@pytest.mark.parametrize(
    ("step", "match"),
    [
        (
            SequenceStep(number=1, channel=Channel.WHATSAPP, template_id="a", delay_hours=-1),
            "negative",
        ),
        (SequenceStep(number=0, channel=Channel.WHATSAPP, template_id="a"), "start at 1"),
        (SequenceStep(number=1, channel=Channel.MANUAL, template_id="a"), "automated"),
    ],
)
def test_invalid_steps_are_refused(step, match):
    """Negative delays, step 0 and human channels are not valid steps."""
    with pytest.raises(SequenceError, match=match):
        validate(Sequence(sequence_id="s", name="s", steps=(step,)))


def test_warm_sequence_sends_no_cold_email():
    """A warm sequence (the only automation after a reply) may not contain cold email."""
    warm = Sequence(
        sequence_id="w",
        name="w",
        warm=True,
        steps=(SequenceStep(number=1, channel=Channel.EMAIL_COLD, template_id="a"),),
    )
    with pytest.raises(SequenceError, match="warm"):
        validate(warm)


def test_first_step_is_due_at_enrolment_inside_business_hours():
    """The first step is due right away when the window is open."""
    action = next_action(SEQ, enrolled(), HOURS)
    assert action == StepDue(step=SEQ.steps[0], due_at=MONDAY_10)


def test_next_step_waits_for_the_previous_send_then_its_delay():
    """Step 2 waits until step 1 is sent, then is due 48 h later, inside business hours."""
    state = enrolled()
    state = run(
        state,
        c.QueueMessage(
            command_id="q1",
            at=MONDAY_10,
            message_id="m1",
            channel=Channel.WHATSAPP,
            content_hash="h",
            sequence_id="cold",
            step=1,
            quota_cost=1,
            phone_id="p1",
        ),
    )
    assert isinstance(next_action(SEQ, state, HOURS), Waiting)
    sent_at = MONDAY_10 + timedelta(hours=7, minutes=30)  # 17:30 local
    state = run(
        state,
        c.RecordSent(command_id="s1", at=sent_at, message_id="m1", provider="p", external_id="x"),
    )
    action = next_action(SEQ, state, HOURS)
    assert isinstance(action, StepDue)
    assert action.step.number == 2
    assert action.due_at == sent_at + timedelta(hours=48)  # Wednesday 17:30, still open


def test_due_time_outside_hours_moves_to_the_next_window():
    """A step falling at night is due at 09:00 local of the next business day."""
    friday_evening = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)  # 19:00 Bucharest, Friday
    late = Sequence(
        sequence_id="cold",
        name="x",
        steps=(SequenceStep(number=1, channel=Channel.WHATSAPP, template_id="a"),),
    )
    cmd = c.Enroll(
        command_id="e2",
        at=friday_evening,
        tenant_id="t",
        lead_id="l2",
        sequence_id="cold",
        company=Company(name="Agro", phone="+40722123456"),
    )
    shifted = replay(decide(Journey(), cmd))
    action = next_action(late, shifted, HOURS)
    assert isinstance(action, StepDue)
    assert action.due_at == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # Monday 09:00 EET


def test_steps_on_a_closed_channel_are_skipped():
    """After a WhatsApp opt-out, the next step is the first one on an open channel."""
    state = run(
        enrolled(),
        c.OptOut(command_id="o", at=MONDAY_10, scope=OptOutScope.WHATSAPP, source="STOP"),
    )
    action = next_action(SEQ, state, HOURS)
    assert isinstance(action, StepDue)
    assert action.step.number == 3


def test_sequence_with_no_reachable_step_is_exhausted():
    """When no remaining step can reach the lead, the sequence is exhausted."""
    state = enrolled(Company(name="Agro", email="a@agro.ro"))
    two_wa = Sequence(
        sequence_id="cold",
        name="x",
        steps=(SequenceStep(number=1, channel=Channel.WHATSAPP, template_id="a"),),
    )
    action = next_action(two_wa, state, HOURS)
    assert isinstance(action, Exhausted)
    # Nothing was ever sent: the sequence's grace period counts from the enrolment.
    assert action.at == state.enrolled_at + two_wa.exhaust_after


def test_paused_journey_is_blocked():
    """A paused journey gets no next step."""
    state = run(enrolled(), c.Pause(command_id="p", at=MONDAY_10, by="ana"))
    assert isinstance(next_action(SEQ, state, HOURS), Blocked)
