"""The quota guardian's bookkeeping as a pure value: phones, counters and reservations.

`quota.decide` judges one phone; the ledger is what a guardian keeps between decisions for
one tenant — each phone's settings, each (phone, local day)'s count of new conversations,
and which lead holds a reservation on which phone that day — and the two operations on it,
`reserve` and `release`. It is the model every guardian adapter must match answer for
answer (the in-process adapter wraps it in a lock; the Redis scripts re-implement it and
are compared with it by a stateful test).

Reservations are idempotent per (lead, local day): a lead's new-conversation reservation is
counted once however often it is asked for again that day (a retried command), and release
gives it back at most once. That keeps a retry from burning quota and a double release from
creating quota out of nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

import msgspec

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.errors import InvalidCommand
from cerniq_outreach.domain.quota import (
    DAILY_NEW_CONVERSATIONS,
    DEFAULT_RAMP,
    FOLLOW_UP_COST,
    NEW_CONTACT_COST,
    PhoneQuotaView,
    QuotaDecision,
    WarmupRamp,
    decide,
    effective_limit,
)

if TYPE_CHECKING:
    from collections.abc import Mapping


class QuotaPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's sending window and warm-up ramp: what the guardian judges time by."""

    hours: BusinessHours = BusinessHours()
    ramp: WarmupRamp = DEFAULT_RAMP


DEFAULT_POLICY = QuotaPolicy()


class PhoneQuotaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the guardian must know of one phone to judge it: status and limits."""

    phone_id: str
    status: PhoneStatus
    daily_limit: int = DAILY_NEW_CONVERSATIONS
    warmup_started: date | None = None


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """A new conversation counted on `phone_id` for `lead_id` on the local day `day`."""

    tenant_id: str
    phone_id: str
    lead_id: str
    day: date


class QuotaAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A decision and, when it counted a new conversation, the reservation to release."""

    decision: QuotaDecision
    reservation: Reservation | None = None


_EMPTY_PHONES: Mapping[str, PhoneQuotaSettings] = MappingProxyType({})
_EMPTY_USED: Mapping[tuple[str, date], int] = MappingProxyType({})
_EMPTY_HELD: Mapping[tuple[str, date], str] = MappingProxyType({})


class QuotaLedger(msgspec.Struct, frozen=True, kw_only=True):
    """One tenant's phones, counters and reservations. Operations return a new ledger.

    `used[(phone_id, day)]` counts new conversations; `held[(lead_id, day)]` names the
    phone a lead's reservation of that day is on.
    """

    tenant_id: str
    phones: Mapping[str, PhoneQuotaSettings] = _EMPTY_PHONES
    used: Mapping[tuple[str, date], int] = _EMPTY_USED
    held: Mapping[tuple[str, date], str] = _EMPTY_HELD

    def usage(self, phone_id: str, day: date) -> int:
        """New conversations counted on `phone_id` on local day `day`."""
        return self.used.get((phone_id, day), 0)

    def with_phone(self, phone: PhoneQuotaSettings) -> QuotaLedger:
        """The ledger with `phone`'s settings added or replaced (its counters kept)."""
        return msgspec.structs.replace(self, phones={**self.phones, phone.phone_id: phone})

    def with_phones(self, phones: list[PhoneQuotaSettings]) -> QuotaLedger:
        """The ledger with exactly `phones` (counters and reservations kept)."""
        return msgspec.structs.replace(self, phones={p.phone_id: p for p in phones})

    def with_usage(self, phone_id: str, day: date, used: int) -> QuotaLedger:
        """The ledger with the count of (phone, day) raised to at least `used` (a restore)."""
        if used <= self.usage(phone_id, day):
            return self
        return msgspec.structs.replace(self, used={**self.used, (phone_id, day): used})


def _view(phone: PhoneQuotaSettings, used: int) -> PhoneQuotaView:
    return PhoneQuotaView(
        phone_id=phone.phone_id,
        status=phone.status,
        daily_limit=phone.daily_limit,
        warmup_started=phone.warmup_started,
        used_today=used,
    )


