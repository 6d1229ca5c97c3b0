"""The sandbox's webhooks, shaped and authenticated as each provider sends them.

Shapes follow `providers.md`; header names are lowercase, as an ASGI server hands them over.

- TimelinesAI signs nothing: the shared secret travels in the `x-webhook-secret` header.
- Instantly signs nothing either: the secret is the custom header configured on its webhook.
- Resend delivers through Svix: `svix-id`, `svix-timestamp` and `svix-signature`, the
  signature being base64 HMAC-SHA256 over `"{svix-id}.{svix-timestamp}.{raw body}"` keyed with
  the base64-decoded part of the secret after `whsec_`. Svix stamps each delivery attempt with
  the time of the attempt (that is what lets a retry hours later pass the five-minute check),
  so `svix-timestamp` is the emission time while the body's `created_at` is when it happened.

Signing is written here rather than imported from the webhook intake on purpose: the sandbox
plays the provider, and a shared helper would let a defect in it sign and verify alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from cerniq_outreach.adapters.channels.sandbox_core import Webhook

SECRET_HEADER: Final = "x-webhook-secret"  # noqa: S105 - a header name, not a secret
_JSON: Final = {"content-type": "application/json"}
_encoder = msgspec.json.Encoder()


def svix_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64 signature>` entry Svix sends for this body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def shared_secret_webhook(provider: str, secret: str, payload: dict[str, Any]) -> Webhook:
    """A TimelinesAI or Instantly POST: JSON authenticated by the shared-secret header."""
    return provider, {**_JSON, SECRET_HEADER: secret}, _encoder.encode(payload)


def resend_webhook(
    secret: str, *, msg_id: str, attempted_at: datetime, payload: dict[str, Any]
) -> Webhook:
    """A Resend POST, signed by Svix at `attempted_at`."""
    body = _encoder.encode(payload)
    stamp = int(attempted_at.timestamp())
    headers = {
        **_JSON,
        "svix-id": msg_id,
        "svix-timestamp": str(stamp),
        "svix-signature": svix_signature(secret, msg_id, stamp, body),
    }
    return "resend", headers, body


def timelinesai_time(at: datetime) -> str:
    """TimelinesAI's timestamp format, `YYYY-MM-DD HH:MM:SS +0000`."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S %z")


def iso_time(at: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as Instantly and Resend write times."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def timelinesai_message(
    event_type: str,
    *,
    at: datetime,
    uid: str,
    chat_id: str,
    lead_phone: str,
    our_phone: str,
    text: str,
    from_me: bool,
    status: str | None = None,
    reply_to_uid: str | None = None,
) -> dict[str, Any]:
    """A TimelinesAI message event (`message:received:new`, `message:sent:new`, a status).

    *Unconfirmed*: the documentation shows no delivery or read report. The sandbox sends them
    as a message event about our own message (`direction: "sent"`) carrying `status`
    (`delivered`, `read`), the field `GET /messages/{uid}` answers with.
    """
    sender, recipient = (our_phone, lead_phone) if from_me else (lead_phone, our_phone)
    message: dict[str, Any] = {
        "message_uid": uid,
        "text": text,
        "direction": "sent" if from_me else "received",
        "from_me": from_me,
        "timestamp": timelinesai_time(at),
        "sender": {"phone": sender},
        "recipient": {"phone": recipient},
        "reply_to_uid": reply_to_uid,
        "attachments": [],
    }
    if status is not None:
        message["status"] = status
    return {
        "event_type": event_type,
        "chat": {"chat_id": chat_id, "phone": lead_phone, "is_group": False},
        "whatsapp_account": {"phone": our_phone},
        "message": message,
    }


def digest_key(*parts: str) -> str:
    """A short stable digest (for keys that would otherwise hold message text)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]
