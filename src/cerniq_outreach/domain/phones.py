"""The WhatsApp phone pool: one number's state, the commands on it, and what they decide.

Like journeys, phones are functions of their events: `decide_phone(phone, command)` returns
the new events or raises a `DomainError` (and then nothing is appended), `evolve` applies
one event and never raises, `replay` folds a stream. Event ids derive from the command id,
so a retried command produces the same events and the store turns the retry into a no-op.

A phone's id is derived from its tenant and E.164 number (`phone_id_for`), so a number has
exactly one stream per tenant: two registrations of one number meet on that stream, and the
second finds the phone registered (or its append conflicts with the first).

Health checks feed the guardian's safety rule: a phone that reports a disconnect, a ban
warning or a reputation below `REPUTATION_FLOOR` is paused automatically (domain.md), in the
same decision that records the check. Nothing resumes a phone automatically: a human looks
first, because sending from a number WhatsApp is watching is how numbers get banned.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from functools import reduce
from typing import TYPE_CHECKING

import msgspec
from msgspec import UNSET, UnsetType

from cerniq_outreach.domain.commands import Command
from cerniq_outreach.domain.contacts import normalize_phone
from cerniq_outreach.domain.decision import derive_id
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import InvalidCommand, PhoneAlreadyInPool, UnknownPhone
from cerniq_outreach.domain.events import (
    PhoneEvent,
    PhoneHealthChecked,
    PhoneRegistered,
    PhoneSettingsChanged,
    PhoneStatusChanged,
)
from cerniq_outreach.domain.quota import DAILY_NEW_CONVERSATIONS
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings

if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_DAILY_LIMIT = DAILY_NEW_CONVERSATIONS
"""A new phone's daily limit of new conversations when none is given (also the ceiling)."""

REPUTATION_FLOOR = 40
"""A health check reporting a reputation below this pauses an ACTIVE phone."""

# Fixed forever: phone ids are uuid5(namespace, "<tenant>/<E.164 number>").
PHONE_ID_NAMESPACE = uuid.UUID("0b7a4f8e-2c1d-4e5f-9a6b-3d8c7e1f2a90")


def phone_id_for(tenant_id: str, number: str) -> str:
    """The id of `number` (E.164) in `tenant_id`'s pool: the same for every registration."""
    return uuid.uuid5(PHONE_ID_NAMESPACE, f"{tenant_id}/{number}").hex


class Phone(msgspec.Struct, frozen=True, kw_only=True):
    """One WhatsApp number of the pool, as its events made it (`version` events so far).

    `updated_at` is when its latest event occurred.

    `reputation` and `connected` are what the latest health check that reported them
    said (None before any check).
    """

    tenant_id: str = ""
    phone_id: str = ""
    number: str = ""
    label: str | None = None
    account_id: str | None = None
    status: PhoneStatus = PhoneStatus.PAUSED
    status_reason: str | None = None
    status_changed_at: datetime | None = None
    daily_limit: int = DEFAULT_DAILY_LIMIT
    warmup_started: date | None = None
    reputation: int | None = None
    connected: bool | None = None
    last_health_check_at: datetime | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0

    @property
    def registered(self) -> bool:
        """Whether the phone is in the pool (its stream has begun)."""
        return self.registered_at is not None


class RegisterPhone(Command, frozen=True, kw_only=True):
    """Add a number (any common form; stored E.164) to the tenant's pool.

    `warmup_started` is day 1 of the warm-up ramp; None registers a number that is warm
    already (it gets its full daily limit at once).
    """

    tenant_id: str
    number: str
    label: str | None = None
    account_id: str | None = None
    daily_limit: int = DEFAULT_DAILY_LIMIT
    warmup_started: date | None = None
    status: PhoneStatus = PhoneStatus.ACTIVE
    by: str | None = None


class ChangePhoneStatus(Command, frozen=True, kw_only=True):
    """Move the phone to `status`, saying why. Setting the status it has changes nothing."""

    status: PhoneStatus
    reason: str
    by: str | None = None


class ChangePhoneSettings(Command, frozen=True, kw_only=True):
    """Change some of label, account, daily limit and warm-up start (UNSET: leave as is)."""

    label: str | UnsetType | None = UNSET
    account_id: str | UnsetType | None = UNSET
    daily_limit: int | UnsetType = UNSET
    warmup_started: date | UnsetType | None = UNSET
    by: str | None = None


