"""Helpers for the webhook tests: signed requests as each provider sends them, and a full stack.

`webhook_stack(store, read_models)` wires the intake exactly as production does (verifiers,
SQL inbox, in-process job queue running the processor) around a given event store, and
records every job enqueued so tests can count them.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from litestar.testing import TestClient

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.jobs_inline import InlineJobQueue
from cerniq_outreach.adapters.webhooks.inbox import SqlWebhookInbox
from cerniq_outreach.adapters.webhooks.verify import (
    SharedSecretVerifier,
    SvixVerifier,
    svix_signature,
)
from cerniq_outreach.application.metrics import Counters
from cerniq_outreach.application.webhook_lookup import ReadModelLeadLookup
from cerniq_outreach.application.webhooks import WEBHOOK_JOB, WebhookIntake, WebhookProcessor
from cerniq_outreach.entrypoints.http.app import create_app
from cerniq_outreach.entrypoints.http.webhooks import WebhookGate

if TYPE_CHECKING:
    from collections.abc import Iterator

# The secret of the Svix documentation's test vector (tests/unit/test_webhook_verify.py).
RESEND_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a test secret
TIMELINESAI_SECRET = "tl-secret-7f3a9c"  # noqa: S105 - a test secret
INSTANTLY_SECRET = "in-secret-51bd02"  # noqa: S105 - a test secret
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def resend_body(
    kind: str = "email.delivered",
    *,
    tenant: str = "t1",
    lead: str = "lead-1",
    message: str = "m-warm",
    email_id: str = "re-1",
    **data: Any,
) -> bytes:
    """A Resend event as its webhooks send it, tags carrying our ids."""
    tags = {"tenant_id": tenant, "lead_id": lead, "message_id": message}
    payload = {
        "type": kind,
        "created_at": "2026-03-02T08:00:00.000Z",
        "data": {"email_id": email_id, "to": ["ion@ferma.ro"], "tags": tags, **data},
    }
    return json.dumps(payload).encode()


def svix_headers(
    body: bytes, msg_id: str = "msg_2a", *, at: datetime = NOW, secret: str = RESEND_SECRET
) -> dict[str, str]:
    """The three headers Svix sends with `body` at `at`."""
    stamp = int(at.timestamp())
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(stamp),
        "svix-signature": svix_signature(secret, msg_id, stamp, body),
        "content-type": "application/json",
    }


def timelinesai_body(
    uid: str = "wa-in-1",
    *,
    direction: str = "received",
    phone: str = "+40 722 123 456",
    text: str = "Bună ziua, ne interesează",
    status: str | None = None,
    event_type: str = "message:received:new",
) -> bytes:
    """A TimelinesAI message event (`providers.md` shape)."""
    message: dict[str, Any] = {
        "message_uid": uid,
        "text": text,
        "direction": direction,
        "timestamp": "2026-03-02 10:00:00 +0200",
        "sender": {"phone": phone},
        "recipient": {"phone": "+40744000111"},
        "reply_to_uid": None,
        "attachments": [],
    }
    if status is not None:
        message["status"] = status
    payload = {
        "event_type": event_type,
        "chat": {"chat_id": 17, "phone": phone},
        "whatsapp_account": {"phone": "+40744000111"},
        "message": message,
    }
    return json.dumps(payload).encode()


def instantly_body(
    event_type: str = "email_opened",
    *,
    email: str = "ion@ferma.ro",
    timestamp: str = "2026-03-02T08:00:00.000Z",
    **extra: Any,
) -> bytes:
    """An Instantly webhook event (`providers.md` fields)."""
    payload = {
        "event_type": event_type,
        "timestamp": timestamp,
        "workspace": "ws-1",
        "campaign_id": "camp-1",
        "lead_email": email,
        "email_account": "sales@cerniq.ro",
        "step": 1,
        "variant": 1,
        "is_first": True,
        "email_id": extra.pop("email_id", "in-email-1"),
        **extra,
    }
    return json.dumps(payload).encode()


class SpyQueue:
    """Records every job enqueued, then hands it to the real queue."""

    def __init__(self, inner: InlineJobQueue) -> None:
        self.inner = inner
        self.jobs: list[tuple[str, Any]] = []

    def enqueue(self, job_name: str, payload: Any) -> None:
        self.jobs.append((job_name, payload))
        self.inner.enqueue(job_name, payload)


@dataclass
class Stack:
    """The webhook intake wired around one store, with a client on the app."""

    client: TestClient
    queue: SpyQueue
    jobs: InlineJobQueue
    counters: Counters
    inbox: SqlWebhookInbox
    clock: SimulatedClock
    processor: WebhookProcessor

    def settle(self) -> None:
        """Wait until every enqueued job has been processed (a condition, not a sleep)."""
        self.jobs.join()


@contextmanager
def webhook_stack(store, read_models, lookup_models=None) -> Iterator[Stack]:
    """The app with SQL inbox on `read_models`, processing into `store`.

    `lookup_models` is where leads are looked up (the follower role on PostgreSQL).
    """
    counters = Counters()
    clock = SimulatedClock(NOW, speed=0)
    lookup = ReadModelLeadLookup(lookup_models or read_models)
    processor = WebhookProcessor(store, lookup, counters)
    jobs = InlineJobQueue({WEBHOOK_JOB: processor.handle}, counters)
    queue = SpyQueue(jobs)
    inbox = SqlWebhookInbox(read_models)
    gate = WebhookGate(
        intake=WebhookIntake(inbox, queue, clock, counters),
        resend=SvixVerifier(RESEND_SECRET, clock),
        timelinesai=SharedSecretVerifier(TIMELINESAI_SECRET),
        instantly=SharedSecretVerifier(INSTANTLY_SECRET),
        counters=counters,
    )
    try:
        with TestClient(create_app(webhooks=gate)) as client:
            yield Stack(client, queue, jobs, counters, inbox, clock, processor)
    finally:
        jobs.close()


def inbox_rows(read_models) -> list[dict]:
    """Every identity the inbox holds."""
    with read_models.transaction() as tx:
        return tx.fetchall("SELECT provider, identity, tenant_id FROM webhook_inbox")
