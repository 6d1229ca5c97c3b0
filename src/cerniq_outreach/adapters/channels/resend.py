"""Warm email through Resend (shapes in `providers.md`).

Exactly once per message: every send carries an `Idempotency-Key` derived from our message
id, and Resend answers a repeated key with the first response without sending again (for 24
hours). That makes sends replay-safe, so `ProviderHttp` may retry them after a timeout.

Tags carry `tenant_id`, `lead_id` and `message_id` so webhook events find their journey.
Resend allows only ASCII letters, digits, `_` and `-` in tag values; other characters become
`_`, so ids made of those characters (UUIDs, ULIDs) come back unchanged.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec

from cerniq_outreach.adapters.channels.http import HttpPolicy, ProviderHttp, convert_reply
from cerniq_outreach.application.channels import (
    MAX_WARM_BATCH,
    SendResult,
    TransientProviderError,
    WarmEmail,
)
from cerniq_outreach.application.ports import Clock, RateLimiter
from cerniq_outreach.domain.rate_limit import RESEND_LIMIT
from cerniq_outreach.settings import ProviderSettings

PROVIDER: Final = "resend"
MAX_IDEMPOTENCY_KEY: Final = 256
_TAG_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")
_MAX_TAG_VALUE: Final = 256
_RECIPIENT_FIELD: Final = re.compile(r"`to`|\bto\b field|recipient", re.IGNORECASE)


def _is_invalid_recipient(status: int, reply: Any) -> bool:  # noqa: ANN401  # decoded JSON
    """Resend rejects a bad address with 422 `validation_error` naming the `to` field."""
    if status != 422 or not isinstance(reply, dict):  # noqa: PLR2004  # Unprocessable Entity
        return False
    message = reply.get("message")
    return isinstance(message, str) and bool(_RECIPIENT_FIELD.search(message))


def _is_retryable(status: int, reply: Any) -> bool:  # noqa: ANN401  # decoded JSON
    """A 409 while the first request with the same key is still running: try again later."""
    name = reply.get("name") if isinstance(reply, dict) else None
    return status == 409 and name == "concurrent_idempotent_requests"  # noqa: PLR2004


def idempotency_key(message_id: str) -> str:
    """The `Idempotency-Key` of a message: readable, and at most 256 characters."""
    key = f"cerniq-email/{message_id}"
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return f"cerniq-email/sha256:{hashlib.sha256(message_id.encode()).hexdigest()}"


def batch_idempotency_key(message_ids: Sequence[str]) -> str:
    """The key of a batch: the same message ids in the same order give the same key."""
    digest = hashlib.sha256("\n".join(message_ids).encode()).hexdigest()
    return f"cerniq-batch/{digest}"


def tag_value(value: str) -> str:
    """`value` made acceptable as a Resend tag value."""
    return _TAG_UNSAFE.sub("_", value)[:_MAX_TAG_VALUE]


def email_json(email: WarmEmail) -> dict[str, Any]:
    """The Resend request body of one email."""
    unsubscribe = f"<{email.unsubscribe_url}>"
    if email.unsubscribe_mailto is not None:
        unsubscribe += f", <mailto:{email.unsubscribe_mailto}>"
    body: dict[str, Any] = {
        "from": email.sender,
        "to": [email.to],
        "subject": email.subject,
        # RFC 8058 one-click unsubscribe: mailbox providers require both headers of bulk
        # senders, and the HTTPS link must accept a POST without further confirmation.
        "headers": {
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "tags": [
            {"name": "tenant_id", "value": tag_value(email.tenant_id)},
            {"name": "lead_id", "value": tag_value(email.lead_id)},
            {"name": "message_id", "value": tag_value(email.message_id)},
        ],
    }
    optional = {"html": email.html, "text": email.text, "reply_to": email.reply_to}
    body.update({name: value for name, value in optional.items() if value is not None})
    return body


class _Sent(msgspec.Struct):
    id: str


class _BatchSent(msgspec.Struct):
    data: list[_Sent]


class ResendChannel:
    """The `WarmEmailChannel` port over Resend."""

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def send(self, email: WarmEmail) -> SendResult:
        """Send one email, at most once per `message_id`."""
        reply = self._http.call(
            "POST",
            "/emails",
            body=email_json(email),
            headers={"Idempotency-Key": idempotency_key(email.message_id)},
        )
        return SendResult(provider=PROVIDER, external_id=convert_reply(PROVIDER, reply, _Sent).id)

    def verify_credentials(self) -> None:
        """One cheap authenticated read (`GET /domains`), for `channels check`.

        *Unconfirmed*: a sending-only key may be refused this call; such a key fails the
        check although it could send.

        Raises:
            ChannelError: `ProviderAuthError` when the key is refused.
        """
        self._http.call("GET", "/domains")

    def send_batch(self, emails: Sequence[WarmEmail]) -> list[SendResult]:
        """Send up to 100 emails in one call, results in order.

        Raises:
            ValueError: more than `MAX_WARM_BATCH` emails, or none.
        """
        if not 0 < len(emails) <= MAX_WARM_BATCH:
            raise ValueError(f"a batch holds 1..{MAX_WARM_BATCH} emails, not {len(emails)}")
        key = batch_idempotency_key([email.message_id for email in emails])
        reply = self._http.call(
            "POST",
            "/emails/batch",
            body=[email_json(email) for email in emails],
            headers={"Idempotency-Key": key},
        )
        sent = convert_reply(PROVIDER, reply, _BatchSent).data
        if len(sent) != len(emails):
            # Resend answers a batch all or nothing; a count that differs is not a success.
            raise TransientProviderError(
                PROVIDER,
                f"batch of {len(emails)} answered with {len(sent)} ids",
                may_have_acted=True,
            )
        return [SendResult(provider=PROVIDER, external_id=item.id) for item in sent]


def resend_channel(
    settings: ProviderSettings,
    rate_limiter: RateLimiter,
    clock: Clock,
    *,
    policy: HttpPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ResendChannel:
    """The live warm-email channel for these settings (the composition root calls this).

    Raises:
        ValueError: the settings hold no API key (the channel then runs in the sandbox).
    """
    if settings.api_key is None:
        raise ValueError("Resend has no API key: use the sandbox channel")
    http = ProviderHttp(
        provider=PROVIDER,
        base_url=settings.base_url,
        api_key=settings.api_key,
        limit=RESEND_LIMIT,
        rate_limiter=rate_limiter,
        clock=clock,
        policy=policy,
        sleep=sleep,
        is_invalid_recipient=_is_invalid_recipient,
        is_retryable=_is_retryable,
    )
    return ResendChannel(http)