class RecordHealthCheck(Command, frozen=True, kw_only=True):
    """Record what a health check of the number found; a bad one pauses an ACTIVE phone.

    `reputation` is the provider's 0-100 score when it gives one; below `pause_below` the
    phone is paused.
    """

    connected: bool
    reputation: int | None = None
    ban_warning: bool = False
    detail: str | None = None
    pause_below: int = REPUTATION_FLOOR


AnyPhoneCommand = RegisterPhone | ChangePhoneStatus | ChangePhoneSettings | RecordHealthCheck


def decide_phone(phone: Phone, command: AnyPhoneCommand) -> list[PhoneEvent]:
    """Return the events `command` produces from `phone`, or raise a `DomainError`.

    Raises:
        PhoneAlreadyInPool: registering a number whose phone is registered.
        UnknownPhone: any other command on a phone that is not registered.
        InvalidContact: a number that cannot be read as a phone number.
        InvalidCommand: a limit outside 0..200, a reputation outside 0..100, a status
            change without a reason.
    """
    if isinstance(command, RegisterPhone):
        return _register(phone, command)
    if not phone.registered:
        raise UnknownPhone(f"phone {phone.phone_id or '?'} is not in the pool")
    match command:
        case ChangePhoneStatus():
            return _change_status(phone, command)
        case ChangePhoneSettings():
            return _change_settings(phone, command)
        case RecordHealthCheck():
            return _health_check(phone, command)


def evolve(phone: Phone, event: PhoneEvent) -> Phone:
    """Apply one event to the phone's state. Never raises."""
    p = msgspec.structs.replace(phone, version=phone.version + 1, updated_at=event.occurred_at)
    match event:
        case PhoneRegistered():
            return msgspec.structs.replace(
                p,
                tenant_id=event.tenant_id,
                phone_id=event.phone_id,
                number=event.number,
                label=event.label,
                account_id=event.account_id,
                status=event.status,
                status_reason=None,
                status_changed_at=event.occurred_at,
                daily_limit=event.daily_limit,
                warmup_started=event.warmup_started,
                registered_at=event.occurred_at,
            )
        case PhoneStatusChanged():
            return msgspec.structs.replace(
                p,
                status=event.status,
                status_reason=event.reason,
                status_changed_at=event.occurred_at,
            )
        case PhoneSettingsChanged():
            return msgspec.structs.replace(
                p,
                label=event.label,
                account_id=event.account_id,
                daily_limit=event.daily_limit,
                warmup_started=event.warmup_started,
            )
        case PhoneHealthChecked():
            # A check that gives no score leaves the last known one standing.
            reputation = phone.reputation if event.reputation is None else event.reputation
            return msgspec.structs.replace(
                p,
                reputation=reputation,
                connected=event.connected,
                last_health_check_at=event.occurred_at,
            )
        case _:
            return p


def replay(events: Iterable[PhoneEvent], phone: Phone | None = None) -> Phone:
    """Fold events into a phone's state (from empty, or from `phone`)."""
    return reduce(evolve, events, phone or Phone())


def quota_settings(phone: Phone) -> PhoneQuotaSettings:
    """What the quota guardian must know of the phone: status and limits."""
    return PhoneQuotaSettings(
        phone_id=phone.phone_id,
        status=phone.status,
        daily_limit=phone.daily_limit,
        warmup_started=phone.warmup_started,
    )


def stricter(a: PhoneQuotaSettings, b: PhoneQuotaSettings) -> PhoneQuotaSettings:
    """Settings of one phone that allow no more than either `a` or `b` does.

    Not ACTIVE if either is not; the lower limit; the later warm-up start (a later day 1
    is a lower step of the ramp, and None, fully warm, is the loosest). A guardian given
    these while the phone moves from `a` to `b` over-sends in neither.
    """
    status = a.status if a.status is not PhoneStatus.ACTIVE else b.status
    starts = [d for d in (a.warmup_started, b.warmup_started) if d is not None]
    return PhoneQuotaSettings(
        phone_id=b.phone_id,
        status=status,
        daily_limit=min(a.daily_limit, b.daily_limit),
        warmup_started=max(starts) if starts else None,
    )


