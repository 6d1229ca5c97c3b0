"""What the sandbox provider is configured with: outcome rates, delays and webhook secrets.

Rates are probabilities, each conditional on the step before it (a message can only be read
once delivered, clicked once opened); the defaults make a lively demo, not a realistic
forecast. Each channel has only the outcomes its provider reports by webhook (`providers.md`):

- WhatsApp (TimelinesAI): delivered, read, replies. An opt-out or a complaint on WhatsApp is a
  reply ("STOP", "spam!"), so it lives in the reply mix; a number not on WhatsApp is refused
  at send (`InvalidRecipient`).
- Cold email (Instantly): bounces, opens, clicks, replies (an out-of-office one comes as an
  auto-reply), and unsubscribes through Instantly's link. Instantly reports no delivery, and
  has no complaint event: a complaint is a reply.
- Warm email (Resend): delivered, bounces, opens, clicks and spam complaints. Replies to a
  warm email reach the reply-to mailbox and one-click unsubscribes our own endpoint; neither
  passes through Resend's webhooks, so the sandbox produces neither.
"""

from __future__ import annotations

import base64
import math
import random
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Final

import msgspec

from cerniq_outreach.adapters.channels.reply_corpus import ReplyKind

WebhookSink = Callable[[str, Mapping[str, str], bytes], None]
"""Where the sandbox POSTs: (provider name, headers with lowercase names, raw body bytes).

The composition root connects it to the webhook intake, so sandbox events are verified,
deduplicated and processed by the same code as the real providers' webhooks.
"""

_HOUR: Final = 3600.0
_DAY: Final = 24 * _HOUR


def _require_probability(owner: object, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"{type(owner).__name__}.{name} must be within 0..1, not {value!r}")


def _require_probabilities(owner: msgspec.Struct, *names: str) -> None:
    for name in names:
        _require_probability(owner, name, getattr(owner, name))


class Delay(msgspec.Struct, frozen=True, kw_only=True):
    """A simulated delay drawn uniformly from `min_seconds` to `max_seconds`."""

    min_seconds: float
    max_seconds: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.min_seconds <= self.max_seconds and math.isfinite(self.max_seconds)):
            raise ValueError(
                f"a delay needs 0 <= min <= max, not {self.min_seconds}..{self.max_seconds}"
            )

    def draw(self, rng: random.Random) -> timedelta:
        """One delay, whole seconds (provider timestamps have second precision)."""
        return timedelta(seconds=round(rng.uniform(self.min_seconds, self.max_seconds)))


class ReplyMix(msgspec.Struct, frozen=True, kw_only=True):
    """Relative weights of the reply kinds (they need not sum to 1)."""

    positive: float = 0.30
    neutral: float = 0.22
    negative: float = 0.18
    opt_out: float = 0.10
    complaint: float = 0.04
    out_of_office: float = 0.10
    wrong_person: float = 0.06

    def __post_init__(self) -> None:
        weights = self.weights()
        if any(not (w >= 0.0 and math.isfinite(w)) for w in weights.values()):
            raise ValueError("reply weights must be finite and not negative")
        if sum(weights.values()) <= 0.0:
            raise ValueError("at least one reply kind needs a positive weight")

    def weights(self) -> dict[ReplyKind, float]:
        """The weight of every kind."""
        return {kind: float(getattr(self, kind.value)) for kind in ReplyKind}

    def choose(self, rng: random.Random) -> ReplyKind:
        """A kind drawn with these weights."""
        weights = self.weights()
        return rng.choices(list(weights), weights=list(weights.values()))[0]


class WhatsAppRates(msgspec.Struct, frozen=True, kw_only=True):
    """Outcomes of a WhatsApp message (TimelinesAI)."""

    not_on_whatsapp: float = 0.04
    """Share of recipients refused at send; a number keeps its fate (seeded by the number)."""
    delivered: float = 0.96
    read: float = 0.80
    """Of the delivered messages."""
    replied: float = 0.35
    """Of the read messages: people answer what they read."""
    reply_mix: ReplyMix = msgspec.field(default_factory=ReplyMix)
    delivery_delay: Delay = Delay(min_seconds=2, max_seconds=120)
    read_delay: Delay = Delay(min_seconds=60, max_seconds=6 * _HOUR)
    reply_delay: Delay = Delay(min_seconds=120, max_seconds=_DAY)

    def __post_init__(self) -> None:
        _require_probabilities(self, "not_on_whatsapp", "delivered", "read", "replied")


