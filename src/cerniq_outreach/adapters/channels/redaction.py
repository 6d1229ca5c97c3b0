"""What provider traffic may show in a log line: no secrets, no personal data.

Request and response bodies are logged for diagnosis, but they hold phone numbers, addresses,
names and message texts, and headers hold API keys. Fields known to be personal are replaced
whole; every other string is still scrubbed of anything shaped like an address or a phone
number, because providers echo them inside free-text error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

REDACTED: Final = "***"

# Field names whose value is personal (or carries a personal token, like email `headers` with
# an unsubscribe link) in any of the three providers' request or response shapes.
PERSONAL_FIELDS: Final = frozenset(
    {
        "bcc",
        "bl_value",
        "bl_values",
        "cc",
        "chat_name",
        "company_name",
        "custom_variables",
        "email",
        "first_name",
        "from",
        "full_name",
        "headers",
        "html",
        "last_name",
        "lead_email",
        "name",
        "personalization",
        "phone",
        "recipient",
        "reply_html",
        "reply_subject",
        "reply_text",
        "reply_to",
        "search",
        "sender",
        "subject",
        "text",
        "to",
        "website",
        "whatsapp_account_phone",
    }
)

# Header names are compared lowercased; any header whose name holds one of these is a secret.
_SECRET_HEADER_PARTS: Final = ("authorization", "key", "token", "secret", "cookie", "signature")

_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# E.164 with its plus, or a bare run of 10-15 digits (a national number with its prefix).
# Shorter runs are left alone so counts, ids and timestamps stay readable.
_PHONE: Final = re.compile(r"\+\s?\d(?:[\s().-]?\d){6,14}|(?<![\w-])\d{10,15}(?![\w-])")


def scrub(text: str) -> str:
    """`text` with anything that looks like an email address or a phone number masked."""
    return _PHONE.sub(REDACTED, _EMAIL.sub(REDACTED, text))


def redact(value: Any) -> Any:  # noqa: ANN401  # any decoded JSON value goes in and comes out
    """A copy of a decoded JSON value that is safe to log."""
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if str(key).lower() in PERSONAL_FIELDS else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request or response headers with every credential masked."""
    return {
        name: REDACTED if any(part in name.lower() for part in _SECRET_HEADER_PARTS) else value
        for name, value in headers.items()
    }
