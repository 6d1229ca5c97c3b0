"""Sticky phones: a lead keeps its WhatsApp number, and leaves a BANNED one only on the record."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.application.whatsapp_routing import route_whatsapp
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import Channel, PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.events import Company, PhoneAssigned
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 10:00 in Bucharest: open
TENANT = "t1"
_ids = itertools.count()


def apply(state: Journey, cls, **fields) -> Journey:
    command = cls(command_id=f"c{next(_ids)}", at=T0, **fields)
    return replay(decide(state, command), state)


def enrolled(lead: str = "lead-1") -> Journey:
    company = Company(name="Agro Verde SRL", phone="+40722123456")
    return apply(
        Journey(), c.Enroll, tenant_id=TENANT, lead_id=lead, sequence_id="cold", company=company
    )


def contacted(phone_id: str, lead: str = "lead-1") -> Journey:
    """A lead whose first WhatsApp message went out from `phone_id`."""
    state = apply(
        enrolled(lead),
        c.QueueMessage,
        message_id="m1",
        channel=Channel.WHATSAPP,
        content_hash="h",
        sequence_id="cold",
        step=1,
        quota_cost=1,
        phone_id=phone_id,
    )
    return apply(state, c.RecordSent, message_id="m1", provider="sandbox", external_id="x")


def pool(**statuses: PhoneStatus) -> tuple[MemoryQuotaGuardian, dict[str, PhoneStatus]]:
    """A guardian and the pool's view agreeing on each phone's status (limit 10 each)."""
    guardian = MemoryQuotaGuardian()
    for phone_id, status in statuses.items():
        guardian.set_phone(
            TENANT, PhoneQuotaSettings(phone_id=phone_id, status=status, daily_limit=10)
        )
    return guardian, dict(statuses)


def route(guardian, state: Journey, statuses: dict[str, PhoneStatus], at: datetime = T0):
    return route_whatsapp(
        guardian,
        state,
        tenant_id=TENANT,
        lead_id=state.lead_id,
        at=at,
        phone_status=statuses.get,
    )


def test_a_lead_without_a_phone_gets_the_active_phone_with_most_quota_left():
    """The first message reserves a new conversation on the emptiest ACTIVE phone and assigns it."""
    guardian, statuses = pool(p1=PhoneStatus.ACTIVE, p2=PhoneStatus.ACTIVE, p3=PhoneStatus.PAUSED)
    guardian.reserve(TENANT, phone_id="p1", lead_id="other", cost=1, at=T0)
    state = enrolled()
    routing = route(guardian, state, statuses)
    assert (routing.allowed, routing.phone_id, routing.cost, routing.assigns) == (
        True,
        "p2",
        1,
        True,
    )
    assert routing.reassign_from is None
    assert routing.reservation is not None
    assert guardian.usage(TENANT, "p2", T0.date()) == 1
    events = decide(
        state,
        c.QueueMessage(
            command_id="q",
            at=T0,
            message_id="m1",
            channel=Channel.WHATSAPP,
            content_hash="h",
            sequence_id="cold",
            step=1,
            quota_cost=routing.cost,
            phone_id=routing.phone_id,
        ),
    )
    assert isinstance(events[0], PhoneAssigned)
    assert events[0].phone_id == "p2"


def test_a_lead_with_a_phone_keeps_it_even_when_another_has_more_quota():
    """Sticky: later messages go out from the lead's own phone, as follow-ups (cost 0)."""
    guardian, statuses = pool(p1=PhoneStatus.ACTIVE, p2=PhoneStatus.ACTIVE)
    for i in range(5):
        guardian.reserve(TENANT, phone_id="p1", lead_id=f"other-{i}", cost=1, at=T0)
    routing = route(guardian, contacted("p1"), statuses)
    assert (routing.allowed, routing.phone_id, routing.cost) == (True, "p1", 0)
    assert (routing.assigns, routing.reassign_from) == (False, None)
    assert routing.reassignment("r", T0) is None


