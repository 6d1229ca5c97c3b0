"""Reading the phone pool: its read model as values, and what the quota guardian reloads.

`PhoneDirectory` reads `wa_phone_numbers` (and, for usage, the quota audit and the
communication log); `PhoneQuotaSource` is the callable a guardian restores a tenant from:
the phones' quota settings and today's new conversations per phone.

WHAT "USED TODAY" IS AFTER A LOSS. The guardian counts a new conversation when it reserves
it, before `MessageQueued` is appended; the database has two later copies of that count.
`wa_quota_usage` counts sends (MessageSent), and follows the log through a projector, so it
lags and misses what is queued but not sent yet. The communication log is inline and holds
every queued message: the distinct leads whose new-conversation message was queued on the
phone that local day (whatever became of the message: a cancelled one may have been given
back, but counting it can only under-send). The restore takes the larger of the two, so a
guardian rebuilt from the database never believes a phone has more quota left than it has.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec

from cerniq_outreach.application.projections.base import iso
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.quota_ledger import DEFAULT_POLICY, PhoneQuotaSettings, QuotaPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from cerniq_outreach.application.ports import Clock, ReadModelDatabase
    from cerniq_outreach.domain.phones import Phone

_COLUMNS = (
    "id, phone_number, label, timelinesai_account_id, status, status_reason,"
    " status_changed_at, daily_limit, warmup_started, reputation_score, connected,"
    " last_health_check_at, version, created_at, updated_at"
)
_PHONES = f"SELECT {_COLUMNS} FROM wa_phone_numbers WHERE tenant_id = :tenant ORDER BY phone_number"  # noqa: S608 - constant columns
_PHONE = f"SELECT {_COLUMNS} FROM wa_phone_numbers WHERE tenant_id = :tenant AND id = :phone_id"  # noqa: S608 - constant columns
_TENANTS = "SELECT DISTINCT tenant_id FROM wa_phone_numbers ORDER BY tenant_id"
_AUDITED = """
SELECT phone_id, new_contacts FROM wa_quota_usage
WHERE tenant_id = :tenant AND usage_date = :day AND new_contacts > 0
"""
# `quota_cost = 1` verbatim: it is the condition of the partial index that serves this.
_QUEUED = """
SELECT phone_id, COUNT(DISTINCT lead_id) AS leads FROM gold_communication_log
WHERE tenant_id = :tenant AND quota_cost = 1 AND phone_id IS NOT NULL
    AND channel = 'WHATSAPP' AND created_at >= :start AND created_at < :end
GROUP BY phone_id
"""


class PhoneView(msgspec.Struct, frozen=True, kw_only=True):
    """One phone of the pool as the read model (or the fold) shows it.

    `used_today` and `limit_today` are filled where they were asked for (listing): new
    conversations the guardian counted on the local day, and the day's limit after the
    warm-up ramp (`warming_up` when the ramp, not the phone's own limit, binds).
    """

    phone_id: str
    number: str
    label: str | None = None
    account_id: str | None = None
    status: PhoneStatus
    status_reason: str | None = None
    status_changed_at: datetime
    daily_limit: int
    warmup_started: date | None = None
    reputation: int | None = None
    connected: bool | None = None
    last_health_check_at: datetime | None = None
    version: int
    created_at: datetime
    updated_at: datetime
    used_today: int | None = None
    limit_today: int | None = None
    warming_up: bool | None = None

    @property
    def quota_settings(self) -> PhoneQuotaSettings:
        """What the quota guardian must know of this phone."""
        return PhoneQuotaSettings(
            phone_id=self.phone_id,
            status=self.status,
            daily_limit=self.daily_limit,
            warmup_started=self.warmup_started,
        )


def view_of(phone: Phone) -> PhoneView:
    """The view of a folded phone (what the read model holds after the same events)."""
    if phone.registered_at is None or phone.status_changed_at is None or phone.updated_at is None:
        raise ValueError(f"phone {phone.phone_id or '?'} is not registered")
    return PhoneView(
        phone_id=phone.phone_id,
        number=phone.number,
        label=phone.label,
        account_id=phone.account_id,
        status=phone.status,
        status_reason=phone.status_reason,
        status_changed_at=phone.status_changed_at,
        daily_limit=phone.daily_limit,
        warmup_started=phone.warmup_started,
        reputation=phone.reputation,
        connected=phone.connected,
        last_health_check_at=phone.last_health_check_at,
        version=phone.version,
        created_at=phone.registered_at,
        updated_at=phone.updated_at,
    )


class PhoneDirectory:
    """Reads the phone pool's read model.

    Args:
        read_models: where `wa_phone_numbers` lives. Reading every tenant (`tenants`) needs
            a database that sees them all: SQLite, or PostgreSQL as `cerniq_follower`.
    """

    def __init__(self, read_models: ReadModelDatabase) -> None:
        self._db = read_models

    def phones(self, tenant_id: str) -> list[PhoneView]:
        """The tenant's phones, by number."""
        with self._db.transaction(tenant_id) as tx:
            rows = tx.fetchall(_PHONES, {"tenant": tenant_id})
        return [_view(row) for row in rows]

    def phone(self, tenant_id: str, phone_id: str) -> PhoneView | None:
        """One phone of the tenant, or None."""
        with self._db.transaction(tenant_id) as tx:
            rows = tx.fetchall(_PHONE, {"tenant": tenant_id, "phone_id": phone_id})
        return _view(rows[0]) if rows else None

    def tenants(self) -> list[str]:
        """The tenants that have phones (all of them only where the database shows all)."""
        with self._db.transaction() as tx:
            return [str(row["tenant_id"]) for row in tx.fetchall(_TENANTS)]

    def new_conversations(self, tenant_id: str, day: date, zone: str) -> dict[str, int]:
        """Per phone, the new conversations the database knows of on local day `day`.

        The larger of the sends audited in `wa_quota_usage` and the distinct leads queued
        as new contacts in the communication log (module doc).
        """
        start = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))
        with self._db.transaction(tenant_id) as tx:
            audited = tx.fetchall(_AUDITED, {"tenant": tenant_id, "day": day.isoformat()})
            window = {"tenant": tenant_id, "start": iso(start), "end": iso(end)}
            queued = tx.fetchall(_QUEUED, window)
        used: dict[str, int] = {}
        for phone_id, count in [(r["phone_id"], r["new_contacts"]) for r in audited] + [
            (r["phone_id"], r["leads"]) for r in queued
        ]:
            used[str(phone_id)] = max(used.get(str(phone_id), 0), int(count))
        return used


