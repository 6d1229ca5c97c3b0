"""`POST /webhooks/{timelinesai,instantly,resend}`: verify, read, dedupe, enqueue, answer.

Order matters: the signature or secret is checked on the raw bytes before anything of the
body is read (401, nothing recorded); then the body is read (400 problem details naming the
field, nothing recorded); then the intake records the event's identity and enqueues it
(202 the first time, 200 for a duplicate or an event that changes no journey). Bodies over
1 MB are refused with 413 before they are read in full. Verifying and reading are CPU work
of microseconds and run on the event loop; only the inbox write (a blocking commit) goes to
a small pool of threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import anyio
import anyio.to_thread
from litestar import Request, Response, Router, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, RawBody

from cerniq_outreach.adapters.webhooks.verify import (
    SharedSecretVerifier,
    SvixVerifier,
    VerificationFailed,
)
from cerniq_outreach.application.metrics import Counters
from cerniq_outreach.application.webhook_events import Ignored, Provider, ShapeError
from cerniq_outreach.application.webhooks import (
    REJECTED_COUNTER,
    IntakeOutcome,
    WebhookIntake,
)
from cerniq_outreach.entrypoints.http.problems import problem

MAX_WEBHOOK_BODY: Final = 1024 * 1024
"""Largest webhook body read (1 MB); providers' events are a few kilobytes."""
RETRY_AFTER_SECONDS: Final = "30"  # when the job queue cannot take the event
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookGate:
    """What the webhook routes need: the intake and one verifier per provider."""

    intake: WebhookIntake
    resend: SvixVerifier
    timelinesai: SharedSecretVerifier
    instantly: SharedSecretVerifier
    counters: Counters
    # Threads for the inbox writes. A few suffice (each is one short statement) and keep
    # the GIL calm; blocking the event loop instead would stall every request on one fsync.
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(8))


# Injected by name from the router's dependency (Litestar 3 drops inferred dependencies).
Gate = NamedDependency[WebhookGate]


def _rejected(gate: WebhookGate, provider: Provider, failure: VerificationFailed) -> Response[Any]:
    gate.counters.inc(REJECTED_COUNTER, provider=provider.value, reason=failure.reason)
    _log.info("webhook refused", extra={"provider": provider.value, "reason": failure.reason})
    return problem(HTTPStatus.UNAUTHORIZED, "webhook verification failed")


async def _take(
    gate: WebhookGate, provider: Provider, body: bytes, event_id: str | None
) -> Response[Any]:
    try:
        read = gate.intake.read(provider, body, event_id=event_id)
    except ShapeError as exc:
        return problem(
            HTTPStatus.BAD_REQUEST,
            f"the {provider.value} event cannot be read",
            errors=[{"field": exc.field, "message": exc.detail}],
        )
    if isinstance(read, Ignored):
        return Response({"status": IntakeOutcome.IGNORED.value}, status_code=HTTPStatus.OK)
    try:
        # The inbox write blocks (a commit): off the event loop, on threads of our own.
        outcome = await anyio.to_thread.run_sync(gate.intake.record, read, limiter=gate.limiter)
    except Exception:  # noqa: BLE001 - whatever the queue's failure, the provider retries
        _log.exception("webhook could not be enqueued", extra={"provider": provider.value})
        return problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "the event could not be queued; retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    status = HTTPStatus.ACCEPTED if outcome is IntakeOutcome.ACCEPTED else HTTPStatus.OK
    return Response({"status": outcome.value}, status_code=status)


@post("/resend", operation_id="receiveResendWebhook")
async def resend(request: Request[Any, Any, Any], body: RawBody, gate: Gate) -> Response[Any]:
    """Resend (Svix-signed) email events."""
    try:
        event_id = gate.resend.verify(request.headers, body)
    except VerificationFailed as failure:
        return _rejected(gate, Provider.RESEND, failure)
    return await _take(gate, Provider.RESEND, body, event_id)


async def _shared_secret(
    request: Request[Any, Any, Any],
    body: bytes,
    gate: WebhookGate,
    provider: Provider,
    token: str | None,
) -> Response[Any]:
    verifier = gate.timelinesai if provider is Provider.TIMELINESAI else gate.instantly
    try:
        verifier.verify(request.headers, token)
    except VerificationFailed as failure:
        return _rejected(gate, provider, failure)
    return await _take(gate, provider, body, None)


@post("/timelinesai", operation_id="receiveTimelinesaiWebhook")
async def timelinesai(request: Request[Any, Any, Any], body: RawBody, gate: Gate) -> Response[Any]:
    """TimelinesAI WhatsApp events, the secret in the `X-Webhook-Secret` header."""
    return await _shared_secret(request, body, gate, Provider.TIMELINESAI, None)


@post(
    "/timelinesai/{token:str}",
    operation_id="receiveTimelinesaiWebhookWithToken",
)
async def timelinesai_token(
    request: Request[Any, Any, Any], body: RawBody, gate: Gate, token: FromPath[str]
) -> Response[Any]:
    """TimelinesAI WhatsApp events, the secret in the URL path (TimelinesAI sends no headers)."""
    return await _shared_secret(request, body, gate, Provider.TIMELINESAI, token)


@post("/instantly", operation_id="receiveInstantlyWebhook")
async def instantly(request: Request[Any, Any, Any], body: RawBody, gate: Gate) -> Response[Any]:
    """Instantly cold-email events, the secret in the custom `X-Webhook-Secret` header."""
    return await _shared_secret(request, body, gate, Provider.INSTANTLY, None)


def webhook_router(gate: WebhookGate) -> Router:
    """The `/webhooks` routes, bound to `gate`, with the 1 MB body limit."""
    return Router(
        path="/webhooks",
        route_handlers=[resend, timelinesai, timelinesai_token, instantly],
        dependencies={"gate": Provide(lambda: gate, use_cache=True, sync_to_thread=False)},
        request_max_body_size=MAX_WEBHOOK_BODY,
        tags=["webhooks"],
    )
