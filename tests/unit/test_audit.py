"""The audit trail and the export lines, built from recorded events without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.application.audit import audit_trail, state_changes, summarize
from cerniq_outreach.application.records import RecordedEvent
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.events import EVENT_TYPES, Company, event_type_name
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.domain.personal import ERASED
from cerniq_outreach.entrypoints.cli.event_log import EXPORT_KEYS, export_line, redact_personal

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
COMPANY = Company(name="Agro Verde SRL", phone="+40722123456", email="ion@agroverde.ro")


def recorded(events):
    """Wrap events as the store would hand them back."""
    return [
        RecordedEvent(
            global_position=100 + i,
            tenant_id=e.tenant_id,
            stream_id=e.lead_id,
            stream_version=i,
            event_id=e.event_id,
            event_type=event_type_name(e),
            schema_version=1,
            occurred_at=e.occurred_at,
            recorded_at=e.occurred_at,
            event=e,
        )
        for i, e in enumerate(events, start=1)
    ]


def journey_events(reply: str = "Da, sunați-mă"):
    state, events, n = Journey(), [], itertools.count()
    for cls, fields in [
        (c.Enroll, {"tenant_id": "t1", "lead_id": "l1", "sequence_id": "s", "company": COMPANY}),
        (
            c.QueueMessage,
            {
                "message_id": "m1",
                "channel": Channel.WHATSAPP,
                "content_hash": "h",
                "sequence_id": "s",
                "step": 1,
                "quota_cost": 1,
                "phone_id": "p1",
            },
        ),
        (c.RecordSent, {"message_id": "m1", "provider": "timelinesai", "external_id": "x"}),
        (
            c.ReceiveReply,
            {"channel": Channel.WHATSAPP, "external_id": "r", "text": reply, "content_hash": "r"},
        ),
    ]:
        i = next(n)
        batch = decide(state, cls(command_id=f"c{i}", at=T0 + timedelta(minutes=i), **fields))
        state = replay(batch, state)
        events += batch
    return events


any_event = st.one_of([st.builds(cls) for cls in EVENT_TYPES])


@given(any_event)
def test_every_event_type_has_a_summary_of_its_own(event):
    """Each event reads as a sentence, never as its bare type name, whatever its fields."""
    summary = summarize(event)
    assert summary
    assert summary != event_type_name(event)


def test_audit_trail_chains_each_state_into_the_next():
    """Step n's state after is step n+1's state before; the last is the stream's fold."""
    events = journey_events()
    steps = audit_trail(recorded(events))
    assert len(steps) == len(events)
    assert steps[0].before == Journey()
    for earlier, later in itertools.pairwise(steps):
        assert earlier.after == later.before
    assert steps[-1].after == replay(events)


def test_state_changes_name_only_what_the_event_changed():
    """The diff of a send names the stage, the message status and nothing it left alone."""
    steps = audit_trail(recorded(journey_events()))
    sent = next(s for s in steps if s.record.event_type == "MessageSent")
    changes = state_changes(sent.before, sent.after)
    assert changes == {"messages": ({"m1": "QUEUED"}, {"m1": "SENT"})}
    moved = next(s for s in steps if s.record.event_type == "StateChanged")
    assert state_changes(moved.before, moved.after) == {"stage": ("COLD", "CONTACTED_WA")}


def test_a_long_reply_is_cut_in_its_summary():
    """A reply's summary shows its beginning, not the whole 500-character preview."""
    reply = "Bună ziua, " + "x" * 300
    steps = audit_trail(recorded(journey_events(reply)))
    summary = next(s.summary for s in steps if s.record.event_type == "ReplyReceived")
    assert len(summary) < 100
    assert summary.startswith("reply on WHATSAPP: 'Bună ziua, xxx")
    assert summary.endswith("…'")


def test_export_line_has_the_contract_keys_in_order():
    """An exported line holds exactly the documented keys, in the documented order."""
    record = recorded(journey_events())[0]
    line = msgspec.json.decode(export_line(record))
    assert list(line) == list(EXPORT_KEYS)
    assert line["data"]["company"]["name"] == "Agro Verde SRL"


def test_redaction_hides_values_but_keeps_absent_and_erased_ones():
    """--redact replaces personal values; nulls stay null and erased stays "[erased]"."""
    data = {
        "sequence_id": "s",
        "company": {"name": "Agro", "phone": ERASED, "email": None, "county": "Cluj"},
    }
    assert redact_personal("LeadEnrolled", data) == {
        "sequence_id": "s",
        "company": {"name": "[redacted]", "phone": ERASED, "email": None, "county": "Cluj"},
    }
    assert data["company"]["name"] == "Agro", "the input is not modified"
    assert redact_personal("MessageSent", {"message_id": "m"}) == {"message_id": "m"}
