"""The sandbox's webhooks: shaped, authenticated and timed as the providers send them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from cerniq_outreach.adapters.channels.sandbox import SandboxProviders, SandboxRates, SandboxSecrets
from cerniq_outreach.adapters.channels.sandbox_config import (
    ColdEmailRates,
    WarmEmailRates,
    WhatsAppRates,
)
from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.application.channels import ColdLead, SendResult, WarmEmail

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LATER = timedelta(days=5)
RESEND_KEY = b"sandbox-test-key-0123456789"
SECRETS = SandboxSecrets(
    timelinesai="tl-secret",
    instantly="in-secret",
    resend="whsec_" + base64.b64encode(RESEND_KEY).decode(),
)
OUR_PHONE = "+40722000001"
LEAD_PHONE = "+40731234567"
EVERYTHING = SandboxRates(
    whatsapp=WhatsAppRates(not_on_whatsapp=0, delivered=1, read=1, replied=1),
    cold_email=ColdEmailRates(bounced=0, opened=1, clicked=1, replied=1),
    warm_email=WarmEmailRates(bounced_hard=0, bounced_soft=0, opened=1, clicked=1, complained=1),
)
Hook = tuple[str, dict[str, str], bytes]


def sandbox(
    rates: SandboxRates = EVERYTHING,
) -> tuple[SandboxProviders, SimulatedClock, list[Hook]]:
    clock = SimulatedClock(START, speed=0)
    hooks: list[Hook] = []
    providers = SandboxProviders(
        clock,
        seed=9,
        rates=rates,
        secrets=SECRETS,
        deliver=lambda provider, headers, body: hooks.append((provider, dict(headers), body)),
    )
    return providers, clock, hooks


WARM = WarmEmail(
    tenant_id="acme",
    lead_id="lead-1",
    message_id="msg-1",
    sender="Cerniq <vanzari@cerniq.ro>",
    to="fermier@agro-example.ro",
    subject="Ofertă",
    unsubscribe_url="https://cerniq.ro/u/1",
    html='<a href="https://cerniq.ro/oferta">Vezi oferta</a>',
)
COLD = ColdLead(
    email="contact@ferma-example.ro",
    custom_variables={
        "cerniq_tenant_id": "acme",
        "cerniq_lead_id": "lead-2",
        "cerniq_message_id": "cold-1",
    },
)


def everything_once() -> tuple[SandboxProviders, SimulatedClock, list[Hook], SendResult]:
    providers, clock, hooks = sandbox()
    providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=LEAD_PHONE, text="Bună ziua")
    warm = providers.warm_email.send(WARM)
    providers.cold_email.add_leads("camp-1", [COLD])
    clock.advance(LATER)
    providers.pump()
    return providers, clock, hooks, warm


def of(hooks: list[Hook], provider: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    return [(headers, json.loads(body)) for name, headers, body in hooks if name == provider]


def test_resend_webhooks_carry_a_svix_signature_that_verifies_independently():
    """svix-signature is base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" under the whsec_ key."""
    _, clock, hooks, _ = everything_once()
    resend = [(h, b) for name, h, b in hooks if name == "resend"]
    assert len(resend) == 5  # sent, delivered, opened, clicked, complained
    for headers, body in resend:
        signed = f"{headers['svix-id']}.{headers['svix-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(RESEND_KEY, signed, hashlib.sha256).digest())
        version, _, signature = headers["svix-signature"].partition(",")
        assert version == "v1"
        assert hmac.compare_digest(signature.encode(), expected)
        # Stamped when the attempt is made, so the receiver's five-minute window holds.
        assert int(headers["svix-timestamp"]) == int(clock.now().timestamp())
    assert len({h["svix-id"] for h, _ in resend}) == 5  # one identity per event


def test_a_changed_body_no_longer_matches_its_signature():
    """The signature covers the raw bytes: one byte changed and it fails."""
    _, _, hooks, _ = everything_once()
    headers, body = next((h, b) for name, h, b in hooks if name == "resend")
    tampered = body.replace(b"msg-1", b"msg-2")
    signed = f"{headers['svix-id']}.{headers['svix-timestamp']}.".encode() + tampered
    forged = base64.b64encode(hmac.new(RESEND_KEY, signed, hashlib.sha256).digest()).decode()
    assert tampered != body
    assert headers["svix-signature"] != "v1," + forged


def test_resend_events_have_the_envelope_and_the_tags_of_the_message():
    """{type, created_at, data{email_id, to[], subject, tags{tenant_id, lead_id, message_id}}}."""
    _, _, hooks, sent = everything_once()
    events = [body for _, body in of(hooks, "resend")]
    assert [e["type"] for e in events][:3] == ["email.sent", "email.delivered", "email.opened"]
    email_id = sent.external_id
    for event in events:
        data = event["data"]
        assert data["email_id"] == email_id
        assert data["to"] == ["fermier@agro-example.ro"]
        assert data["subject"] == "Ofertă"
        assert data["tags"] == {"tenant_id": "acme", "lead_id": "lead-1", "message_id": "msg-1"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["created_at"])
    click = next(e for e in events if e["type"] == "email.clicked")
    assert click["data"]["click"]["link"] == "https://cerniq.ro/oferta"


