"""What the Redis quota guardians send and how they read the replies, written once.

`RedisQuotaGuardian` (redis-py) and `AsyncRedisQuotaGuardian` (redis.asyncio) differ only in
how they wait for Redis; the key layout, the script arguments and the reading of a reply
into the domain's `QuotaAnswer` live here, so the two cannot drift apart.

Key layout (`<base>` is `<prefix>{<tenant_id>}:`, so all of a tenant's keys share one hash
tag and one Redis Cluster slot, which the scripts rely on):

- `<base>phones`: one hash, field phone id, value `STATUS|daily_limit|warmup`, warmup the
  ordinal of the ramp's day 1 or empty; and field `''` (no phone id is empty) set to 1 once
  the tenant's phones are in Redis (by load_phones or set_phone). A Redis that restarted
  without persistence has lost it: the scripts then answer NOT_LOADED and the guardian
  reloads the phones before deciding anything. One hash rather than a set, a hash per phone
  and a marker key: a replace is DEL + HSET, a set_phone one HSET, and a named phone and the
  marker cost one HMGET (each command a script runs costs the server about a microsecond).
- `<base>used:<YYYY-MM-DD>:<phone>`: new conversations of that local day (48 h expiry).
- `<base>held:<YYYY-MM-DD>:<lead>`: the phone holding the lead's reservation (48 h expiry).

Time comes from the caller's `at` only. Business hours (DST included) are decided here in
Python by the domain's `BusinessHours` and passed to the scripts as the local day, its
ordinal and an open flag; `retry_at` is computed from the verdict after the reply, only for
refusals. Measured at about 1.6 µs per call for `local_date` plus `is_open` against about
130 µs for the EVALSHA round trip, so nothing is cached: a cache keyed by the minute would
have to prove that no window edge falls inside it, for no measurable gain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from typing import TYPE_CHECKING, Any, NamedTuple

from cerniq_outreach.domain import quota_ledger
from cerniq_outreach.domain.enums import QuotaRefusal
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand
from cerniq_outreach.domain.quota import FOLLOW_UP_COST, NEW_CONTACT_COST, QuotaDecision
from cerniq_outreach.domain.quota_ledger import (
    DEFAULT_POLICY,
    QuotaAnswer,
    QuotaLedger,
    QuotaPolicy,
    Reservation,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cerniq_outreach.domain.business_hours import BusinessHours
    from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings

    PhoneSource = Callable[
        [str], tuple[Sequence[PhoneQuotaSettings], Mapping[tuple[str, date], int]]
    ]
    """Where a guardian reloads a tenant's phones and usage from (e.g. the database)."""

COUNTER_TTL_SECONDS = 48 * 3600
"""Counters and reservations outlive their local day by a day, then Redis drops them."""

UNAVAILABLE_RETRY = timedelta(seconds=30)
"""How long a caller refused for an unreachable guardian waits before asking again."""

NOT_LOADED = "NOT_LOADED"
LOADED = ""
"""The field of the phones hash that marks a tenant as loaded."""


class QuotaGuardianUnavailable(Exception):
    """Redis could not be reached (or failed) for a release, usage, set_phone or load_phones.

    `reserve` never raises it: it fails closed with GUARDIAN_UNAVAILABLE instead.
    """


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script's text (with quota_lib.lua in front when it uses it) and its SHA1."""

    name: str
    text: str
    sha: str


def _script(name: str, *, with_lib: bool) -> LuaScript:
    lua = files("cerniq_outreach.adapters.quota").joinpath("lua")
    text = lua.joinpath(name).read_text(encoding="utf-8")
    if with_lib:
        text = lua.joinpath("quota_lib.lua").read_text(encoding="utf-8") + "\n" + text
    # The SHA1 Redis names the script by (SCRIPT LOAD returns the same), not a security use.
    sha = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
    return LuaScript(name=name, text=text, sha=sha)


RESERVE_PHONE = _script("reserve_phone.lua", with_lib=True)
RESERVE_ANY = _script("reserve_any.lua", with_lib=True)
RELEASE = _script("release.lua", with_lib=True)
LOAD_PHONES = _script("load_phones.lua", with_lib=False)
SET_PHONE = _script("set_phone.lua", with_lib=False)
TOKEN_BUCKET = _script("token_bucket.lua", with_lib=False)