class PhoneQuotaSource:
    """A tenant's phones and today's usage, as a quota guardian restores them.

    Call it with a tenant id: `(settings of each phone, {(phone_id, local day): used})`.
    Give it to the Redis guardian as its `phone_source` (its self-healing reload after
    Redis lost the tenant's keys) and use it for the start-up load (`PhonePool`).

    Args:
        read_models: where the pool's and the quota's read models live.
        clock: what "today" is (simulated in the demo).
        policy_for: each tenant's quota policy (its business hours say whose calendar day).
    """

    def __init__(
        self,
        read_models: ReadModelDatabase,
        clock: Clock,
        policy_for: Callable[[str], QuotaPolicy] = lambda _tenant: DEFAULT_POLICY,
    ) -> None:
        self.directory = PhoneDirectory(read_models)
        self._clock = clock
        self._policy_for = policy_for

    def __call__(
        self, tenant_id: str
    ) -> tuple[list[PhoneQuotaSettings], dict[tuple[str, date], int]]:
        """The tenant's phones and their new conversations of the local day."""
        phones, used = self.snapshot(tenant_id)
        return [p.quota_settings for p in phones], used

    def snapshot(self, tenant_id: str) -> tuple[list[PhoneView], dict[tuple[str, date], int]]:
        """The tenant's phones as read (with their versions), and the day's usage."""
        phones = self.directory.phones(tenant_id)
        hours = self._policy_for(tenant_id).hours
        today = hours.local_date(self._clock.now())
        used = self.directory.new_conversations(tenant_id, today, hours.zone)
        return phones, {(phone_id, today): n for phone_id, n in used.items()}


def _view(row: dict[str, Any]) -> PhoneView:
    """A row of `wa_phone_numbers`, from SQLite (text, 0/1) or PostgreSQL (typed)."""
    return PhoneView(
        phone_id=str(row["id"]),
        number=str(row["phone_number"]),
        label=row["label"],
        account_id=row["timelinesai_account_id"],
        status=PhoneStatus(row["status"]),
        status_reason=row["status_reason"],
        status_changed_at=_instant(row["status_changed_at"]),
        daily_limit=int(row["daily_limit"]),
        warmup_started=_date(row["warmup_started"]),
        reputation=None if row["reputation_score"] is None else int(row["reputation_score"]),
        connected=None if row["connected"] is None else bool(row["connected"]),
        last_health_check_at=_optional_instant(row["last_health_check_at"]),
        version=int(row["version"]),
        created_at=_instant(row["created_at"]),
        updated_at=_instant(row["updated_at"]),
    )


def _instant(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _optional_instant(value: object) -> datetime | None:
    return None if value is None else _instant(value)


def _date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
