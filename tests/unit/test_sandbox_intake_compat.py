"""Sandbox webhooks pass the webhook intake's verification and read as the facts they mean.

This is the promise of the sandbox: its events take the real webhooks' path. It joins two
parts built separately (the sandbox and the intake), so a change of shape on either side
shows here first.
"""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta

from cerniq_outreach.adapters.channels.sandbox import SandboxProviders, SandboxRates, SandboxSecrets
from cerniq_outreach.adapters.channels.sandbox_config import (
    ColdEmailRates,
    WarmEmailRates,
    WhatsAppRates,
)
from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.webhooks.verify import SharedSecretVerifier, SvixVerifier
from cerniq_outreach.application.channels import ColdLead, WarmEmail
from cerniq_outreach.application.webhook_events import (
    Fact,
    Ignored,
    Provider,
    WebhookFact,
    interpret,
)

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SECRETS = SandboxSecrets(
    timelinesai="tl-secret",
    instantly="in-secret",
    resend="whsec_" + base64.b64encode(b"sandbox-compat-key-000000").decode(),
)
LEAD_PHONE = "+40731234567"


def test_every_sandbox_webhook_verifies_and_reads_as_its_fact():
    """Each event verifies with the shared secrets and becomes the fact it stands for."""
    clock = SimulatedClock(START, speed=0)
    svix = SvixVerifier(SECRETS.resend, clock)
    shared = {
        "timelinesai": SharedSecretVerifier(SECRETS.timelinesai),
        "instantly": SharedSecretVerifier(SECRETS.instantly),
    }
    facts: Counter[tuple[str, str]] = Counter()

    def intake(provider: str, headers: object, body: bytes) -> None:
        assert isinstance(headers, dict)
        if provider == "resend":
            event_id = svix.verify(headers, body)
        else:
            shared[provider].verify(headers)
            event_id = None
        read = interpret(Provider(provider), body, event_id=event_id)
        if isinstance(read, Ignored):
            facts[provider, "ignored"] += 1
        else:
            assert isinstance(read, WebhookFact)
            facts[provider, read.fact.value] += 1

    rates = SandboxRates(
        whatsapp=WhatsAppRates(not_on_whatsapp=0, delivered=1, read=1, replied=1),
        cold_email=ColdEmailRates(bounced=0, opened=1, clicked=1, replied=1),
        warm_email=WarmEmailRates(
            bounced_hard=0, bounced_soft=0, opened=1, clicked=1, complained=1
        ),
    )
    providers = SandboxProviders(clock, seed=1, rates=rates, secrets=SECRETS, deliver=intake)
    providers.whatsapp.send_to_phone(from_phone="+40722000001", to_phone=LEAD_PHONE, text="Salut")
    providers.warm_email.send(
        WarmEmail(
            tenant_id="acme",
            lead_id="lead-1",
            message_id="msg-1",
            sender="vanzari@cerniq.ro",
            to="fermier@agro-example.ro",
            subject="Ofertă",
            unsubscribe_url="https://cerniq.ro/u/1",
        )
    )
    providers.cold_email.add_leads(
        "camp-1",
        [ColdLead(email="contact@ferma-example.ro", custom_variables={"cerniq_message_id": "c-1"})],
    )
    providers.pump()
    clock.advance(timedelta(days=5))
    providers.pump()

    replied = facts["instantly", Fact.REPLY.value] + facts["instantly", Fact.AUTO_REPLY.value]
    assert replied == 1
    del facts["instantly", Fact.REPLY.value], facts["instantly", Fact.AUTO_REPLY.value]
    assert facts == Counter(
        {
            ("timelinesai", "ignored"): 1,  # the echo of our own send
            ("timelinesai", Fact.DELIVERED.value): 1,
            ("timelinesai", Fact.READ.value): 1,
            ("timelinesai", Fact.REPLY.value): 1,
            ("resend", "ignored"): 1,  # email.sent
            ("resend", Fact.DELIVERED.value): 1,
            ("resend", Fact.OPENED.value): 1,
            ("resend", Fact.CLICKED.value): 1,
            ("resend", Fact.COMPLAINT.value): 1,
            ("instantly", "ignored"): 1,  # email_sent
            ("instantly", Fact.OPENED.value): 1,
            ("instantly", Fact.CLICKED.value): 1,
        }
    )