def _register(phone: Phone, c: RegisterPhone) -> list[PhoneEvent]:
    number = normalize_phone(c.number)
    if phone.registered:
        raise PhoneAlreadyInPool(f"{number} is in the pool already (phone {phone.phone_id})")
    if not c.tenant_id:
        raise InvalidCommand("a phone belongs to a tenant")
    _check_limit(c.daily_limit)
    event = PhoneRegistered(
        event_id=derive_id(c.command_id, 0),
        tenant_id=c.tenant_id,
        phone_id=phone_id_for(c.tenant_id, number),
        occurred_at=c.at,
        number=number,
        label=_text(c.label),
        account_id=_text(c.account_id),
        daily_limit=c.daily_limit,
        warmup_started=c.warmup_started,
        status=c.status,
        by=c.by,
    )
    return [event]


def _change_status(phone: Phone, c: ChangePhoneStatus) -> list[PhoneEvent]:
    reason = c.reason.strip()
    if not reason:
        raise InvalidCommand("a status change says why")
    if c.status is phone.status:
        return []  # already there: setting it again is not a change, and records nothing
    return [_status_changed(phone, c, 0, status=c.status, reason=reason, by=c.by)]


def _change_settings(phone: Phone, c: ChangePhoneSettings) -> list[PhoneEvent]:
    label = phone.label if isinstance(c.label, UnsetType) else _text(c.label)
    account = phone.account_id if isinstance(c.account_id, UnsetType) else _text(c.account_id)
    limit = phone.daily_limit if isinstance(c.daily_limit, UnsetType) else c.daily_limit
    warmup = phone.warmup_started if isinstance(c.warmup_started, UnsetType) else c.warmup_started
    _check_limit(limit)
    now = (label, account, limit, warmup)
    if now == (phone.label, phone.account_id, phone.daily_limit, phone.warmup_started):
        return []
    event = PhoneSettingsChanged(
        event_id=derive_id(c.command_id, 0),
        tenant_id=phone.tenant_id,
        phone_id=phone.phone_id,
        occurred_at=c.at,
        label=label,
        account_id=account,
        daily_limit=limit,
        warmup_started=warmup,
        by=c.by,
    )
    return [event]


def _health_check(phone: Phone, c: RecordHealthCheck) -> list[PhoneEvent]:
    if c.reputation is not None and not 0 <= c.reputation <= 100:  # noqa: PLR2004 - the scale
        raise InvalidCommand(f"a reputation is 0 to 100, not {c.reputation}")
    events: list[PhoneEvent] = [
        PhoneHealthChecked(
            event_id=derive_id(c.command_id, 0),
            tenant_id=phone.tenant_id,
            phone_id=phone.phone_id,
            occurred_at=c.at,
            connected=c.connected,
            reputation=c.reputation,
            ban_warning=c.ban_warning,
            detail=c.detail,
        )
    ]
    troubles = []
    if not c.connected:
        troubles.append("disconnected")
    if c.ban_warning:
        troubles.append("ban warning")
    if c.reputation is not None and c.reputation < c.pause_below:
        troubles.append(f"reputation {c.reputation} below {c.pause_below}")
    if troubles and phone.status is PhoneStatus.ACTIVE:
        reason = "health check: " + ", ".join(troubles)
        events.append(
            _status_changed(phone, c, 1, status=PhoneStatus.PAUSED, reason=reason, by=None)
        )
    return events


def _status_changed(
    phone: Phone, c: Command, index: int, *, status: PhoneStatus, reason: str, by: str | None
) -> PhoneStatusChanged:
    return PhoneStatusChanged(
        event_id=derive_id(c.command_id, index),
        tenant_id=phone.tenant_id,
        phone_id=phone.phone_id,
        occurred_at=c.at,
        status=status,
        previous=phone.status,
        reason=reason,
        by=by,
    )


def _check_limit(limit: int) -> None:
    if not 0 <= limit <= DAILY_NEW_CONVERSATIONS:
        raise InvalidCommand(
            f"a daily limit is 0 to {DAILY_NEW_CONVERSATIONS} new conversations, not {limit}"
        )


def _text(value: str | None) -> str | None:
    """A free-text setting: surrounding blanks dropped, an empty one is no value."""
    if value is None:
        return None
    return value.strip() or None