class ColdEmailRates(msgspec.Struct, frozen=True, kw_only=True):
    """Outcomes of a lead handed to an Instantly campaign (its first email)."""

    bounced: float = 0.05
    """Hard bounces only: Instantly's payload documents no bounce kind (*unconfirmed*), and the
    intake reads every `email_bounced` as hard, so a soft one would be misread."""
    opened: float = 0.50
    """Of the emails that did not bounce."""
    clicked: float = 0.15
    """Of the opened emails."""
    replied: float = 0.15
    """Of the emails that did not bounce."""
    unsubscribed: float = 0.02
    """Of the emails that got no reply (the unsubscribe link in the footer)."""
    reply_mix: ReplyMix = msgspec.field(default_factory=ReplyMix)
    send_delay: Delay = Delay(min_seconds=60, max_seconds=2 * _HOUR)
    """From the hand-over to Instantly to the email leaving (its campaign schedule)."""
    engagement_delay: Delay = Delay(min_seconds=300, max_seconds=8 * _HOUR)
    reply_delay: Delay = Delay(min_seconds=600, max_seconds=2 * _DAY)

    def __post_init__(self) -> None:
        _require_probabilities(self, "bounced", "opened", "clicked", "replied", "unsubscribed")


class WarmEmailRates(msgspec.Struct, frozen=True, kw_only=True):
    """Outcomes of a warm email (Resend)."""

    bounced_hard: float = 0.01
    bounced_soft: float = 0.01
    opened: float = 0.65
    """Of the delivered emails."""
    clicked: float = 0.25
    """Of the opened emails."""
    complained: float = 0.01
    """Of the delivered emails (the recipient pressed "report spam")."""
    delivery_delay: Delay = Delay(min_seconds=1, max_seconds=60)
    engagement_delay: Delay = Delay(min_seconds=120, max_seconds=6 * _HOUR)

    def __post_init__(self) -> None:
        _require_probabilities(
            self, "bounced_hard", "bounced_soft", "opened", "clicked", "complained"
        )
        _require_probability(
            self, "bounced_hard + bounced_soft", self.bounced_hard + self.bounced_soft
        )


class SandboxRates(msgspec.Struct, frozen=True, kw_only=True):
    """The sandbox's outcome rates per channel; `echoes` also sends our own sends back.

    Real providers echo our outbound messages (TimelinesAI `message:sent:new`, Instantly
    `email_sent`, Resend `email.sent`); the intake must skip them, so the sandbox sends them
    too unless told not to.
    """

    whatsapp: WhatsAppRates = msgspec.field(default_factory=WhatsAppRates)
    cold_email: ColdEmailRates = msgspec.field(default_factory=ColdEmailRates)
    warm_email: WarmEmailRates = msgspec.field(default_factory=WarmEmailRates)
    echoes: bool = True


class SandboxSecrets(msgspec.Struct, frozen=True, kw_only=True):
    """The webhook secrets the sandbox authenticates with; give the intake the same ones.

    `timelinesai` and `instantly` are shared secrets sent in the `x-webhook-secret` header;
    `resend` is a Svix signing secret, `whsec_` followed by base64.
    """

    timelinesai: str
    instantly: str
    resend: str

    def __post_init__(self) -> None:
        if not self.resend.startswith("whsec_"):
            raise ValueError("the Resend secret is a Svix secret: 'whsec_' and base64")
        base64.b64decode(self.resend.removeprefix("whsec_"), validate=True)

    def __repr__(self) -> str:
        return "SandboxSecrets(<redacted>)"

    @classmethod
    def generate(cls) -> SandboxSecrets:
        """Fresh random secrets (the embedded default, when none are configured)."""
        return cls(
            timelinesai=secrets.token_urlsafe(24),
            instantly=secrets.token_urlsafe(24),
            resend="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        )