@pytest.mark.parametrize(
    "status",
    [PhoneStatus.PAUSED, PhoneStatus.OFFLINE, PhoneStatus.RECONNECTING, PhoneStatus.QUARANTINE],
)
def test_a_lead_whose_phone_is_not_active_waits_for_it(status):
    """Paused, offline, reconnecting or in quarantine: refused, nothing reserved, no move."""
    guardian, statuses = pool(p1=status, p2=PhoneStatus.ACTIVE)
    routing = route(guardian, contacted("p1"), statuses)
    assert not routing.allowed
    assert routing.decision.reason is QuotaRefusal.PHONE_NOT_ACTIVE
    assert (routing.reservation, routing.reassign_from) == (None, None)
    assert guardian.usage(TENANT, "p2", T0.date()) == 0


def test_a_lead_whose_phone_is_banned_moves_to_another_on_the_record():
    """The move names the banned phone and why, and the journey records it before queueing."""
    guardian, statuses = pool(p1=PhoneStatus.BANNED, p2=PhoneStatus.ACTIVE)
    state = contacted("p1")
    routing = route(guardian, state, statuses)
    assert (routing.allowed, routing.phone_id, routing.reassign_from) == (True, "p2", "p1")
    assert routing.reason == "phone p1 BANNED"
    command = routing.reassignment("move-1", T0)
    assert command == c.ReassignPhone(
        command_id="move-1", at=T0, phone_id="p2", reason="phone p1 BANNED"
    )
    [moved] = decide(state, command)
    assert isinstance(moved, PhoneAssigned)
    assert (moved.phone_id, moved.previous_phone_id, moved.reason) == (
        "p2",
        "p1",
        "phone p1 BANNED",
    )
    state = replay([moved], state)
    queued = decide(
        state,
        c.QueueMessage(
            command_id="q2",
            at=T0,
            message_id="m2",
            channel=Channel.WHATSAPP,
            content_hash="h2",
            sequence_id="cold",
            step=2,
            quota_cost=routing.cost,
            phone_id=routing.phone_id,
        ),
    )
    assert [type(e).__name__ for e in queued] == ["MessageQueued"]


def test_a_lead_whose_banned_phone_has_no_replacement_waits_and_is_not_moved():
    """No other ACTIVE phone: refused, and no reassignment is recorded."""
    guardian, statuses = pool(p1=PhoneStatus.BANNED, p2=PhoneStatus.PAUSED)
    routing = route(guardian, contacted("p1"), statuses)
    assert not routing.allowed
    assert routing.reassign_from is None
    assert routing.reassignment("r", T0) is None


def test_a_banned_phone_the_guardian_still_thinks_active_is_never_used():
    """Out of step (the pool says BANNED, the guardian ACTIVE): refused, the count given back."""
    guardian, _ = pool(p1=PhoneStatus.ACTIVE)
    state = apply(
        enrolled(),
        c.QueueMessage,
        message_id="m1",
        channel=Channel.WHATSAPP,
        content_hash="h",
        sequence_id="cold",
        step=1,
        quota_cost=1,
        phone_id="p1",
    )
    # Cancelled before it went out: the lead keeps p1, and its next message is still new.
    state = apply(state, c.CancelMessage, message_id="m1", reason="outside the window")
    routing = route(guardian, state, {"p1": PhoneStatus.BANNED})
    assert routing.cost == 1
    assert not routing.allowed
    assert routing.decision.reason is QuotaRefusal.PHONE_NOT_ACTIVE
    assert routing.reassign_from is None
    assert guardian.usage(TENANT, "p1", T0.date()) == 0


def test_a_refusal_outside_business_hours_says_when_to_retry():
    """The guardian's own reasons come through unchanged."""
    guardian, statuses = pool(p1=PhoneStatus.ACTIVE)
    night = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    routing = route(guardian, contacted("p1"), statuses, at=night)
    assert not routing.allowed
    assert routing.decision.reason is QuotaRefusal.OUTSIDE_BUSINESS_HOURS
    assert routing.decision.retry_at is not None
