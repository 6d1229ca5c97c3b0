"""Webhook verification: run on the raw bytes before anything of the body is read.

Resend delivers through Svix. The scheme, from the providers' documentation: the headers
`svix-id`, `svix-timestamp` (Unix seconds) and `svix-signature`, which holds one or more
space-separated `v1,<base64 HMAC-SHA256>` entries (several while a secret rotates); the HMAC
is over `"{svix-id}.{svix-timestamp}.{raw body}"`, keyed with the base64-decoded part of the
secret after `whsec_`; a timestamp more than five minutes off either way is refused (replay
protection).

Written here (about twenty lines on `hmac`) rather than taken from the `svix` or
`standardwebhooks` packages: both read the wall clock inside `verify`, while the tolerance
must be judged against the injected Clock port (the demo's simulated time, exact tests), and
`svix` would bring a whole API client along. The scheme is checked against the published
Svix test vector in tests/unit/test_webhook_verify.py.

TimelinesAI and Instantly sign nothing: each endpoint is protected by a shared secret, which
TimelinesAI sends in the URL path (`/webhooks/timelinesai/<secret>`) or the
`X-Webhook-Secret` header, and Instantly in the custom header configured on its webhook
(`X-Webhook-Secret`). Every comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import Clock

TOLERANCE: Final = timedelta(minutes=5)
SECRET_HEADER: Final = "x-webhook-secret"  # noqa: S105 - a header name, not a secret
"""The header that carries the shared secret of TimelinesAI and Instantly (case-insensitive)."""
_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format prefix, not a secret
_MAX_SIGNATURE_HEADER: Final = 4096  # a few rotated signatures fit; more is an attack


class VerificationFailed(Exception):
    """The request is not from the provider; `reason` is a short label for the metric."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _secret_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret (a secret without the prefix is taken whole)."""
    try:
        return base64.b64decode(secret.removeprefix(_SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a Svix secret is base64 after 'whsec_'") from exc


def svix_signature(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `v1,<signature>` entry Svix sends for this message (also used to sign in tests)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class SvixVerifier:
    """Verifies Resend (Svix) webhooks against one or more secrets (rotation on our side)."""

    def __init__(self, secrets: str | tuple[str, ...] | None, clock: Clock) -> None:
        raw = (secrets,) if isinstance(secrets, str) else tuple(secrets or ())
        self._keys = tuple(_secret_bytes(s) for s in raw)  # a malformed secret fails at start
        self._clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the `svix-id` (the event's identity) or raise `VerificationFailed`."""
        if not self._keys:
            raise VerificationFailed("not_configured")
        msg_id = headers.get("svix-id")
        stamp = headers.get("svix-timestamp")
        signatures = headers.get("svix-signature")
        if not msg_id or not stamp or not signatures:
            raise VerificationFailed("missing_headers")
        if len(signatures) > _MAX_SIGNATURE_HEADER:
            raise VerificationFailed("bad_signature")
        try:
            seconds = int(stamp)
        except ValueError:
            raise VerificationFailed("bad_timestamp") from None
        now = self._clock.now().timestamp()
        if abs(now - seconds) > TOLERANCE.total_seconds():
            raise VerificationFailed("stale_timestamp")
        signed = f"{msg_id}.{stamp}.".encode() + body
        expected = [
            base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in self._keys
        ]
        for entry in signatures.split(" "):
            version, _, signature = entry.partition(",")
            if version != "v1":
                continue  # other schemes (v1a: asymmetric) are not ours
            given = signature.encode()
            # Compare with every key without stopping early: the time taken says nothing.
            if any([hmac.compare_digest(given, e) for e in expected]):  # noqa: C419
                return msg_id
        raise VerificationFailed("bad_signature")


class SharedSecretVerifier:
    """Checks a shared secret sent in a header or in the URL path, in constant time."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret.encode() if secret else None

    def verify(self, headers: Mapping[str, str], path_token: str | None = None) -> None:
        """Pass, or raise `VerificationFailed`; the path token wins over the header."""
        if self._secret is None:
            raise VerificationFailed("not_configured")
        given = path_token if path_token is not None else headers.get(SECRET_HEADER)
        if not given:
            raise VerificationFailed("missing_secret")
        if not hmac.compare_digest(given.encode(), self._secret):
            raise VerificationFailed("bad_secret")
