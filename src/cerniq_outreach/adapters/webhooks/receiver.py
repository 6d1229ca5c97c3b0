"""Provider webhooks received in process: verified exactly as over HTTP, then taken in.

The sandbox provider delivers its simulated webhooks to a `WebhookSink`; `WebhookReceiver`
is that sink in the engine. It checks each webhook with the verifiers the HTTP routes use
(Svix signature for Resend, the shared secret for TimelinesAI and Instantly) before the
intake reads anything, so a sandbox event takes the path a real one takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cerniq_outreach.application.webhook_events import Provider

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.adapters.webhooks.verify import SharedSecretVerifier, SvixVerifier
    from cerniq_outreach.application.webhooks import IntakeOutcome, WebhookIntake


class WebhookReceiver:
    """Verify, then hand to the intake; raises `VerificationFailed` or `ShapeError`."""

    def __init__(
        self,
        intake: WebhookIntake,
        *,
        resend: SvixVerifier,
        timelinesai: SharedSecretVerifier,
        instantly: SharedSecretVerifier,
    ) -> None:
        self.intake = intake
        self.resend = resend
        self.timelinesai = timelinesai
        self.instantly = instantly

    def __call__(self, provider: str, headers: Mapping[str, str], body: bytes) -> None:
        """The `WebhookSink` signature: take one webhook."""
        self.receive(Provider(provider), headers, body)

    def receive(self, provider: Provider, headers: Mapping[str, str], body: bytes) -> IntakeOutcome:
        """Verify one webhook and take it in (recorded once, processed by a job)."""
        event_id = None
        if provider is Provider.RESEND:
            event_id = self.resend.verify(headers, body)
        elif provider is Provider.TIMELINESAI:
            self.timelinesai.verify(headers)
        else:
            self.instantly.verify(headers)
        return self.intake.accept(provider, body, event_id=event_id)
