"""Which phone a lead's next WhatsApp message goes out from: sticky, and never silently moved.

A lead's first WhatsApp message takes the phone the guardian proposes (the ACTIVE phone
with the most quota left); from then on the lead keeps that phone (domain.md). A lead whose
phone is not ACTIVE waits for it — except when the phone is BANNED, which it will not come
back from: the lead then moves to another phone, and the move is recorded (`ReassignPhone`
-> `PhoneAssigned` with the previous phone and the reason) before its message is queued.

`route_whatsapp` asks the guardian and says what the caller must append. It reserves quota
(one atomic step in the guardian); the caller appends what the routing says and, if that
fails before the message reaches the provider, releases `routing.reservation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from cerniq_outreach.domain.commands import ReassignPhone
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.outbound import whatsapp_cost
from cerniq_outreach.domain.quota import QuotaDecision
from cerniq_outreach.domain.quota_ledger import QuotaAnswer, Reservation

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from cerniq_outreach.application.ports import QuotaGuardian
    from cerniq_outreach.domain.journey import Journey


class Routing(msgspec.Struct, frozen=True, kw_only=True):
    """The guardian's decision for a lead's next WhatsApp message, and what it means.

    When `allowed`, queue the message with `phone_id` and `cost` (a lead without a phone
    gets `phone_id` assigned by that `QueueMessage`). When `reassign_from` is set, first
    run `reassignment(...)`: the lead moves from its banned phone to `phone_id`, recorded.
    When refused, `decision` says why and when to try again; nothing was reserved.
    """

    allowed: bool
    phone_id: str | None
    cost: int
    decision: QuotaDecision
    reservation: Reservation | None = None
    assigns: bool = False
    reassign_from: str | None = None
    reason: str | None = None

    def reassignment(self, command_id: str, at: datetime) -> ReassignPhone | None:
        """The command that records the move to `phone_id`, when the lead must move."""
        if not self.allowed or self.reassign_from is None or self.phone_id is None:
            return None
        return ReassignPhone(
            command_id=command_id, at=at, phone_id=self.phone_id, reason=self.reason or ""
        )


def route_whatsapp(
    guardian: QuotaGuardian,
    journey: Journey,
    *,
    tenant_id: str,
    lead_id: str,
    at: datetime,
    phone_status: Callable[[str], PhoneStatus | None],
    cost: int | None = None,
) -> Routing:
    """Reserve the lead's next WhatsApp message on its phone, or on a new one (module doc).

    `cost` defaults to the journey's own (`domain.outbound.whatsapp_cost`), which is what
    `QueueMessage` will be checked against. `phone_status` looks up a phone's status in
    the pool (None for a phone that is not there).
    """
    cost = whatsapp_cost(journey) if cost is None else cost
    current = journey.phone_id
    if current is None:
        answer = guardian.reserve(tenant_id, phone_id=None, lead_id=lead_id, cost=cost, at=at)
        return _routing(answer, cost, assigns=answer.decision.allowed)
    if phone_status(current) is not PhoneStatus.BANNED:
        # Sticky: the lead's own phone, whatever its state; the guardian refuses it while
        # it is not ACTIVE, and the lead waits for it.
        answer = guardian.reserve(tenant_id, phone_id=current, lead_id=lead_id, cost=cost, at=at)
        return _routing(answer, cost)
    answer = guardian.reserve(tenant_id, phone_id=None, lead_id=lead_id, cost=cost, at=at)
    chosen = answer.decision.phone_id
    if answer.decision.allowed and chosen == current:
        # The guardian still believes the banned phone ACTIVE (out of step with the pool):
        # never send from it. Give the reservation back and wait for the next sync.
        if answer.reservation is not None:
            guardian.release(answer.reservation)
        refused = QuotaDecision(
            allowed=False,
            phone_id=current,
            reason=QuotaRefusal.PHONE_NOT_ACTIVE,
            used=answer.decision.used,
            limit=answer.decision.limit,
        )
        return Routing(allowed=False, phone_id=current, cost=cost, decision=refused)
    if not answer.decision.allowed:
        return _routing(answer, cost)
    return _routing(answer, cost, reassign_from=current, reason=f"phone {current} BANNED")


def _routing(
    answer: QuotaAnswer,
    cost: int,
    *,
    assigns: bool = False,
    reassign_from: str | None = None,
    reason: str | None = None,
) -> Routing:
    decision = answer.decision
    return Routing(
        allowed=decision.allowed,
        phone_id=decision.phone_id,
        cost=cost,
        decision=decision,
        reservation=answer.reservation,
        assigns=assigns,
        reassign_from=reassign_from,
        reason=reason,
    )
