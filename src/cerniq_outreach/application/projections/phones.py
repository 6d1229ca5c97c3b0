"""`wa_phone_numbers`: the tenant's pool of WhatsApp numbers, one row per phone.

INLINE, like the journey: applied in the append's transaction, so `phones list` and the API
read their own writes, and the phone pool can resolve a number right after adding it.

EXACTLY ONCE PER STREAM, WITHOUT A CHECKPOINT, as the journey row does it: the row carries
the phone stream's `version`, and the event at version v is applied only onto a row at
v - 1 (the registration, v = 1, is an insert that does nothing when the row exists). A
second application of the same event changes nothing, which lets `replay` rebuild this
model while appends keep applying it.

It mirrors `domain.phones.evolve` column for column (the property tests hold the two side by
side): a health check without a score keeps the last known reputation.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from cerniq_outreach.application.projections.base import iso
from cerniq_outreach.domain.events import (
    PhoneEvent,
    PhoneHealthChecked,
    PhoneRegistered,
    PhoneSettingsChanged,
    PhoneStatusChanged,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

TABLE = "wa_phone_numbers"

_REGISTER = """
INSERT INTO wa_phone_numbers (
    tenant_id, id, phone_number, label, timelinesai_account_id, status, status_reason,
    status_changed_at, daily_limit, warmup_started, version, created_at, updated_at)
VALUES (:tenant, :phone_id, :number, :label, :account_id, :status, NULL,
    :at, :daily_limit, :warmup_started, :version, :at, :at)
ON CONFLICT (tenant_id, id) DO NOTHING
"""


def _claim(assignments: str) -> str:
    """An UPDATE that applies the event only onto the version before it (module doc)."""
    return (
        f"UPDATE wa_phone_numbers SET version = :version, updated_at = :at, {assignments}"  # noqa: S608 - assignments are constants of this module
        " WHERE tenant_id = :tenant AND id = :phone_id AND version = :previous"
    )


_STATUS = _claim("status = :status, status_reason = :reason, status_changed_at = :at")
_SETTINGS = _claim(
    "label = :label, timelinesai_account_id = :account_id, daily_limit = :daily_limit,"
    " warmup_started = :warmup_started"
)
_HEALTH = _claim(
    "reputation_score = COALESCE(:reputation, reputation_score), connected = :connected,"
    " last_health_check_at = :at"
)


class PhonesProjection:
    """`wa_phone_numbers`, applied inline (see module doc)."""

    name = "phones"
    tables: tuple[str, ...] = (TABLE,)
    keys: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({TABLE: ("tenant_id", "id")})
    idempotent: ClassVar[bool] = True

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Fold a phone event into its row, if it is the next one; other events are not ours."""
        event = record.event
        if not isinstance(event, PhoneEvent):
            return
        params: dict[str, Any] = {
            "tenant": record.tenant_id,
            "phone_id": event.phone_id,
            "version": record.stream_version,
            "previous": record.stream_version - 1,
            "at": iso(record.occurred_at),
        }
        match event:
            case PhoneRegistered():
                params |= {"number": event.number, "status": event.status.value}
                tx.execute(_REGISTER, {**params, **_settings(event)})
            case PhoneStatusChanged():
                params |= {"status": event.status.value, "reason": event.reason}
                tx.execute(_STATUS, params)
            case PhoneSettingsChanged():
                tx.execute(_SETTINGS, {**params, **_settings(event)})
            case PhoneHealthChecked():
                params |= {"reputation": event.reputation, "connected": event.connected}
                tx.execute(_HEALTH, params)
            case _:
                pass


def _settings(event: PhoneRegistered | PhoneSettingsChanged) -> dict[str, Any]:
    warmup = event.warmup_started
    return {
        "label": event.label,
        "account_id": event.account_id,
        "daily_limit": event.daily_limit,
        "warmup_started": None if warmup is None else warmup.isoformat(),
    }
