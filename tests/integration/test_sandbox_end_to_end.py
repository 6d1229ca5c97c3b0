"""The sandbox's outcomes reach journeys the way real webhooks do: over the webhook routes.

The sandbox posts each outcome as the provider's own signed request; here those requests go
through the Litestar app (verification, inbox, job queue) into the processor and the event
store, so the embedded default and the demo exercise the production intake end to end.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cerniq_outreach.adapters.channels.sandbox import SandboxProviders
from cerniq_outreach.adapters.channels.sandbox_config import (
    SandboxRates,
    SandboxSecrets,
    WarmEmailRates,
)
from cerniq_outreach.application.channels import WarmEmail
from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.events import MessageDelivered, MessageOpened

from projection_support import Lead
from read_model_backends import open_backend
from webhook_support import (
    INSTANTLY_SECRET,
    RESEND_SECRET,
    TIMELINESAI_SECRET,
    inbox_rows,
    svix_headers,
    webhook_stack,
)

SECRETS = SandboxSecrets(
    timelinesai=TIMELINESAI_SECRET, instantly=INSTANTLY_SECRET, resend=RESEND_SECRET
)
# Every warm email delivered and opened, none bounced: the outcome under test is certain.
CERTAIN = SandboxRates(
    warm_email=WarmEmailRates(
        bounced_hard=0.0, bounced_soft=0.0, opened=1.0, clicked=0.0, complained=0.0
    )
)


@pytest.fixture
def backend(request, tmp_path):
    with open_backend("sqlite", request, tmp_path) as b:
        yield b


def test_a_sandbox_send_comes_back_through_the_webhook_routes_once(backend):
    """Delivered and opened reach the journey once each; the message was sent once.

    The same outcomes posted again (a provider's retry) are acknowledged and add nothing;
    replayed with their old signatures they are refused.
    """
    with webhook_stack(backend.app, backend.db) as stack:
        posted: list[tuple[str, dict[str, str], bytes]] = []

        def post(provider: str, headers, body: bytes) -> None:
            posted.append((provider, dict(headers), body))
            reply = stack.client.post(f"/webhooks/{provider}", content=body, headers=headers)
            assert reply.status_code in {200, 202}, reply.text

        sandbox = SandboxProviders(
            stack.clock, seed=7, deliver=post, secrets=SECRETS, rates=CERTAIN
        )
        lead = Lead(backend.app, at=stack.clock.now())
        lead.queue("m-warm", channel=Channel.EMAIL_WARM, step=None)
        lead.send("m-warm")
        before = len(lead.events)
        sandbox.warm_email.send(
            WarmEmail(
                tenant_id=lead.tenant,
                lead_id=lead.lead_id,
                message_id="m-warm",
                sender="vanzari@cerniq.ro",
                to="ion@ferma.ro",
                subject="Semințe de toamnă",
                unsubscribe_url="https://cerniq.example/u/m-warm",
                text="Bună ziua",
            )
        )
        assert sandbox.pump() == 1  # the echo of our own send, at once (the intake skips it)
        assert sandbox.pump() == 0  # the rest is not due before its time
        stack.clock.advance(timedelta(days=1))
        assert sandbox.pump() > 0
        stack.settle()
        # Svix redelivers an event with the same svix-id, signed anew with the time of the
        # retry (ten minutes on, the first signature is stale: replayed, it is refused).
        stack.clock.advance(timedelta(minutes=10))
        for _, headers, body in posted:
            retry = svix_headers(body, headers["svix-id"], at=stack.clock.now())
            reply = stack.client.post("/webhooks/resend", content=body, headers=retry)
            assert reply.status_code == 200, reply.text
            stale = stack.client.post("/webhooks/resend", content=body, headers=headers)
            assert stale.status_code == 401
        stack.settle()

        added = [r.event for r in backend.app.read_stream(lead.tenant, lead.lead_id)][before:]
        assert [type(e) for e in added] == [MessageDelivered, MessageOpened]
        assert all(e.message_id == "m-warm" for e in added)
        assert sandbox.sends("m-warm") == 1
        assert len(inbox_rows(backend.db)) == 2  # the echo of our send is skipped, not kept
