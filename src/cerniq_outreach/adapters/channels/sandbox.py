"""The sandbox provider: TimelinesAI, Instantly and Resend stood in for, in process.

The embedded default and the demo run without provider keys. `SandboxProviders` accepts the
sends of all three channel ports and, on the simulated clock, produces what the providers
would report: deliveries, reads, opens, clicks, replies (texts from the shipped corpus),
bounces, unsubscribes and complaints, at the seeded rates of `SandboxRates`. Each outcome is
POSTed to the `WebhookSink` exactly as its provider would send it, headers and signature
included, so it takes the same path through the webhook intake as a real one.

Nothing happens by itself: `pump()` emits the outcomes that are due, in time order (the demo's
scheduler calls it on every tick; tests call it after moving the clock). Fates are seeded per
message, so a seed replays the same run whatever order messages are sent in.

`sends(key)` counts every send call, idempotent repeats included, so a test can prove the
engine never asked twice: the key is the message id for email, and `whatsapp_key(phone,
text)` for WhatsApp, whose port carries no message id.

Modules: `sandbox_config` (rates, secrets, the sink type), `sandbox_core` (seeds, ids, counts,
the timeline), `sandbox_webhooks` (payload shapes and signing), and one per channel.
"""

from __future__ import annotations

from datetime import datetime

from cerniq_outreach.adapters.channels.reply_corpus import ReplyCorpus, load_corpus
from cerniq_outreach.adapters.channels.sandbox_config import (
    SandboxRates,
    SandboxSecrets,
    WebhookSink,
)
from cerniq_outreach.adapters.channels.sandbox_core import SandboxCore
from cerniq_outreach.adapters.channels.sandbox_instantly import SandboxColdEmail
from cerniq_outreach.adapters.channels.sandbox_resend import SandboxWarmEmail
from cerniq_outreach.adapters.channels.sandbox_whatsapp import SandboxWhatsApp, whatsapp_key
from cerniq_outreach.application.ports import Clock

__all__ = [
    "SandboxProviders",
    "SandboxRates",
    "SandboxSecrets",
    "WebhookSink",
    "whatsapp_key",
]


class SandboxProviders:
    """The three sandbox channels, sharing one seed, one clock and one outcome timeline.

    Attributes:
        whatsapp: implements `WhatsAppChannel`.
        cold_email: implements `ColdEmailChannel`.
        warm_email: implements `WarmEmailChannel`.
        secrets: what the webhooks are authenticated with (give the intake the same).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int,
        deliver: WebhookSink,
        secrets: SandboxSecrets,
        rates: SandboxRates | None = None,
        corpus: ReplyCorpus | None = None,
    ) -> None:
        self._core = SandboxCore(
            clock,
            seed=seed,
            rates=rates if rates is not None else SandboxRates(),
            secrets=secrets,
            corpus=corpus if corpus is not None else load_corpus(),
        )
        self._deliver = deliver
        self.secrets = secrets
        self.whatsapp = SandboxWhatsApp(self._core)
        self.cold_email = SandboxColdEmail(self._core)
        self.warm_email = SandboxWarmEmail(self._core)

    def pump(self, until: datetime | None = None) -> int:
        """POST every outcome due by `until` (default: the clock's now) in time order.

        Returns how many webhooks were delivered. Outcomes scheduled while pumping (the sink
        may answer a reply at once, inline) are delivered too if they are due by then.
        A sink that raises stops the pump and the exception propagates; the outcome it was
        given is not retried, because in the sandbox a refused webhook is a defect to see,
        not weather to ride out.
        """
        horizon = until if until is not None else self._core.clock.now()
        delivered = 0
        while (due := self._core.pop_due(horizon)) is not None:
            # Built at emission: Svix stamps each attempt with the time it is made.
            webhook = due.fire(self._core.clock.now())
            if webhook is None:
                continue  # the outcome no longer applies (a lead paused before its email left)
            provider, headers, body = webhook
            self._deliver(provider, headers, body)
            delivered += 1
        return delivered

    def pending(self) -> int:
        """How many outcomes are scheduled and not yet emitted."""
        return self._core.pending()

    def next_due(self) -> datetime | None:
        """When the next outcome is due, or None."""
        return self._core.next_due()

    def sends(self, key: str) -> int:
        """How many times a send was called for a message id (or a `whatsapp_key`)."""
        return self._core.sends(key)

    def total_sends(self) -> int:
        """Every send call so far, repeats included (each channel's sends together)."""
        return self._core.total_sends()

    def repeated_sends(self) -> dict[str, int]:
        """Every key sent more than once; empty when nothing was ever sent twice."""
        return self._core.repeated()
