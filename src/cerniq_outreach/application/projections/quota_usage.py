"""`wa_quota_usage`: WhatsApp sends per phone and local day, an audit copy of the quota.

Redis decides quota; this table only records what was sent (a projection of MessageSent),
so an operator can see a phone's day and compare it with the guardian's counters. It
follows the log (a projector applies it): a count is not idempotent, so exactly-once comes
from the projector's checkpoint, committed with these writes.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from cerniq_outreach.application.projections.base import QUOTA_ZONE, iso, local_day
from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.events import MessageSent

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

TABLE = "wa_quota_usage"

# first/last_message_at keep the earliest and latest send: events follow the log's order,
# which across leads is not the order of occurred_at.
_SENT = """
INSERT INTO wa_quota_usage (tenant_id, phone_id, usage_date, new_contacts, follow_ups,
    first_message_at, last_message_at)
VALUES (:tenant, :phone_id, :day, :new_contacts, :follow_ups, :at, :at)
ON CONFLICT (tenant_id, phone_id, usage_date) DO UPDATE SET
    new_contacts = wa_quota_usage.new_contacts + excluded.new_contacts,
    follow_ups = wa_quota_usage.follow_ups + excluded.follow_ups,
    first_message_at = CASE WHEN excluded.first_message_at < wa_quota_usage.first_message_at
        THEN excluded.first_message_at ELSE wa_quota_usage.first_message_at END,
    last_message_at = CASE WHEN excluded.last_message_at > wa_quota_usage.last_message_at
        THEN excluded.last_message_at ELSE wa_quota_usage.last_message_at END
"""


class QuotaUsageProjection:
    """Counts each WhatsApp MessageSent as a new contact (cost 1) or a follow-up (cost 0).

    Args:
        zone: the time zone whose calendar day the quota counts (Europe/Bucharest).
    """

    tables: tuple[str, ...] = (TABLE,)
    keys: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType(
        {TABLE: ("tenant_id", "phone_id", "usage_date")}
    )
    idempotent: ClassVar[bool] = False

    def __init__(self, *, zone: str = QUOTA_ZONE, name: str = "quota_usage") -> None:
        self.name = name
        self.zone = zone

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Count a WhatsApp send on its phone's local day; other events change nothing."""
        event = record.event
        if not isinstance(event, MessageSent) or event.channel is not Channel.WHATSAPP:
            return
        if event.phone_id is None:
            return  # a WhatsApp send always names its phone; nothing to count without one
        tx.execute(
            _SENT,
            {
                "tenant": record.tenant_id,
                "phone_id": event.phone_id,
                "day": local_day(record.occurred_at, self.zone),
                "new_contacts": event.quota_cost,
                "follow_ups": 1 - event.quota_cost,
                "at": iso(record.occurred_at),
            },
        )