def test_resend_bounces_say_permanent_or_transient():
    """A hard bounce is `Permanent` and a soft one `Transient`, in data.bounce.type."""
    for rates, kind in (
        (WarmEmailRates(bounced_hard=1, bounced_soft=0), "Permanent"),
        (WarmEmailRates(bounced_hard=0, bounced_soft=1), "Transient"),
    ):
        providers, clock, hooks = sandbox(SandboxRates(warm_email=rates, echoes=False))
        providers.warm_email.send(WARM)
        clock.advance(LATER)
        providers.pump()
        events = [body for _, body in of(hooks, "resend")]
        assert [e["type"] for e in events] == ["email.bounced"]
        assert events[0]["data"]["bounce"]["type"] == kind


def test_timelinesai_events_are_authenticated_and_shaped_as_documented():
    """TimelinesAI: the secret header, and {event_type, chat, whatsapp_account, message{...}}."""
    providers, _, hooks, _ = everything_once()
    events = of(hooks, "timelinesai")
    assert [e["event_type"] for _, e in events] == [
        "message:sent:new",
        "message:status:updated",
        "message:status:updated",
        "message:received:new",
    ]
    for headers, event in events:
        assert headers["x-webhook-secret"] == "tl-secret"
        assert event["whatsapp_account"] == {"phone": OUR_PHONE}
        assert event["chat"]["phone"] == LEAD_PHONE
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000", event["message"]["timestamp"])
    _, reply = events[-1]
    message = reply["message"]
    assert message["direction"] == "received"
    assert message["sender"] == {"phone": LEAD_PHONE}
    assert message["recipient"] == {"phone": OUR_PHONE}
    assert message["text"]
    # A read report and the reply are about different messages, both known to reads.
    assert events[2][1]["message"]["message_uid"] != message["message_uid"]
    assert providers.whatsapp.message(message["message_uid"]).text == message["text"]


def test_instantly_events_carry_the_secret_header_and_the_custom_variables():
    """Instantly: the custom secret header, documented fields, and our variables back flat."""
    _, _, hooks, _ = everything_once()
    events = of(hooks, "instantly")
    assert events[0][1]["event_type"] == "email_sent"
    for headers, event in events:
        assert headers["x-webhook-secret"] == "in-secret"
        assert event["lead_email"] == "contact@ferma-example.ro"
        assert event["campaign_id"] == "camp-1"
        assert event["cerniq_message_id"] == "cold-1"
        assert event["cerniq_lead_id"] == "lead-2"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])
    reply = next(e for _, e in events if e["event_type"].endswith("reply_received"))
    assert reply["reply_text"]
    assert reply["email_id"] != events[0][1]["email_id"]  # the reply is its own email


def test_whatsapp_reads_follow_what_the_webhooks_said():
    """`message` and `status_history` never run ahead of the webhooks already POSTed."""
    providers, clock, _ = sandbox()
    uid = providers.whatsapp.send_to_phone(
        from_phone=OUR_PHONE, to_phone=LEAD_PHONE, text="Salut"
    ).external_id
    assert providers.whatsapp.message(uid).status == "sent"
    clock.advance(LATER)
    providers.pump()
    assert [s.status for s in providers.whatsapp.status_history(uid)] == [
        "sent",
        "delivered",
        "read",
    ]
    chat_id = providers.whatsapp.message(uid).chat_id
    assert chat_id is not None
    chat = providers.whatsapp.chat_messages(chat_id)
    assert [m.from_me for m in chat] == [True, False]
    assert [a.phone for a in providers.whatsapp.accounts()] == [OUR_PHONE]


def test_a_lead_paused_or_blocked_before_its_email_leaves_gets_nothing():
    """Instantly checks at send time: a paused or blocked lead's email never leaves."""
    providers, clock, hooks = sandbox()
    second = msgspec.structs.replace(
        COLD,
        email="alt@ferma-example.ro",
        custom_variables={**COLD.custom_variables, "cerniq_message_id": "cold-2"},
    )
    providers.cold_email.add_leads("camp-1", [COLD, second])
    providers.cold_email.pause_lead("camp-1", COLD.email)
    providers.cold_email.block("ferma-example.ro")
    clock.advance(LATER)
    assert providers.pump() == 0
    assert hooks == []
    assert providers.pending() == 0


def test_a_sink_that_answers_at_once_may_send_while_pumping():
    """The sink may call back into the sandbox (inline jobs); what that schedules is pumped too."""
    clock = SimulatedClock(START, speed=0)
    seen: list[str] = []

    def answer(_provider: str, _headers: object, body: bytes) -> None:
        event = json.loads(body)
        seen.append(event.get("event_type", ""))
        if event.get("event_type") == "message:received:new":
            providers.whatsapp.send_to_phone(
                from_phone=OUR_PHONE, to_phone=LEAD_PHONE, text="Mulțumim pentru răspuns!"
            )

    providers = SandboxProviders(clock, seed=9, rates=EVERYTHING, secrets=SECRETS, deliver=answer)
    providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=LEAD_PHONE, text="Salut")
    clock.advance(LATER)
    providers.pump()
    # The answer's echo is due at once and arrives in the same pump; its own fate later.
    assert seen.count("message:sent:new") == 2
    assert providers.pending() > 0
