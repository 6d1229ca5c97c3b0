"""The phone pool's use cases: add numbers, change them, record health checks, list them.

Each change runs the usual loop on the phone's own stream (`phone:<id>`): read, fold,
`decide_phone`, append at the version read; a concurrent writer makes the append conflict
and the loop decides again on fresh state. The read model (`wa_phone_numbers`) is inline,
so what a change wrote is listed at once.

KEEPING THE GUARDIAN IN STEP. The quota guardian (Redis in production) holds each phone's
status and limits apart from the log, so the two can drift; the pool orders its writes so
that drift can only ever make the guardian stricter than the log, never looser:

1. Before the append, the guardian gets the stricter of the phone's old and new settings
   (`domain.phones.stricter`): a pause or ban is in force before it is recorded.
2. After it, the guardian gets the new settings, and the pool checks that the stream has
   not moved on meanwhile; if it has (another writer changed the phone), it sets the
   latest state instead, until it finds the stream still. So two writers finishing in any
   order leave the guardian with the log's last word.
3. When the guardian cannot be told before the append, nothing is appended (the error is
   raised): a ban that the guardian might not enforce is not recorded as done. When a
   change fails after step 1, the guardian is set again from the log.

A crash between the append and step 2 leaves the guardian at the stricter settings of step
1; `sync_guardian` at start-up (and any later change of the phone) puts it back in step.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

import msgspec
from msgspec import UNSET, UnsetType

from cerniq_outreach.application.phone_directory import (
    PhoneDirectory,
    PhoneQuotaSource,
    PhoneView,
    view_of,
)
from cerniq_outreach.application.records import ConcurrencyConflict, Metadata
from cerniq_outreach.domain.contacts import InvalidContact, normalize_phone
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import UnknownPhone
from cerniq_outreach.domain.events import PhoneEvent, phone_stream
from cerniq_outreach.domain.phones import (
    DEFAULT_DAILY_LIMIT,
    AnyPhoneCommand,
    ChangePhoneSettings,
    ChangePhoneStatus,
    Phone,
    RecordHealthCheck,
    RegisterPhone,
    decide_phone,
    phone_id_for,
    quota_settings,
    replay,
    stricter,
)
from cerniq_outreach.domain.quota import PhoneQuotaView, effective_limit
from cerniq_outreach.domain.quota_ledger import DEFAULT_POLICY, QuotaPolicy

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import date

    from cerniq_outreach.application.ports import (
        Clock,
        EventStore,
        QuotaGuardian,
        ReadModelDatabase,
    )

ATTEMPTS = 10
"""How often a change is decided again after a concurrent writer moved the phone."""


class PhoneChange(msgspec.Struct, frozen=True, kw_only=True):
    """What a change did: the phone before and after (equal when nothing changed)."""

    before: PhoneView | None
    after: PhoneView
    changed: bool


def _default_policy(_tenant_id: str) -> QuotaPolicy:
    return DEFAULT_POLICY


class PhonePool:
    """The WhatsApp numbers of every tenant, and the guardian kept in step with them.

    Args:
        store: the event log (phones have streams of their own in it).
        read_models: where `wa_phone_numbers` is projected (inline with the store).
        guardian: the quota guardian that decides sends by each phone's status and limits.
        clock: the time of each change and what "today" is.
        policy_for: each tenant's quota policy (calendar day and warm-up ramp).
    """

    def __init__(
        self,
        store: EventStore,
        read_models: ReadModelDatabase,
        guardian: QuotaGuardian,
        clock: Clock,
        *,
        policy_for: Callable[[str], QuotaPolicy] = _default_policy,
    ) -> None:
        self._store = store
        self._guardian = guardian
        self._clock = clock
        self._policy_for = policy_for
        self.directory = PhoneDirectory(read_models)
        self.phone_source = PhoneQuotaSource(read_models, clock, policy_for)

    # --- changes ---------------------------------------------------------------------------

    def add(
        self,
        tenant_id: str,
        number: str,
        *,
        label: str | None = None,
        account_id: str | None = None,
        daily_limit: int = DEFAULT_DAILY_LIMIT,
        warmup_started: date | UnsetType | None = UNSET,
        status: PhoneStatus = PhoneStatus.ACTIVE,
        by: str | None = None,
        command_id: str | None = None,
    ) -> PhoneView:
        """Register a number (any common form); `PhoneAlreadyInPool` if it is there already.

        A new number warms up from today unless `warmup_started` says otherwise (None: it
        is warm already and gets its full limit at once).
        """
        phone_id = phone_id_for(tenant_id, normalize_phone(number))
        if isinstance(warmup_started, UnsetType):
            warmup_started = self.today(tenant_id)
        command = RegisterPhone(
            command_id=command_id or uuid.uuid4().hex,
            at=self._clock.now(),
            tenant_id=tenant_id,
            number=number,
            label=label,
            account_id=account_id,
            daily_limit=daily_limit,
            warmup_started=warmup_started,
            status=status,
            by=by,
        )
        return self._run(tenant_id, phone_id, command, by).after

    def set_status(
        self,
        tenant_id: str,
        phone: str,
        status: PhoneStatus,
        reason: str,
        *,
        by: str | None = None,
        command_id: str | None = None,
    ) -> PhoneChange:
        """Move a phone (its id or number) to `status`; its current status changes nothing."""
        command = ChangePhoneStatus(
            command_id=command_id or uuid.uuid4().hex,
            at=self._clock.now(),
            status=status,
            reason=reason,
            by=by,
        )
        return self._run(tenant_id, self.resolve(tenant_id, phone), command, by)

    def change_settings(
        self,
        tenant_id: str,
        phone: str,
        *,
        label: str | UnsetType | None = UNSET,
        account_id: str | UnsetType | None = UNSET,
        daily_limit: int | UnsetType = UNSET,
        warmup_started: date | UnsetType | None = UNSET,
        by: str | None = None,
        command_id: str | None = None,
    ) -> PhoneChange:
        """Change some settings of a phone (its id or number); UNSET ones stay as they are."""
        command = ChangePhoneSettings(
            command_id=command_id or uuid.uuid4().hex,
            at=self._clock.now(),
            label=label,
            account_id=account_id,
            daily_limit=daily_limit,
            warmup_started=warmup_started,
            by=by,
        )
        return self._run(tenant_id, self.resolve(tenant_id, phone), command, by)

    def record_health_check(
        self,
        tenant_id: str,
        phone: str,
        *,
        connected: bool,
        reputation: int | None = None,
        ban_warning: bool = False,
        detail: str | None = None,
        command_id: str | None = None,
    ) -> PhoneChange:
        """Record a health check; a bad one pauses an ACTIVE phone (see `domain.phones`)."""
        command = RecordHealthCheck(
            command_id=command_id or uuid.uuid4().hex,
            at=self._clock.now(),
            connected=connected,
            reputation=reputation,
            ban_warning=ban_warning,
            detail=detail,
        )
        return self._run(tenant_id, self.resolve(tenant_id, phone), command, None)

    # --- reading ---------------------------------------------------------------------------

    def resolve(self, tenant_id: str, phone: str) -> str:
        """The id of a phone given by its id or its number in any common form.

        Raises:
            UnknownPhone: neither an id nor a number of the tenant's pool.
        """
        if self._store.stream_version(tenant_id, phone_stream(phone)) > 0:
            return phone
        try:
            number = normalize_phone(phone)
        except InvalidContact:
            msg = f"no phone {phone!r} in the pool (neither an id nor a number)"
            raise UnknownPhone(msg) from None
        phone_id = phone_id_for(tenant_id, number)
        if self._store.stream_version(tenant_id, phone_stream(phone_id)) == 0:
            raise UnknownPhone(f"{number} is not in the pool")
        return phone_id

    def list(self, tenant_id: str) -> list[PhoneView]:
        """The tenant's phones with today's usage (the guardian's) and today's limit."""
        return [self._today(tenant_id, view) for view in self.directory.phones(tenant_id)]

    def get(self, tenant_id: str, phone: str) -> PhoneView:
        """One phone (its id or number) with today's usage and limit."""
        view = self.directory.phone(tenant_id, self.resolve(tenant_id, phone))
        if view is None:  # pragma: no cover - the read model is inline with the log
            raise UnknownPhone(f"phone {phone} is not in the read model")
        return self._today(tenant_id, view)

    def today(self, tenant_id: str) -> date:
        """The tenant's local calendar day now (the quota's day)."""
        return self._policy_for(tenant_id).hours.local_date(self._clock.now())

    def status_of(self, tenant_id: str, phone_id: str) -> PhoneStatus | None:
        """A phone's status (None: not in the pool); for routing WhatsApp sends."""
        view = self.directory.phone(tenant_id, phone_id)
        return None if view is None else view.status

    # --- the guardian ----------------------------------------------------------------------

    def sync_guardian(self, tenant_id: str | None = None) -> int:
        """Load the guardian from the database: the phones, and today's usage (a restore).

        For one tenant, or for every tenant with phones (this needs read models that see
        every tenant). Run at start-up, before sends are decided: it repairs whatever a
        crash left out of step. A phone changed while it runs is set again from the log.
        Returns the number of phones loaded.
        """
        tenants = [tenant_id] if tenant_id is not None else self.directory.tenants()
        loaded = 0
        for tenant in tenants:
            phones, usage = self.phone_source.snapshot(tenant)
            self._guardian.load_phones(tenant, [p.quota_settings for p in phones], usage)
            # What changed since the snapshot may have been overwritten by the load: set it
            # again from the log (a change's own writer also checks after telling us).
            loaded_versions = {p.phone_id: p.version for p in phones}
            for view in self.directory.phones(tenant):
                if loaded_versions.get(view.phone_id) != view.version:
                    self._keep_in_step(tenant, self._fold(tenant, view.phone_id))
            loaded += len(phones)
        return loaded

    # --- the loop --------------------------------------------------------------------------

    def _run(
        self, tenant_id: str, phone_id: str, command: AnyPhoneCommand, actor: str | None
    ) -> PhoneChange:
        """Decide and append on fresh state until no writer interferes (module doc)."""
        conflict: ConcurrencyConflict | None = None
        try:
            for _ in range(ATTEMPTS):
                try:
                    return self._attempt(tenant_id, phone_id, command, actor)
                except ConcurrencyConflict as exc:
                    conflict = exc
        except Exception:
            self._resync(tenant_id, phone_id)
            raise
        self._resync(tenant_id, phone_id)
        raise conflict or ConcurrencyConflict(phone_stream(phone_id), 0, 0)

    def _attempt(
        self, tenant_id: str, phone_id: str, command: AnyPhoneCommand, actor: str | None
    ) -> PhoneChange:
        """One read-decide-append; `ConcurrencyConflict` when another writer came first."""
        before = self._fold(tenant_id, phone_id)
        events = decide_phone(before, command)
        after = replay(events, before)
        if not events:
            self._keep_in_step(tenant_id, after)
            return _change(before, after, changed=False)
        if before.registered:
            # Stricter first: a pause or a ban is enforced before it is recorded.
            tightened = stricter(quota_settings(before), quota_settings(after))
            self._guardian.set_phone(tenant_id, tightened)
        self._store.append(
            tenant_id,
            phone_stream(phone_id),
            events,
            expected_version=before.version,
            metadata=Metadata(actor=actor),
        )
        self._keep_in_step(tenant_id, after)
        return _change(before, after, changed=True)

    def _fold(self, tenant_id: str, phone_id: str) -> Phone:
        records = self._store.read_stream(tenant_id, phone_stream(phone_id))
        return replay(r.event for r in records if isinstance(r.event, PhoneEvent))

    def _keep_in_step(self, tenant_id: str, phone: Phone) -> None:
        """Tell the guardian `phone`'s settings, then again while the stream moves on."""
        if not phone.registered:
            return
        for _ in range(ATTEMPTS):
            self._guardian.set_phone(tenant_id, quota_settings(phone))
            stream = phone_stream(phone.phone_id)
            if self._store.stream_version(tenant_id, stream) == phone.version:
                return
            phone = self._fold(tenant_id, phone.phone_id)

    def _resync(self, tenant_id: str, phone_id: str) -> None:
        """After a failed change: the guardian from the log (it may hold step 1's settings).

        A failure here leaves the guardian at the stricter settings, which under-sends
        until the next change or start-up: safe, so it is not worth hiding the first error.
        """
        with contextlib.suppress(Exception):
            self._keep_in_step(tenant_id, self._fold(tenant_id, phone_id))

    def _today(self, tenant_id: str, view: PhoneView) -> PhoneView:
        today = self.today(tenant_id)
        quota = PhoneQuotaView(
            phone_id=view.phone_id,
            status=view.status,
            daily_limit=view.daily_limit,
            warmup_started=view.warmup_started,
        )
        limit, warming = effective_limit(quota, today, self._policy_for(tenant_id).ramp)
        used = self._guardian.usage(tenant_id, view.phone_id, today)
        return msgspec.structs.replace(view, used_today=used, limit_today=limit, warming_up=warming)


def _change(before: Phone, after: Phone, *, changed: bool) -> PhoneChange:
    return PhoneChange(
        before=view_of(before) if before.registered else None,
        after=view_of(after),
        changed=changed,
    )