def reserve(
    ledger: QuotaLedger,
    *,
    phone_id: str | None,
    lead_id: str,
    cost: int,
    at: datetime,
    hours: BusinessHours,
    ramp: WarmupRamp = DEFAULT_RAMP,
) -> tuple[QuotaLedger, QuotaAnswer]:
    """Decide a WhatsApp send and, when allowed with cost 1, count it: one atomic step.

    `phone_id` None asks for any phone: the lead's own reservation of the day if it has
    one on an ACTIVE phone, else the ACTIVE phone with the most quota left (ties to the
    smallest id). An unknown phone is refused as not active. A lead that holds a
    reservation today is not counted again (its retry passes the limit check).

    Raises:
        InvalidCommand: `cost` is neither 0 nor 1.
    """
    if cost not in (FOLLOW_UP_COST, NEW_CONTACT_COST):
        raise InvalidCommand(f"a WhatsApp message costs 0 or 1, not {cost}")
    day = hours.local_date(at)
    held_on = ledger.held.get((lead_id, day)) if cost else None
    if phone_id is None:
        phone_id = _choose(ledger, day, held_on, cost, ramp)
        if phone_id is None:
            return ledger, QuotaAnswer(decision=_refuse_any(ledger, day, at, hours, ramp))
    phone = ledger.phones.get(phone_id)
    if phone is None:
        refused = QuotaDecision(
            allowed=False, phone_id=phone_id, reason=QuotaRefusal.PHONE_NOT_ACTIVE, used=0, limit=0
        )
        return ledger, QuotaAnswer(decision=refused)
    used = ledger.usage(phone_id, day)
    if held_on == phone_id:
        # Counted already today: judge status and hours as for a follow-up, count nothing.
        verdict = decide(_view(phone, used), FOLLOW_UP_COST, at, hours, ramp)
        reservation = _reservation(ledger, phone_id, lead_id, day) if verdict.allowed else None
        return ledger, QuotaAnswer(decision=verdict, reservation=reservation)
    verdict = decide(_view(phone, used), cost, at, hours, ramp)
    if not verdict.allowed or cost == FOLLOW_UP_COST:
        return ledger, QuotaAnswer(decision=verdict)
    used_now = dict(ledger.used)
    if held_on is not None:
        # The lead's reservation moves to this phone (its old phone left the pool): the
        # old count is given back so a lead holds one new conversation per day.
        _uncount(ledger, held_on, day, used_now)
    used_now[(phone_id, day)] = used + cost
    held = {**ledger.held, (lead_id, day): phone_id}
    updated = msgspec.structs.replace(ledger, used=used_now, held=held)
    return updated, QuotaAnswer(
        decision=verdict, reservation=_reservation(ledger, phone_id, lead_id, day)
    )


def release(ledger: QuotaLedger, reservation: Reservation) -> tuple[QuotaLedger, bool]:
    """Give a reservation's new conversation back; False (and no change) if it is not held.

    For a message that was never handed to the provider. Releasing twice, or releasing a
    reservation that moved to another phone, changes nothing.
    """
    key = (reservation.lead_id, reservation.day)
    if ledger.held.get(key) != reservation.phone_id:
        return ledger, False
    used = dict(ledger.used)
    _uncount(ledger, reservation.phone_id, reservation.day, used)
    held = {k: v for k, v in ledger.held.items() if k != key}
    return msgspec.structs.replace(ledger, used=used, held=held), True


def _uncount(
    ledger: QuotaLedger, phone_id: str, day: date, used: dict[tuple[str, date], int]
) -> None:
    count = ledger.usage(phone_id, day)
    if count > 1:
        used[(phone_id, day)] = count - 1
    else:
        used.pop((phone_id, day), None)


def _reservation(ledger: QuotaLedger, phone_id: str, lead_id: str, day: date) -> Reservation:
    return Reservation(tenant_id=ledger.tenant_id, phone_id=phone_id, lead_id=lead_id, day=day)


def _choose(
    ledger: QuotaLedger, day: date, held_on: str | None, cost: int, ramp: WarmupRamp
) -> str | None:
    """The phone an any-phone request goes to, or None when no ACTIVE phone can take it."""
    if held_on is not None:
        held_phone = ledger.phones.get(held_on)
        if held_phone is not None and held_phone.status is PhoneStatus.ACTIVE:
            return held_on
    best: tuple[int, str] | None = None
    for phone in ledger.phones.values():
        if phone.status is not PhoneStatus.ACTIVE:
            continue
        limit, _ = effective_limit(_view(phone, 0), day, ramp)
        left = max(0, limit - ledger.usage(phone.phone_id, day))
        if left < cost:
            continue
        if best is None or (-left, phone.phone_id) < (-best[0], best[1]):
            best = (left, phone.phone_id)
    return None if best is None else best[1]


def _refuse_any(
    ledger: QuotaLedger, day: date, at: datetime, hours: BusinessHours, ramp: WarmupRamp
) -> QuotaDecision:
    """Why no phone could take an any-phone request, in `decide`'s order of checks.

    No ACTIVE phone: PHONE_NOT_ACTIVE. Closed: OUTSIDE_BUSINESS_HOURS (the hours are
    checked only now, as `decide` checks status first). Otherwise every ACTIVE phone is
    full: WARMUP_LIMIT when the ramp binds on all of them, else QUOTA_EXCEEDED; used and
    limit are summed over the ACTIVE phones.
    """
    active = [p for p in ledger.phones.values() if p.status is PhoneStatus.ACTIVE]
    if not active:
        return QuotaDecision(
            allowed=False, phone_id=None, reason=QuotaRefusal.PHONE_NOT_ACTIVE, used=0, limit=0
        )
    limits = [effective_limit(_view(p, 0), day, ramp) for p in active]
    used = sum(ledger.usage(p.phone_id, day) for p in active)
    limit = sum(lim for lim, _ in limits)
    if not hours.is_open(at):
        reason, retry = QuotaRefusal.OUTSIDE_BUSINESS_HOURS, hours.next_open(at)
    elif all(warming for _, warming in limits):
        reason, retry = QuotaRefusal.WARMUP_LIMIT, hours.next_day_start(at)
    else:
        reason, retry = QuotaRefusal.QUOTA_EXCEEDED, hours.next_day_start(at)
    return QuotaDecision(
        allowed=False, phone_id=None, reason=reason, used=used, limit=limit, retry_at=retry
    )