class PendingReserve(NamedTuple):
    """One reserve call: the script, its EVALSHA arguments, and what reading the reply needs."""

    script: LuaScript
    args: tuple[Any, ...]
    tenant_id: str
    phone_id: str | None
    lead_id: str
    cost: int
    at: datetime
    day: date
    policy: QuotaPolicy


def default_policy(_tenant_id: str) -> QuotaPolicy:
    """The default business hours and warm-up ramp, for every tenant."""
    return DEFAULT_POLICY


_REASONS = {reason.value: reason for reason in QuotaRefusal}


class QuotaCalls:
    """Builds the guardian's script calls and reads their replies, for one key prefix.

    Raises:
        ConfigurationError: the prefix holds a brace (it would steal the hash tag).
    """

    def __init__(self, prefix: str, policy_for: Callable[[str], QuotaPolicy]) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"a quota key prefix must not hold braces: {prefix!r}")
        self._prefix = prefix
        self._policy_for = policy_for

    def base(self, tenant_id: str) -> str:
        """`<prefix>{<tenant>}:`, the start of every key of the tenant."""
        return f"{self._prefix}{{{tenant_id}}}:"

    def phones_key(self, tenant_id: str) -> str:
        """The hash of the tenant's phones (and of the loaded marker, field '')."""
        return f"{self._prefix}{{{tenant_id}}}:phones"

    def used_key(self, tenant_id: str, phone_id: str, day: date) -> str:
        """The counter of new conversations of (phone, local day)."""
        return f"{self._prefix}{{{tenant_id}}}:used:{day.isoformat()}:{phone_id}"

    def reserve(
        self, tenant_id: str, phone_id: str | None, lead_id: str, cost: int, at: datetime
    ) -> PendingReserve:
        """The EVALSHA arguments of a reserve.

        Raises:
            InvalidCommand: `cost` is neither 0 nor 1 (as the model raises).
            ValueError: `at` is naive.
        """
        if cost not in (FOLLOW_UP_COST, NEW_CONTACT_COST):
            raise InvalidCommand(f"a WhatsApp message costs 0 or 1, not {cost}")
        policy = self._policy_for(tenant_id)
        hours, ramp = policy.hours, policy.ramp
        day = hours.local_date(at)
        iso = day.isoformat()
        base = f"{self._prefix}{{{tenant_id}}}:"
        context = (
            f"{cost}|{day.toordinal()}|{1 if hours.is_open(at) else 0}|"
            f"{ramp.start}|{ramp.ceiling}|{ramp.days}|{COUNTER_TTL_SECONDS}"
        )
        used_prefix = f"{base}used:{iso}:"
        held = f"{base}held:{iso}:{lead_id}"
        # Few arguments: redis-py packs each one in Python (see quota_lib.lua's `context`).
        if phone_id is None:
            script = RESERVE_ANY
            args: tuple[Any, ...] = (
                script.sha, 2, base + "phones", held, used_prefix, context, base + "active:",
            )  # fmt: skip
        else:
            script = RESERVE_PHONE
            args = (
                script.sha, 3, base + "phones", used_prefix + phone_id, held, used_prefix,
                phone_id, context, base + "active:",
            )  # fmt: skip
        return PendingReserve(script, args, tenant_id, phone_id, lead_id, cost, at, day, policy)

    def answer(self, pending: PendingReserve, reply: list[Any]) -> QuotaAnswer | None:
        """The QuotaAnswer a script replied, or None for NOT_LOADED."""
        verdict = reply[0]
        if verdict == NOT_LOADED:
            return None
        _, phone_id, used, limit, reserved = reply
        if verdict == "OK":
            decision = QuotaDecision(allowed=True, phone_id=phone_id, used=used, limit=limit)
        else:
            reason = _REASONS[verdict]
            decision = QuotaDecision(
                allowed=False,
                phone_id=phone_id,
                reason=reason,
                used=used,
                limit=limit,
                retry_at=_retry_at(reason, pending.policy.hours, pending.at),
            )
        if not reserved:
            return QuotaAnswer(decision=decision)
        reservation = Reservation(
            tenant_id=pending.tenant_id, phone_id=phone_id, lead_id=pending.lead_id, day=pending.day
        )
        return QuotaAnswer(decision=decision, reservation=reservation)

    def without_phones(self, pending: PendingReserve) -> QuotaAnswer:
        """The model's answer for a tenant without phones (PHONE_NOT_ACTIVE).

        What a guardian must say when nothing is loaded and there is nowhere to load from.
        """
        _, answer = quota_ledger.reserve(
            QuotaLedger(tenant_id=pending.tenant_id),
            phone_id=pending.phone_id,
            lead_id=pending.lead_id,
            cost=pending.cost,
            at=pending.at,
            hours=pending.policy.hours,
            ramp=pending.policy.ramp,
        )
        return answer

    def set_phone(self, tenant_id: str, phone: PhoneQuotaSettings) -> tuple[Any, ...]:
        """The EVALSHA arguments of set_phone.

        Raises:
            ConfigurationError: an empty phone id or a negative daily limit (see `pack`).
        """
        return (SET_PHONE.sha, 1, self.phones_key(tenant_id), phone.phone_id, pack(phone))

    def release(self, reservation: Reservation) -> tuple[Any, ...]:
        """The EVALSHA arguments of a release."""
        base = self.base(reservation.tenant_id)
        iso = reservation.day.isoformat()
        ramp = self._policy_for(reservation.tenant_id).ramp
        day = f"{reservation.day.toordinal()}|{ramp.start}|{ramp.ceiling}|{ramp.days}"
        return (
            RELEASE.sha, 3, f"{base}held:{iso}:{reservation.lead_id}",
            f"{base}used:{iso}:{reservation.phone_id}", f"{base}phones",
            reservation.phone_id, f"{base}active:", day,
        )  # fmt: skip

    def load_phones(
        self,
        tenant_id: str,
        phones: Sequence[PhoneQuotaSettings],
        usage: Mapping[tuple[str, date], int] | None,
    ) -> tuple[Any, ...]:
        """The EVALSHA arguments of load_phones.

        Raises:
            ConfigurationError: an empty phone id, a negative limit or usage (the model
                refuses negative ones too, but only when it judges the phone; Redis cannot
                hold them, so they stop here).
        """
        fields: list[str] = []
        for phone in phones:
            fields += [phone.phone_id, pack(phone)]
        keys, values = [], []
        for (phone_id, day), used in (usage or {}).items():
            if used < 0:
                raise ConfigurationError(f"phone {phone_id}: usage must not be negative ({used})")
            keys.append(self.used_key(tenant_id, phone_id, day))
            values.append(used)
        return (
            LOAD_PHONES.sha, 1 + len(keys), self.phones_key(tenant_id), *keys,
            COUNTER_TTL_SECONDS, len(fields), *fields, *values,
        )  # fmt: skip


