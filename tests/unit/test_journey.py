"""Concrete journeys: the rules of domain.md on readable examples."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
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
from cerniq_outreach.domain.errors import (
    DuplicateMessage,
    InvalidCommand,
    NotEnrolled,
    OutboundRefused,
    UnknownMessage,
)
from cerniq_outreach.domain.events import (
    Company,
    MessageSent,
    OptedOut,
    PhoneAssigned,
    ReviewRequested,
    SequenceSnoozed,
    SequenceStopped,
    StateChanged,
)
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.domain.outbound import whatsapp_cost

S = JourneyState
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_n = itertools.count()


class Lead:
    """A tiny driver: run commands, keep the log, fold the state."""

    def __init__(self, company: Company | None = None, *, stop_on_reply: bool = True) -> None:
        self.events: list = []
        self.state = Journey()
        self.now = T0
        self.do(
            c.Enroll,
            tenant_id="t1",
            lead_id="lead-1",
            sequence_id="cold",
            company=company or Company(name="Agro", phone="+40722123456", email="a@agro.ro"),
            stop_on_reply=stop_on_reply,
        )

    def do(self, cls, **fields):
        command = cls(command_id=f"c{next(_n)}", at=self.now, **fields)
        new = decide(self.state, command)
        self.events += new
        self.state = replay(new, self.state)
        return new

    def queue(self, message_id, channel=Channel.WHATSAPP, step=1, phone="phone-1", **kw):
        return self.do(
            c.QueueMessage,
            message_id=message_id,
            channel=channel,
            content_hash="h",
            sequence_id=kw.pop("sequence_id", "cold") if step is not None else None,
            step=step,
            quota_cost=whatsapp_cost(self.state) if channel is Channel.WHATSAPP else 0,
            phone_id=phone if channel is Channel.WHATSAPP else None,
            **kw,
        )

    def send(self, message_id):
        return self.do(c.RecordSent, message_id=message_id, provider="p", external_id="x")


def changes(events):
    return [(e.from_state, e.to_state) for e in events if isinstance(e, StateChanged)]


def test_commands_before_enrolment_are_refused():
    """A lead with no journey accepts only enrolment."""
    with pytest.raises(NotEnrolled):
        decide(Journey(), c.Pause(command_id="x", at=T0, by="ana"))


def test_lead_without_phone_or_email_is_refused():
    """A lead needs a phone or an email."""
    with pytest.raises(InvalidCommand, match="phone or an email"):
        Lead(Company(name="Agro"))


def test_first_whatsapp_send_moves_cold_to_contacted_wa_and_assigns_phone():
    """The first WhatsApp message assigns the sticky phone and moves COLD -> CONTACTED_WA."""
    lead = Lead()
    queued = lead.queue("m1")
    assert isinstance(queued[0], PhoneAssigned)
    assert queued[0].phone_id == "phone-1"
    sent = lead.send("m1")
    assert changes(sent) == [(S.COLD, S.CONTACTED_WA)]
    assert lead.state.phone_id == "phone-1"


def test_phone_is_sticky():
    """A lead that has a phone keeps it: a message from another phone is refused."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    with pytest.raises(OutboundRefused, match="sticky"):
        lead.queue("m2", step=2, phone="phone-2")


def test_reassignment_is_recorded_with_its_reason():
    """A banned phone's lead moves to another phone with a PhoneAssigned naming the old one."""
    lead = Lead()
    lead.queue("m1")
    (event,) = lead.do(c.ReassignPhone, phone_id="phone-9", reason="phone-1 banned")
    assert (event.previous_phone_id, event.phone_id) == ("phone-1", "phone-9")


def test_first_whatsapp_message_costs_one_and_follow_ups_are_free():
    """Quota cost: 1 for the first WhatsApp message ever, 0 for every later one."""
    lead = Lead()
    assert whatsapp_cost(lead.state) == 1
    lead.queue("m1")
    assert whatsapp_cost(lead.state) == 0, "a pending first message already counts"
    lead.send("m1")
    assert [e.quota_cost for e in lead.events if isinstance(e, MessageSent)] == [1]
    with pytest.raises(InvalidCommand, match="quota cost"):
        lead.do(
            c.QueueMessage,
            message_id="m2",
            channel=Channel.WHATSAPP,
            content_hash="h",
            sequence_id="cold",
            step=2,
            quota_cost=1,
            phone_id="phone-1",
        )


