"""Lawful basis for marketing outreach: what a lead agreed to, and what a tenant's policy allows.

Each lead records, per channel family (WhatsApp, email), the basis on which it may be
contacted (consent, existing customer, legitimate interest), with evidence, source and time.
A tenant's `ConsentPolicy` says which bases open which family; `check_consent` refuses a send
the policy does not allow and says why. Withdrawing consent is not a record here: it is an
opt-out, and goes to the suppression list.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from cerniq_outreach.domain.enums import Channel, LawfulBasis, OptOutScope, opt_out_scope_of
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand

if TYPE_CHECKING:
    from collections.abc import Iterable

CONSENTABLE_FAMILIES = frozenset({OptOutScope.WHATSAPP, OptOutScope.EMAIL})
"""Channel families that need a lawful basis; `OptOutScope.ALL` is an opt-out scope only."""

ConsentRefusalCode = Literal["NO_LAWFUL_BASIS", "BASIS_NOT_ALLOWED", "CHANNEL_NOT_CONSENTABLE"]
"""Why a send was refused: no basis recorded, a basis the policy does not accept, or a
channel family for which the policy accepts no basis at all."""


def _default_allowed() -> dict[OptOutScope, frozenset[LawfulBasis]]:
    """The default policy table (see `ConsentPolicy`)."""
    return {
        OptOutScope.EMAIL: frozenset({LawfulBasis.CONSENT, LawfulBasis.EXISTING_CUSTOMER}),
        OptOutScope.WHATSAPP: frozenset(
            {LawfulBasis.CONSENT, LawfulBasis.EXISTING_CUSTOMER, LawfulBasis.LEGITIMATE_INTEREST}
        ),
    }


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The basis on which one lead may be contacted on one channel family.

    Attributes:
        channel_family: `OptOutScope.WHATSAPP` or `OptOutScope.EMAIL` (never ALL: a basis
            is recorded per family).
        basis: The lawful basis.
        evidence: What proves it (form submission id, invoice number, import line …).
        source: Where it came from (web form, CRM export, trade fair list …).
        collected_at: When it was collected; time-zone aware, so records compare safely.
    """

    channel_family: OptOutScope
    basis: LawfulBasis
    evidence: str
    source: str
    collected_at: datetime

    def __post_init__(self) -> None:
        """Refuse a family that takes no basis and a time without a zone."""
        if self.channel_family not in CONSENTABLE_FAMILIES:
            raise InvalidCommand(
                f"a lawful basis is recorded for WHATSAPP or EMAIL, not {self.channel_family}"
            )
        # Naive and aware datetimes cannot be compared; finding the latest record would fail.
        if self.collected_at.utcoffset() is None:
            raise InvalidCommand("collected_at of a consent record needs a time zone")


class ConsentPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's table of which lawful bases allow which channel family.

    The default follows Romanian law (Law 506/2004 on electronic communications and the
    GDPR): marketing email needs prior consent, for businesses too, except towards existing
    customers, so EMAIL allows CONSENT and EXISTING_CUSTOMER only. WHATSAPP allows CONSENT,
    EXISTING_CUSTOMER and LEGITIMATE_INTEREST; that is a tenant decision, and a stricter
    tenant removes LEGITIMATE_INTEREST from it. A family missing from the table, or mapped
    to an empty set, cannot be used for marketing at all.

    Attributes:
        allowed: Bases accepted per family; keys are WHATSAPP and EMAIL only. Treat it as
            read-only: the policy is shared.
    """

    allowed: Mapping[OptOutScope, frozenset[LawfulBasis]] = msgspec.field(
        default_factory=_default_allowed
    )

    def __post_init__(self) -> None:
        """Refuse keys that are not channel families."""
        wrong = sorted(set(self.allowed) - CONSENTABLE_FAMILIES)
        if wrong:
            raise ConfigurationError(
                f"a consent policy maps WHATSAPP and EMAIL only, not {', '.join(wrong)}"
            )

    def bases_for(self, family: OptOutScope) -> frozenset[LawfulBasis]:
        """The bases that allow marketing on `family` (empty: none does)."""
        return self.allowed.get(family, frozenset())


DEFAULT_CONSENT_POLICY = ConsentPolicy()
"""The default policy: EMAIL on CONSENT or EXISTING_CUSTOMER; WHATSAPP on any basis."""


class ConsentRefusal(msgspec.Struct, frozen=True, kw_only=True):
    """Why a send has no lawful basis; `code` is stable, `message` is for people."""

    code: ConsentRefusalCode
    message: str


def check_consent(
    policy: ConsentPolicy, records: Iterable[ConsentRecord], channel: Channel
) -> ConsentRefusal | None:
    """Return why `channel` may not be used for marketing to this lead, or None if it may.

    WHATSAPP is judged on the lead's WHATSAPP records, EMAIL_COLD and EMAIL_WARM on its
    EMAIL records. PHONE and MANUAL are a person talking to a person, not marketing sent by
    the engine: they need no basis here and always pass (suppression still applies).

    Only the latest record of the family counts (by `collected_at`; on a tie, the one that
    comes later in `records`), so a newer basis replaces an older one, in either direction.

    Args:
        policy: The tenant's consent policy.
        records: Every consent record of the lead, in the order they were recorded.
        channel: The channel of the message about to be sent.

    Returns:
        None if the policy allows the send, otherwise the refusal.
    """
    family = opt_out_scope_of(channel)
    if family is None:
        return None
    allowed = policy.bases_for(family)
    if not allowed:
        return ConsentRefusal(
            code="CHANNEL_NOT_CONSENTABLE",
            message=f"the consent policy allows no lawful basis for {family}: {channel} is off",
        )
    latest: ConsentRecord | None = None
    for record in records:
        if record.channel_family is family and (
            latest is None or record.collected_at >= latest.collected_at
        ):
            latest = record
    accepted = ", ".join(sorted(allowed))
    if latest is None:
        return ConsentRefusal(
            code="NO_LAWFUL_BASIS",
            message=f"no lawful basis recorded for {family}; {channel} needs one of {accepted}",
        )
    if latest.basis not in allowed:
        return ConsentRefusal(
            code="BASIS_NOT_ALLOWED",
            message=(
                f"the lead's basis for {family} is {latest.basis} (source: {latest.source}),"
                f" which the consent policy does not accept for {channel}; it needs one of"
                f" {accepted}"
            ),
        )
    return None
