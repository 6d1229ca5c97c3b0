"""The tenant's suppression list: phones, addresses and whole email domains never contacted.

It is fed by opt-outs, unsubscribes, complaints, hard bounces, imports and people, and is
checked before every send on every channel. Entries hold normalised values (E.164 phones,
lowercased addresses and domains), and lookups normalise what they are given, so a contact
written in any form matches its entry.
"""

from __future__ import annotations

# Mapping and datetime stay runtime imports: msgspec resolves the Struct annotations.
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from cerniq_outreach.domain.contacts import (
    InvalidContact,
    email_domain,
    normalize_domain,
    normalize_email,
    normalize_phone,
)
from cerniq_outreach.domain.enums import Channel

if TYPE_CHECKING:
    from collections.abc import Iterable

SuppressionKind = Literal["phone", "email", "domain"]
"""What an entry's value is: an E.164 phone, an email address or an email domain."""

SuppressionReason = Literal[
    "OPT_OUT", "UNSUBSCRIBE", "COMPLAINT", "HARD_BOUNCE", "IMPORT", "MANUAL"
]
"""Why a contact was suppressed."""

_NORMALIZERS = {"phone": normalize_phone, "email": normalize_email, "domain": normalize_domain}


class SuppressionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One suppressed phone, address or domain.

    `value` must already be normalised (use `phone_entry`, `email_entry`, `domain_entry`):
    lookups are exact, so an entry stored in another form would never match.

    Attributes:
        kind: What `value` is.
        value: The E.164 phone, lowercased address, or lowercased domain without ``@``.
        reason: Why it was suppressed.
        added_at: When it was suppressed.
    """

    kind: SuppressionKind
    value: str
    reason: SuppressionReason
    added_at: datetime

    def __post_init__(self) -> None:
        """Refuse a value that is not in its normal form."""
        normal = _NORMALIZERS[self.kind](self.value)
        if normal != self.value:
            raise InvalidContact(
                f"suppressed {self.kind} {self.value!r} is not normalised ({normal!r}); "
                f"build it with {self.kind}_entry"
            )


def phone_entry(
    raw: str, *, reason: SuppressionReason, added_at: datetime, default_country_code: str = "40"
) -> SuppressionEntry:
    """Suppress a phone written in any form `normalize_phone` reads.

    Raises:
        InvalidContact: `raw` is not a phone number.
    """
    return SuppressionEntry(
        kind="phone",
        value=normalize_phone(raw, default_country_code),
        reason=reason,
        added_at=added_at,
    )


def email_entry(raw: str, *, reason: SuppressionReason, added_at: datetime) -> SuppressionEntry:
    """Suppress one email address (any case; stored lowercased).

    Raises:
        InvalidContact: `raw` is not an email address.
    """
    return SuppressionEntry(
        kind="email", value=normalize_email(raw), reason=reason, added_at=added_at
    )


def domain_entry(raw: str, *, reason: SuppressionReason, added_at: datetime) -> SuppressionEntry:
    """Suppress every address in a domain and its subdomains ("agro.ro" or "@Agro.ro").

    Raises:
        InvalidContact: `raw` is not a domain with at least one dot.
    """
    return SuppressionEntry(
        kind="domain", value=normalize_domain(raw), reason=reason, added_at=added_at
    )


class SuppressionList(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's suppression entries, indexed by kind and value for constant-time lookups.

    Build it with `SuppressionList.from_entries`. When one value is suppressed more than once
    the earliest entry is kept: it says since when and first why the contact is off limits.

    Attributes:
        phones: Entries by E.164 number.
        emails: Entries by lowercased address.
        domains: Entries by lowercased domain.
    """

    phones: Mapping[str, SuppressionEntry] = msgspec.field(default_factory=dict)
    emails: Mapping[str, SuppressionEntry] = msgspec.field(default_factory=dict)
    domains: Mapping[str, SuppressionEntry] = msgspec.field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[SuppressionEntry]) -> SuppressionList:
        """Index `entries`; for a repeated value the earliest `added_at` wins (ties: first)."""
        index: dict[SuppressionKind, dict[str, SuppressionEntry]] = {
            "phone": {},
            "email": {},
            "domain": {},
        }
        for entry in entries:
            by_value = index[entry.kind]
            kept = by_value.get(entry.value)
            if kept is None or entry.added_at < kept.added_at:
                by_value[entry.value] = entry
        return cls(phones=index["phone"], emails=index["email"], domains=index["domain"])

    def with_entries(self, entries: Iterable[SuppressionEntry]) -> SuppressionList:
        """A new list with `entries` added (this one is unchanged)."""
        return SuppressionList.from_entries([*self.entries(), *entries])

    def entries(self) -> list[SuppressionEntry]:
        """Every entry: phones, then emails, then domains."""
        return [*self.phones.values(), *self.emails.values(), *self.domains.values()]

    def __len__(self) -> int:
        return len(self.phones) + len(self.emails) + len(self.domains)


def check_suppression(
    suppression: SuppressionList, *, phone: str | None, email: str | None
) -> SuppressionEntry | None:
    """Return the entry that suppresses this phone or email, or None if neither is.

    Both are normalised first, so any written form matches. An email is suppressed by an
    entry for the address, or by a domain entry for its domain or any parent domain with
    at least one dot: "agro.ro" suppresses "x@agro.ro" and "x@mail.agro.ro", but not
    "x@xagro.ro" (matching is by whole labels, never by trailing letters).

    The most specific match is returned: phone, then address, then the domain from the
    longest to the shortest.

    Args:
        suppression: The tenant's suppression list.
        phone: The lead's phone in any form, or None.
        email: The lead's email in any case, or None.

    Raises:
        InvalidContact: A given contact cannot be normalised (nothing can be sent to it).
    """
    if phone is not None:
        entry = suppression.phones.get(normalize_phone(phone))
        if entry is not None:
            return entry
    if email is not None:
        entry = suppression.emails.get(normalize_email(email))
        if entry is not None:
            return entry
        labels = email_domain(email).split(".")
        # Stop before the last label: a domain entry always has a dot, so "ro" cannot match.
        for start in range(len(labels) - 1):
            entry = suppression.domains.get(".".join(labels[start:]))
            if entry is not None:
                return entry
    return None


def suppresses(
    suppression: SuppressionList,
    channel: Channel,
    phone: str | None = None,
    email: str | None = None,
) -> SuppressionEntry | None:
    """Return the entry that stops a send on `channel`, checking only the contact it uses.

    WHATSAPP and PHONE reach the phone, EMAIL_COLD and EMAIL_WARM the address. A MANUAL
    message may go either way, so both are checked. A suppressed email does not stop a
    WhatsApp message: an opt-out that covers every channel puts both contacts on the list.

    Returns:
        The suppressing entry (truthy), or None when the send may go ahead.

    Raises:
        InvalidContact: The contact the channel uses cannot be normalised.
    """
    if channel in (Channel.WHATSAPP, Channel.PHONE):
        return check_suppression(suppression, phone=phone, email=None)
    if channel in (Channel.EMAIL_COLD, Channel.EMAIL_WARM):
        return check_suppression(suppression, phone=None, email=email)
    return check_suppression(suppression, phone=phone, email=email)