def test_one_message_per_step_and_one_send_per_message():
    """A step is queued once; a retried send records nothing new."""
    lead = Lead()
    lead.queue("m1")
    with pytest.raises(DuplicateMessage):
        lead.queue("m1b", step=1)
    assert lead.send("m1")
    assert lead.send("m1") == []


def test_reply_stops_the_sequence_and_warms_the_lead():
    """A reply moves a contacted lead to WARM_REPLY and stops a stop-on-reply sequence."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    out = lead.do(
        c.ReceiveReply, channel=Channel.WHATSAPP, external_id="r1", text="Da", content_hash="h"
    )
    assert any(isinstance(e, SequenceStopped) for e in out)
    assert changes(out) == [(S.CONTACTED_WA, S.WARM_REPLY)]
    with pytest.raises(OutboundRefused, match="not running"):
        lead.queue("m2", step=2)


def test_after_a_reply_only_warm_outreach_goes_out():
    """After a reply no cold email is sent, but a warm sequence a human starts may write."""
    lead = Lead(stop_on_reply=False)
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.ReceiveReply, channel=Channel.WHATSAPP, external_id="r1", text="Da", content_hash="h")
    with pytest.raises(OutboundRefused, match="no cold email"):
        lead.queue("m2", channel=Channel.EMAIL_COLD, step=2)
    lead.queue("m3", channel=Channel.WHATSAPP, step=3)  # the sequence did not stop on reply


def test_out_of_office_reply_snoozes_instead_of_stopping():
    """An out-of-office reply pauses the sequence until the return date; the lead stays cold."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    back = T0 + timedelta(days=7)
    out = lead.do(
        c.ReceiveReply,
        channel=Channel.EMAIL_COLD,
        external_id="r1",
        text="Sunt în concediu",
        content_hash="h",
        out_of_office_until=back,
    )
    assert [type(e) for e in out][-1] is SequenceSnoozed
    assert lead.state.stage is S.CONTACTED_WA
    with pytest.raises(OutboundRefused, match="waits until"):
        lead.queue("m2", step=2)
    lead.now = back
    lead.queue("m2", step=2)


def test_whatsapp_opt_out_keeps_email_open():
    """Opting out of WhatsApp silences WhatsApp only; email may continue."""
    lead = Lead()
    lead.do(c.OptOut, scope=OptOutScope.WHATSAPP, source="STOP")
    with pytest.raises(OutboundRefused, match="opted out"):
        lead.queue("m1")
    lead.queue("m2", channel=Channel.EMAIL_COLD, step=2)
    assert lead.state.stage is S.COLD


def test_opt_out_of_the_only_channel_ends_the_journey():
    """An opt-out that leaves no channel ends the journey (DEAD)."""
    lead = Lead(Company(name="Agro", phone="+40722123456"))
    out = lead.do(c.OptOut, scope=OptOutScope.WHATSAPP, source="STOP")
    assert changes(out) == [(S.COLD, S.DEAD)]


