"""The background half on SQLite and PostgreSQL: each provider event lands once, as domain.md says.

On PostgreSQL the processor appends as the application role (one tenant per transaction,
row-level security) and looks leads up through the follower role, which sees every tenant:
a webhook arrives before any tenant is known.
"""

from __future__ import annotations

import pytest

from cerniq_outreach.application.metrics import Counters
from cerniq_outreach.application.webhook_events import Provider, WebhookFact, interpret
from cerniq_outreach.application.webhook_lookup import ReadModelLeadLookup
from cerniq_outreach.application.webhooks import ProcessOutcome, WebhookProcessor, confirm_with
from cerniq_outreach.domain.enums import BounceKind, Channel, JourneyState, OptOutScope
from cerniq_outreach.domain.events import (
    MessageBounced,
    MessageDelivered,
    MessageRead,
    OptedOut,
    ReplyReceived,
    ReviewRequested,
    StateChanged,
)

from projection_support import T0, Lead
from read_model_backends import open_backend
from webhook_support import instantly_body, resend_body, timelinesai_body

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with open_backend(request.param, request, tmp_path) as b:
        yield b


@pytest.fixture
def lead(backend):
    """An enrolled lead (phone +40722123456, ion@ferma.ro) with one sent message per channel."""
    lead = Lead(backend.app)
    for message_id, channel in (
        ("m-wa", Channel.WHATSAPP),
        ("m-warm", Channel.EMAIL_WARM),
        ("m-cold", Channel.EMAIL_COLD),
    ):
        lead.queue(message_id, channel=channel, step=None)
        lead.send(message_id)
    return lead


@pytest.fixture
def processor(backend):
    return WebhookProcessor(backend.app, ReadModelLeadLookup(backend.db), Counters())


def fact(provider: Provider, body: bytes, event_id: str | None = None) -> WebhookFact:
    read = interpret(provider, body, event_id=event_id)
    assert isinstance(read, WebhookFact)
    return read


def new_events(backend, lead: Lead) -> list:
    """The events appended after the fixture's set-up."""
    return [r.event for r in backend.app.read_stream("t1", "lead-1")][len(lead.events) :]


def process_twice(processor, read: WebhookFact) -> tuple[ProcessOutcome, ProcessOutcome]:
    """Once, and once more as a redelivery that got past the inbox."""
    return processor.process(read, T0), processor.process(read, T0)


def test_a_delivery_lands_once_on_its_message(backend, lead, processor):
    """Resend delivered (found by its tags): one MessageDelivered, a redelivery adds nothing."""
    read = fact(Provider.RESEND, resend_body("email.delivered"), "msg_d1")
    assert process_twice(processor, read) == (ProcessOutcome.RECORDED, ProcessOutcome.NOTHING_NEW)
    assert [type(e) for e in new_events(backend, lead)] == [MessageDelivered]
    assert new_events(backend, lead)[0].message_id == "m-warm"


def test_a_whatsapp_reply_found_by_phone_lands_once_and_warms_the_journey(backend, lead, processor):
    """A reply from the lead's number: ReplyReceived, the sequence stops, WARM_REPLY; once."""
    read = fact(Provider.TIMELINESAI, timelinesai_body("wa-in-1", phone="0722 123 456"))
    assert process_twice(processor, read) == (ProcessOutcome.RECORDED, ProcessOutcome.NOTHING_NEW)
    events = new_events(backend, lead)
    replies = [e for e in events if isinstance(e, ReplyReceived)]
    assert len(replies) == 1
    assert replies[0].external_id == "wa-in-1"
    assert [e.to_state for e in events if isinstance(e, StateChanged)] == [JourneyState.WARM_REPLY]


def test_a_whatsapp_read_report_finds_the_message_by_its_provider_id(backend, lead, processor):
    """A status report names the TimelinesAI uid recorded at MessageSent: MessageRead once."""
    body = timelinesai_body("x-m-wa", direction="sent", status="read", event_type="message:status")
    assert process_twice(processor, fact(Provider.TIMELINESAI, body))[0] is ProcessOutcome.RECORDED
    [read] = new_events(backend, lead)
    assert isinstance(read, MessageRead)
    assert read.message_id == "m-wa"


def test_a_cold_email_bounce_found_by_address_lands_once(backend, lead, processor):
    """Instantly bounce (lead found by address, latest cold email): one hard MessageBounced."""
    read = fact(Provider.INSTANTLY, instantly_body("email_bounced"))
    assert process_twice(processor, read) == (ProcessOutcome.RECORDED, ProcessOutcome.NOTHING_NEW)
    bounces = [e for e in new_events(backend, lead) if isinstance(e, MessageBounced)]
    assert [(b.message_id, b.kind) for b in bounces] == [("m-cold", BounceKind.HARD)]


