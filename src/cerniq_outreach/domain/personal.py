"""Which fields of which events hold personal data, and how to split them out and back.

Personal data (names, phone numbers, email addresses, reply texts) is stored encrypted with a
key per lead, so that erasing a person destroys the key and leaves the history's shape intact
(crypto-shredding). This module only knows *where* the personal fields are; encryption is an
adapter's job.
"""

from __future__ import annotations

from typing import Any

ERASED = "[erased]"
# Stands in the stored (public) payload where a personal value was taken out.
SEALED = "[sealed]"

# event type -> paths of personal fields in its JSON payload.
PERSONAL_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "LeadEnrolled": (
        ("company", "name"),
        ("company", "phone"),
        ("company", "email"),
        ("company", "contact_name"),
    ),
    "ReplyReceived": (("text_preview",),),
}


def has_personal_data(event_type: str) -> bool:
    """Whether events of this type carry personal fields."""
    return event_type in PERSONAL_FIELDS


def split(event_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (payload with personal values replaced by SEALED, those values by dotted path).

    Fields that are None stay None and are left out of the personal part.
    """
    paths = PERSONAL_FIELDS.get(event_type, ())
    if not paths:
        return payload, {}
    public = _copy(payload)
    personal: dict[str, Any] = {}
    for path in paths:
        parent = _parent(public, path)
        if parent is None or parent.get(path[-1]) is None:
            continue
        personal[".".join(path)] = parent[path[-1]]
        parent[path[-1]] = SEALED
    return public, personal


def merge(
    event_type: str, public: dict[str, Any], personal: dict[str, Any] | None
) -> dict[str, Any]:
    """Put personal values back where SEALED stands.

    With `personal` None (the key was destroyed), or a value missing from it, the field
    reads ERASED.
    """
    paths = PERSONAL_FIELDS.get(event_type, ())
    if not paths:
        return public
    payload = _copy(public)
    for path in paths:
        parent = _parent(payload, path)
        if parent is None or parent.get(path[-1]) != SEALED:
            continue
        value = None if personal is None else personal.get(".".join(path))
        parent[path[-1]] = ERASED if value is None else value
    return payload


def _parent(payload: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = payload
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _copy(payload: dict[str, Any]) -> dict[str, Any]:
    # Only the nested dicts on personal paths are changed; copy those levels.
    return {k: dict(v) if isinstance(v, dict) else v for k, v in payload.items()}