def test_invalid_whatsapp_number_falls_back_to_email():
    """A WhatsApp number that fails for good moves a contacted lead to email."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    lead.queue("m2", step=2)
    out = lead.do(c.RecordFailure, message_id="m2", reason="not on WhatsApp", permanent=True)
    assert changes(out) == [(S.CONTACTED_WA, S.CONTACTED_EMAIL)]


def test_hard_bounce_with_no_channel_left_ends_the_journey():
    """A hard bounce on the only address ends the journey; a soft one does not."""
    lead = Lead(Company(name="Agro", email="a@agro.ro"))
    lead.queue("m1", channel=Channel.EMAIL_COLD)
    lead.send("m1")
    assert changes(lead.do(c.RecordBounce, message_id="m1", kind=BounceKind.SOFT)) == []
    out = lead.do(c.RecordBounce, message_id="m1", kind=BounceKind.HARD)
    assert changes(out) == [(S.CONTACTED_EMAIL, S.DEAD)]


def test_provider_event_for_an_unknown_message_is_refused():
    """Delivery reports name a message this journey queued, or are refused."""
    lead = Lead()
    with pytest.raises(UnknownMessage):
        lead.do(c.RecordDelivered, message_id="nope")


def test_complaint_opens_an_urgent_review_and_silences_automation():
    """A complaint opens an URGENT review; automation waits for a human."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    out = lead.do(
        c.ScoreSentiment,
        score=-90,
        label=SentimentLabel.NEGATIVE,
        confidence=0.9,
        triggers=frozenset({ReplyTrigger.COMPLAINT}),
    )
    review = next(e for e in out if isinstance(e, ReviewRequested))
    assert (review.reason, review.priority) == (ReviewReason.COMPLAINT, Priority.URGENT)
    assert review.sla_due_at == T0 + timedelta(hours=1)


def test_opt_out_keyword_opts_out_of_everything():
    """An OPT_OUT trigger records an ALL opt-out and ends the journey."""
    lead = Lead()
    out = lead.do(
        c.ScoreSentiment,
        score=-40,
        label=SentimentLabel.NEGATIVE,
        confidence=1.0,
        triggers=frozenset({ReplyTrigger.OPT_OUT}),
    )
    assert any(isinstance(e, OptedOut) and e.channel is OptOutScope.ALL for e in out)
    assert lead.state.stage is S.DEAD


def test_review_blocks_automation_until_resolved_then_moves_on():
    """Under review nothing automated goes out; resolving to NEGOTIATION moves the journey."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.ReceiveReply, channel=Channel.WHATSAPP, external_id="r", text="?", content_hash="h")
    (review,) = lead.do(c.RequestReview, reason=ReviewReason.MANUAL_FLAG, priority=Priority.LOW)
    lead.do(c.StartSequence, sequence_id="warm", by="ana")
    with pytest.raises(OutboundRefused, match="review"):
        lead.queue("m2", step=1, sequence_id="warm")
    out = lead.do(
        c.ResolveReview,
        review_id=review.review_id,
        resolution=ReviewResolution.MOVED_TO_NEGOTIATION,
        resolved_by="ana",
    )
    assert changes(out) == [(S.WARM_REPLY, S.NEGOTIATION)]
    lead.queue("m2", step=1, sequence_id="warm")


def test_pause_and_resume_return_to_the_paused_from_state():
    """A paused journey sends nothing automated and resumes where it was."""
    lead = Lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.Pause, by="ana", reason="client call")
    with pytest.raises(OutboundRefused, match="PAUSED"):
        lead.queue("m2", step=2)
    lead.queue("m3", step=None)  # a human may still write
    out = lead.do(c.Resume, by="ana")
    assert changes(out) == [(S.PAUSED, S.CONTACTED_WA)]


def test_human_control_silences_automation_but_not_the_human():
    """While a human controls the conversation, only human messages go out."""
    lead = Lead()
    lead.do(c.TakeControl, user="ana")
    with pytest.raises(OutboundRefused, match="controls"):
        lead.queue("m1")
    lead.queue("m2", step=None)
    lead.do(c.ReleaseControl, user="ana")
    lead.queue("m1", step=1)


def test_exhausted_cold_sequence_without_reply_ends_the_journey():
    """A cold sequence that runs out without a reply ends the journey (DEAD)."""
    lead = Lead()
    out = lead.do(c.ExhaustSequence)
    assert changes(out) == [(S.COLD, S.DEAD)]


def test_cancelled_message_cannot_be_sent():
    """A message cancelled before its send is never recorded as sent."""
    lead = Lead()
    lead.queue("m1")
    lead.do(c.CancelMessage, message_id="m1", reason="opted out meanwhile")
    with pytest.raises(OutboundRefused):
        lead.send("m1")


def test_retried_command_produces_identical_events():
    """Event ids derive from the command id: a retry is byte-for-byte the same decision."""
    lead = Lead()
    command = c.Pause(command_id="fixed", at=T0, by="ana")
    assert decide(lead.state, command) == decide(lead.state, command)
