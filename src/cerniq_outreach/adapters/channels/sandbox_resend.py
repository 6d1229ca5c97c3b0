"""The sandbox's warm email: the `WarmEmailChannel` port, answering as Resend would.

Every call is counted by message id. Idempotency follows Resend: a repeated key within 24
hours returns the first response and sends nothing (so `sends()` rises while the mail goes out
once); after 24 hours the key is forgotten and the same call sends again, as it would live. A
batch has its own key, so a message sent alone and then in a batch goes out twice, which is
what the counts are there to catch. An address Resend would refuse (malformed, or a `.invalid`
domain, RFC 2606) raises `InvalidRecipient`; in a batch it fails the whole batch.

A sent email is then delivered or bounces (hard: `Permanent`, soft: `Transient`), and may be
opened, clicked and reported as spam; each arrives as a Svix-signed webhook.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cerniq_outreach.adapters.channels.resend import (
    batch_idempotency_key,
    idempotency_key,
    tag_value,
)
from cerniq_outreach.adapters.channels.sandbox_core import SandboxCore, Webhook
from cerniq_outreach.adapters.channels.sandbox_webhooks import iso_time, resend_webhook
from cerniq_outreach.application.channels import (
    MAX_WARM_BATCH,
    InvalidRecipient,
    SendResult,
    WarmEmail,
)

SANDBOX: Final = "sandbox"
IDEMPOTENCY_WINDOW: Final = timedelta(hours=24)
_LINK: Final = re.compile(r"https?://[^\s\"'<>]+")
_FALLBACK_LINK: Final = "https://example.com/"
_USER_AGENT: Final = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0"


def _sendable(address: str) -> bool:
    local, at, domain = address.partition("@")
    return bool(local and at and "." in domain and not domain.casefold().endswith(".invalid"))


@dataclass(frozen=True, slots=True)
class _Remembered:
    results: tuple[SendResult, ...]
    at: datetime


class SandboxWarmEmail:
    """The `WarmEmailChannel` port in the sandbox."""

    def __init__(self, core: SandboxCore) -> None:
        self._core = core
        self._keys: dict[str, _Remembered] = {}
        self._sent: dict[str, int] = {}  # message id -> emails that actually went out

    def delivered_mails(self, message_id: str) -> int:
        """How many emails actually went out for a message id (idempotent repeats excluded)."""
        with self._core.lock:
            return self._sent.get(message_id, 0)

    def send(self, email: WarmEmail) -> SendResult:
        """Send one email, once per message id within Resend's 24-hour idempotency window."""
        with self._core.lock:
            self._core.count_send(email.message_id)
            key = idempotency_key(email.message_id)
            first = self._remembered(key)
            if first is not None:
                return first[0]
            _require_sendable(email)
            result = self._go_out(email)
            self._keys[key] = _Remembered((result,), self._core.clock.now())
            return result

    def send_batch(self, emails: Sequence[WarmEmail]) -> list[SendResult]:
        """Send up to 100 emails at once; the same message ids in order return the first results.

        Raises:
            ValueError: more than `MAX_WARM_BATCH` emails, or none (as the live adapter).
        """
        if not 0 < len(emails) <= MAX_WARM_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_WARM_BATCH} emails, not {len(emails)}")
        with self._core.lock:
            for email in emails:
                self._core.count_send(email.message_id)
            key = batch_idempotency_key([email.message_id for email in emails])
            first = self._remembered(key)
            if first is not None:
                return list(first)
            for email in emails:  # Resend validates the whole batch before sending any
                _require_sendable(email)
            results = tuple(self._go_out(email) for email in emails)
            self._keys[key] = _Remembered(results, self._core.clock.now())
            return list(results)

    # --- internals (called with the lock held) ------------------------------------------------

    def _remembered(self, key: str) -> tuple[SendResult, ...] | None:
        entry = self._keys.get(key)
        if entry is None or self._core.clock.now() - entry.at >= IDEMPOTENCY_WINDOW:
            return None
        return entry.results

    def _go_out(self, email: WarmEmail) -> SendResult:
        core = self._core
        rates = core.rates.warm_email
        ordinal = self._sent.get(email.message_id, 0) + 1
        self._sent[email.message_id] = ordinal
        email_id = core.make_id("resend", email.message_id, str(ordinal))
        now = core.clock.now()
        rng = core.rng("resend", email.message_id, str(ordinal))
        # Fixed draw order whatever the outcome (see sandbox_whatsapp).
        bounce = rng.random()
        opened = rng.random() < rates.opened
        clicked = rng.random() < rates.clicked
        complained = rng.random() < rates.complained
        delivered_at = now + rates.delivery_delay.draw(rng)
        opened_at = delivered_at + rates.engagement_delay.draw(rng)
        clicked_at = opened_at + rates.engagement_delay.draw(rng)
        complained_at = opened_at + rates.engagement_delay.draw(rng)

        def emit(event_type: str, at: datetime, **extra: Any) -> None:  # noqa: ANN401
            core.schedule(
                at,
                f"resend:{email_id}",
                lambda attempted_at: self._hook(
                    email,
                    email_id,
                    event_type=event_type,
                    at=at,
                    attempted_at=attempted_at,
                    extra=extra,
                ),
            )

        if core.rates.echoes:
            emit("email.sent", now)
        if bounce < rates.bounced_hard + rates.bounced_soft:
            hard = bounce < rates.bounced_hard
            emit("email.bounced", delivered_at, bounce=_bounce(hard=hard))
            return SendResult(provider=SANDBOX, external_id=email_id)
        emit("email.delivered", delivered_at)
        if opened:
            emit("email.opened", opened_at)
            if clicked:
                emit("email.clicked", clicked_at, click=_click(email, clicked_at))
        if complained:
            emit("email.complained", complained_at)
        return SendResult(provider=SANDBOX, external_id=email_id)

    def _hook(
        self,
        email: WarmEmail,
        email_id: str,
        *,
        event_type: str,
        at: datetime,
        attempted_at: datetime,
        extra: dict[str, Any],
    ) -> Webhook:
        created = iso_time(at)
        data: dict[str, Any] = {
            "created_at": created,
            "email_id": email_id,
            "from": email.sender,
            "to": [email.to],
            "subject": email.subject,
            # Sent as [{name, value}]; Resend's webhook events show them as an object.
            "tags": {
                "tenant_id": tag_value(email.tenant_id),
                "lead_id": tag_value(email.lead_id),
                "message_id": tag_value(email.message_id),
            },
            **extra,
        }
        payload = {"type": event_type, "created_at": created, "data": data}
        # One Svix message id per event, the same on every retry of it: the intake's dedupe key.
        msg_id = "msg_" + self._core.make_id("svix", email_id, event_type).replace("-", "")
        return resend_webhook(
            self._core.secrets.resend, msg_id=msg_id, attempted_at=attempted_at, payload=payload
        )


def _require_sendable(email: WarmEmail) -> None:
    if not _sendable(email.to):
        # Resend answers 422 validation_error naming `to`; the live adapter maps it the same.
        raise InvalidRecipient(SANDBOX, "invalid `to` field")


def _bounce(*, hard: bool) -> dict[str, str]:
    if hard:
        return {"type": "Permanent", "subType": "General", "message": "Mailbox does not exist."}
    return {"type": "Transient", "subType": "MailboxFull", "message": "Mailbox is full."}


def _click(email: WarmEmail, at: datetime) -> dict[str, str]:
    found = _LINK.search(email.html or email.text or "")
    return {
        "ipAddress": "203.0.113.7",  # TEST-NET-3: documentation range, never a real client
        "link": found.group(0) if found else _FALLBACK_LINK,
        "timestamp": iso_time(at),
        "userAgent": _USER_AGENT,
    }