def pack(phone: PhoneQuotaSettings) -> str:
    """A phone's settings as the scripts read them: `STATUS|daily_limit|warmup ordinal`.

    Raises:
        ConfigurationError: an empty phone id (the field '' is the loaded marker) or a
            negative daily limit.
    """
    if not phone.phone_id:
        raise ConfigurationError("a phone id must not be empty")
    if phone.daily_limit < 0:
        raise ConfigurationError(
            f"phone {phone.phone_id}: the daily limit must not be negative ({phone.daily_limit})"
        )
    warmup = "" if phone.warmup_started is None else str(phone.warmup_started.toordinal())
    return f"{phone.status.value}|{phone.daily_limit}|{warmup}"


def _retry_at(reason: QuotaRefusal, hours: BusinessHours, at: datetime) -> datetime | None:
    """When a refusal may pass, as `quota.decide` and the ledger put it."""
    if reason is QuotaRefusal.OUTSIDE_BUSINESS_HOURS:
        return hours.next_open(at)
    if reason in (QuotaRefusal.QUOTA_EXCEEDED, QuotaRefusal.WARMUP_LIMIT):
        return hours.next_day_start(at)
    return None


def unavailable(phone_id: str | None, at: datetime) -> QuotaAnswer:
    """The fail-closed answer of a guardian that cannot reach Redis: refused, nothing counted."""
    return QuotaAnswer(
        decision=QuotaDecision(
            allowed=False,
            phone_id=phone_id,
            reason=QuotaRefusal.GUARDIAN_UNAVAILABLE,
            used=0,
            limit=0,
            retry_at=at.astimezone(UTC) + UNAVAILABLE_RETRY,
        )
    )
