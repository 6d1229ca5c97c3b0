"""The WhatsApp quota policy: what a send costs, each phone's limit today, and the verdict.

Pure rules only. The atomic check-and-increment lives in the quota guardian adapters
(in-process or Redis Lua); they must give the same verdicts as `decide` here, which is
what their contract tests compare against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime

import msgspec

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand

DAILY_NEW_CONVERSATIONS = 200
"""The ceiling of new conversations one phone may start per local calendar day."""

NEW_CONTACT_COST = 1
FOLLOW_UP_COST = 0


def message_cost(*, is_first_whatsapp_message_ever: bool) -> int:
    """1 for the lead's first WhatsApp message ever (a new conversation), 0 for a follow-up."""
    return NEW_CONTACT_COST if is_first_whatsapp_message_ever else FOLLOW_UP_COST


class WarmupRamp(msgspec.Struct, frozen=True, kw_only=True):
    """Daily limit of a new or recovering number: `start` on day 1, `ceiling` from day `days`.

    The limit rises linearly (rounded down) in between, so it never falls from one day to
    the next.

    Raises:
        ConfigurationError: `start` is not in 1..ceiling, or `days` < 1, or a one-day ramp
            whose start is not its ceiling.
    """

    start: int = 20
    ceiling: int = DAILY_NEW_CONVERSATIONS
    days: int = 21

    def __post_init__(self) -> None:
        if not 1 <= self.start <= self.ceiling:
            raise ConfigurationError(
                f"warm-up must start between 1 and its ceiling {self.ceiling}, got {self.start}"
            )
        if self.days < 1 or (self.days == 1 and self.start != self.ceiling):
            raise ConfigurationError(f"warm-up needs at least 2 days to rise, got {self.days}")

    def limit_on(self, warmup_started: date | None, today: date) -> int:
        """The ramp's limit on `today` (day 1 is `warmup_started`; None means fully warmed)."""
        if warmup_started is None:
            return self.ceiling
        day = (today - warmup_started).days + 1
        if day <= 1:  # a ramp that starts in the future holds the number at day-one volume
            return self.start
        if day >= self.days:
            return self.ceiling
        return self.start + (self.ceiling - self.start) * (day - 1) // (self.days - 1)


DEFAULT_RAMP = WarmupRamp()


class PhoneQuotaView(msgspec.Struct, frozen=True, kw_only=True):
    """What the policy needs to know about one phone: status, limits and today's usage.

    `used_today` counts new conversations started on the local calendar day being decided.

    Raises:
        ConfigurationError: a negative limit or usage.
    """

    phone_id: str
    status: PhoneStatus
    daily_limit: int = DAILY_NEW_CONVERSATIONS
    warmup_started: date | None = None
    used_today: int = 0

    def __post_init__(self) -> None:
        if self.daily_limit < 0 or self.used_today < 0:
            raise ConfigurationError(
                f"phone {self.phone_id}: limit and usage must not be negative "
                f"({self.daily_limit}, {self.used_today})"
            )


def effective_limit(
    phone: PhoneQuotaView, today: date, ramp: WarmupRamp = DEFAULT_RAMP
) -> tuple[int, bool]:
    """The phone's limit today, and whether the warm-up ramp (not its own limit) binds.

    A fully warmed phone (no warm-up date) is held to the ramp's ceiling too, but that is
    its plain daily quota, not a warm-up: a refusal then says QUOTA_EXCEEDED.
    """
    if phone.warmup_started is None:
        return min(phone.daily_limit, ramp.ceiling), False
    ramped = ramp.limit_on(phone.warmup_started, today)
    if ramped < phone.daily_limit:
        return ramped, True
    return phone.daily_limit, False


class QuotaDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The guardian's verdict. `used` is the usage after this send when allowed.

    A refusal names its `reason` and, except for an inactive phone (which waits for a
    human or a health check), `retry_at`: the start of a window in which it may pass.
    """

    allowed: bool
    phone_id: str | None
    reason: QuotaRefusal | None = None
    used: int
    limit: int
    retry_at: datetime | None = None


def decide(
    phone: PhoneQuotaView,
    cost: int,
    at: datetime,
    hours: BusinessHours,
    ramp: WarmupRamp = DEFAULT_RAMP,
) -> QuotaDecision:
    """May `phone` send a message costing `cost` at `at`? Checks status, hours, then limit.

    Follow-ups (cost 0) are never refused for quota; they still need an ACTIVE phone and
    business hours.

    Raises:
        InvalidCommand: `cost` is neither 0 nor 1.
    """
    if cost not in (FOLLOW_UP_COST, NEW_CONTACT_COST):
        raise InvalidCommand(f"a WhatsApp message costs 0 or 1, not {cost}")
    limit, warming_up = effective_limit(phone, hours.local_date(at), ramp)

    def refuse(reason: QuotaRefusal, retry_at: datetime | None) -> QuotaDecision:
        return QuotaDecision(
            allowed=False,
            phone_id=phone.phone_id,
            reason=reason,
            used=phone.used_today,
            limit=limit,
            retry_at=retry_at,
        )

    if phone.status is not PhoneStatus.ACTIVE:
        return refuse(QuotaRefusal.PHONE_NOT_ACTIVE, None)
    if not hours.is_open(at):
        return refuse(QuotaRefusal.OUTSIDE_BUSINESS_HOURS, hours.next_open(at))
    if cost > 0 and phone.used_today + cost > limit:
        reason = QuotaRefusal.WARMUP_LIMIT if warming_up else QuotaRefusal.QUOTA_EXCEEDED
        return refuse(reason, hours.next_day_start(at))
    return QuotaDecision(
        allowed=True, phone_id=phone.phone_id, used=phone.used_today + cost, limit=limit
    )


def remaining(phone: PhoneQuotaView, today: date, ramp: WarmupRamp = DEFAULT_RAMP) -> int:
    """New conversations the phone may still start on `today` (never negative)."""
    limit, _ = effective_limit(phone, today, ramp)
    return max(0, limit - phone.used_today)


def choose_phone(
    phones: Iterable[PhoneQuotaView],
    at: datetime,
    hours: BusinessHours,
    ramp: WarmupRamp = DEFAULT_RAMP,
) -> PhoneQuotaView | None:
    """The ACTIVE phone with the most quota left today, for a lead that has no phone yet.

    Ties go to the smallest `phone_id`, so the choice is deterministic. None when no ACTIVE
    phone has room for a new conversation.
    """
    today = hours.local_date(at)
    candidates = [
        (remaining(phone, today, ramp), phone)
        for phone in phones
        if phone.status is PhoneStatus.ACTIVE
    ]
    candidates = [(left, phone) for left, phone in candidates if left > 0]
    if not candidates:
        return None
    return min(candidates, key=lambda pair: (-pair[0], pair[1].phone_id))[1]


def send_jitter(key: str, low_seconds: float, high_seconds: float) -> float:
    """A spacing in `[low_seconds, high_seconds]` drawn from a sha256 of `key`.

    Sends on one phone must not tick like a machine, yet a retry must wait the same time,
    so the spread comes from a hash (e.g. of phone and message id), not from a clock or an
    unseeded random generator.

    Raises:
        ConfigurationError: the bounds are negative or reversed.
    """
    if not 0 <= low_seconds <= high_seconds:
        raise ConfigurationError(
            f"jitter bounds must satisfy 0 <= low <= high, got {low_seconds}, {high_seconds}"
        )
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    # 53 bits fill a float's mantissa exactly, so the fraction is uniform and below 1.
    fraction = (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)
    return min(high_seconds, low_seconds + fraction * (high_seconds - low_seconds))
