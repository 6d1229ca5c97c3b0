"""Enrolment: qualified leads join a sequence, once each.

A lead's id derives from its tenant and its contact (E.164 phone, else email, else fiscal
code and company name), so importing the same contact again finds the same journey: it is
reported as enrolled already and never starts over. That is also how an opted-out contact
stays out: its journey, with the opt-out, is the one the import finds; and a contact who
objected to everything under another lead (same phone or email) is refused
(`ContactSuppression`).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import msgspec

from cerniq_outreach.application.records import Metadata
from cerniq_outreach.domain.commands import Enroll
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import OptOutScope
from cerniq_outreach.domain.errors import AlreadyEnrolled, DomainError
from cerniq_outreach.domain.events import Company

if TYPE_CHECKING:
    from cerniq_outreach.application.catalog import Catalog
    from cerniq_outreach.application.contact_suppression import ContactSuppression
    from cerniq_outreach.application.journeys import JourneyCommands
    from cerniq_outreach.application.ports import Clock

LEAD_NAMESPACE: Final = uuid.UUID("6f1d3c52-8a4e-5b7f-9c21-0e5a7d3b9f10")


class LeadInput(msgspec.Struct, frozen=True, kw_only=True):
    """One qualified lead to enrol: its company and contact, lawful bases, tags.

    `company.phone` is E.164 and `company.email` normalised (the importer's work); `source`
    says where it came from (`leads.csv line 12`), for the audit trail.
    """

    company: Company
    consents: tuple[ConsentRecord, ...] = ()
    tags: tuple[str, ...] = ()
    source: str | None = None


class EnrolOutcome(StrEnum):
    """What enrolment did with one lead."""

    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"
    REFUSED = "refused"


class EnrolResult(msgspec.Struct, frozen=True, kw_only=True):
    """The lead's id and what happened; `detail` says why a lead was refused."""

    lead_id: str
    outcome: EnrolOutcome
    detail: str | None = None


def lead_id_for(tenant_id: str, company: Company) -> str:
    """The lead id of a contact: the same contact of the same tenant, the same id."""
    if company.phone:
        key = f"phone:{company.phone}"
    elif company.email:
        key = f"email:{company.email.casefold()}"
    else:
        key = f"company:{(company.fiscal_code or '').upper()}:{company.name.casefold()}"
    return str(uuid.uuid5(LEAD_NAMESPACE, f"{tenant_id}\x1f{key}"))


class Enrolment:
    """Enrols leads into the catalogue's sequences."""

    def __init__(
        self,
        journeys: JourneyCommands,
        catalog: Catalog,
        clock: Clock,
        *,
        suppression: ContactSuppression | None = None,
    ) -> None:
        self._journeys = journeys
        self._catalog = catalog
        self._clock = clock
        self._suppression = suppression

    def enroll(
        self, tenant_id: str, lead: LeadInput, *, sequence_id: str | None = None, actor: str
    ) -> EnrolResult:
        """Enrol one lead in `sequence_id` (default: the catalogue's default sequence).

        An unknown sequence raises `SequenceError` (a mistake of the caller, not of the
        lead); a lead the rules refuse comes back REFUSED with the reason.
        """
        sequence = self._catalog.sequence(sequence_id or self._catalog.default_sequence)
        lead_id = lead_id_for(tenant_id, lead.company)
        if self._suppression is not None:
            closed = self._suppression.closed(tenant_id, lead_id, lead.company)
            if OptOutScope.ALL in closed:
                # An objection to all contact is never undone by an import.
                detail = f"the contact {closed[OptOutScope.ALL]}: not enrolled again"
                return EnrolResult(lead_id=lead_id, outcome=EnrolOutcome.REFUSED, detail=detail)
        command = Enroll(
            command_id=f"enroll/{tenant_id}/{lead_id}",
            at=self._clock.now(),
            tenant_id=tenant_id,
            lead_id=lead_id,
            sequence_id=sequence.sequence_id,
            company=lead.company,
            stop_on_reply=sequence.stop_on_reply,
            consents=lead.consents,
            tags=lead.tags,
        )
        metadata = Metadata(actor=actor, correlation_id=lead.source)
        try:
            outcome = self._journeys.run(tenant_id, lead_id, [command], metadata=metadata)
        except AlreadyEnrolled:
            return EnrolResult(lead_id=lead_id, outcome=EnrolOutcome.ALREADY_ENROLLED)
        except DomainError as exc:
            return EnrolResult(lead_id=lead_id, outcome=EnrolOutcome.REFUSED, detail=str(exc))
        if not outcome.appended:
            # The same command ran before (a retried import): its events are stored already.
            return EnrolResult(lead_id=lead_id, outcome=EnrolOutcome.ALREADY_ENROLLED)
        return EnrolResult(lead_id=lead_id, outcome=EnrolOutcome.ENROLLED)