def test_an_unsubscribe_lands_once_as_an_email_opt_out(backend, lead, processor):
    """Instantly lead_unsubscribed: OptedOut(EMAIL), once."""
    read = fact(Provider.INSTANTLY, instantly_body("lead_unsubscribed"))
    assert process_twice(processor, read) == (ProcessOutcome.RECORDED, ProcessOutcome.NOTHING_NEW)
    opt_outs = [e for e in new_events(backend, lead) if isinstance(e, OptedOut)]
    assert [o.channel for o in opt_outs] == [OptOutScope.EMAIL]


def test_a_complaint_opens_an_urgent_review_and_opts_out_of_everything_once(
    backend, lead, processor
):
    """Resend complained: ReviewRequested(COMPLAINT) and OptedOut(ALL), the journey DEAD."""
    read = fact(Provider.RESEND, resend_body("email.complained"), "msg_c1")
    assert process_twice(processor, read) == (ProcessOutcome.RECORDED, ProcessOutcome.NOTHING_NEW)
    events = new_events(backend, lead)
    assert len([e for e in events if isinstance(e, ReviewRequested)]) == 1
    assert [e.channel for e in events if isinstance(e, OptedOut)] == [OptOutScope.ALL]
    assert [e.to_state for e in events if isinstance(e, StateChanged)] == [JourneyState.DEAD]


def test_events_for_unknown_leads_and_messages_are_counted_not_raised(backend, lead, processor):
    """Unknown number, unknown address, unknown tagged lead, unknown message: counted, no append."""
    unknown = [
        fact(Provider.TIMELINESAI, timelinesai_body("wa-x", phone="+40799999999")),
        fact(Provider.INSTANTLY, instantly_body("email_opened", email="nobody@ferma.ro")),
        fact(Provider.RESEND, resend_body("email.opened", lead="lead-404"), "msg_u1"),
    ]
    assert [processor.process(f, T0) for f in unknown] == [ProcessOutcome.UNKNOWN_LEAD] * 3
    stray = fact(Provider.RESEND, resend_body("email.opened", message="m-404"), "msg_u2")
    assert processor.process(stray, T0) is ProcessOutcome.UNKNOWN_MESSAGE
    assert new_events(backend, lead) == []


def confirming(backend, whatsapp) -> WebhookProcessor:
    """A processor that asks TimelinesAI (the emulator) about every inbound message."""
    return WebhookProcessor(
        backend.app, ReadModelLeadLookup(backend.db), Counters(), confirm=confirm_with(whatsapp)
    )


def inbound(emulator, uid: str, text: str, *, from_me: bool = False) -> None:
    """Make the emulator know an inbound message, as TimelinesAI would after receiving it."""
    emulator.control.whatsapp_messages[uid] = {
        "message_uid": uid,
        "chat_id": "17",
        "status": "Received",
        "from_me": from_me,
        "timestamp": "2026-03-02 10:00:00 +0200",
        "text": text,
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_live_inbound_messages_are_confirmed_with_the_provider_first(
    backend, lead, emulator, whatsapp
):
    """A reply TimelinesAI knows lands; one it does not know, or knows otherwise, never does.

    TimelinesAI signs nothing, so a forged webhook with the right secret could write
    opt-outs into journeys; `GET /messages/{uid}` over real HTTP decides instead.
    """
    processor = confirming(backend, whatsapp)
    inbound(emulator, "wa-real", "Bună ziua, ne interesează")
    inbound(emulator, "wa-ours", "STOP", from_me=True)
    inbound(emulator, "wa-edited", "Da, trimiteți oferta")
    real = fact(Provider.TIMELINESAI, timelinesai_body("wa-real", phone="0722 123 456"))
    forged = fact(Provider.TIMELINESAI, timelinesai_body("wa-forged", text="STOP"))
    echo = fact(Provider.TIMELINESAI, timelinesai_body("wa-ours", text="STOP"))
    altered = fact(Provider.TIMELINESAI, timelinesai_body("wa-edited", text="STOP"))
    for read in (forged, echo, altered):
        assert processor.process(read, T0) is ProcessOutcome.UNCONFIRMED
    assert new_events(backend, lead) == []
    assert processor.process(real, T0) is ProcessOutcome.RECORDED
    assert [e.external_id for e in new_events(backend, lead) if isinstance(e, ReplyReceived)] == [
        "wa-real"
    ]
