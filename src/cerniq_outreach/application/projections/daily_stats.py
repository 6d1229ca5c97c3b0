"""`outreach_daily_stats`: counts per tenant, local day and channel, for the dashboard.

Follows the log (a projector applies it; counts are not idempotent, so exactly-once comes
from the checkpoint committed with these writes). The day is the local calendar day of the
event's `occurred_at` (Europe/Bucharest by default). Facts about a message count under its
channel; facts about the lead (enrolled, opted out, reviews, converted, dead) under 'ALL'.

Provider events (delivered, read, ...) name only the message, so the projection keeps its
own small table of message channels (`outreach_stats_messages`) instead of reading the
journey's communication log: it then rebuilds and verifies on its own.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from cerniq_outreach.application.projections.base import QUOTA_ZONE, local_day
from cerniq_outreach.domain.enums import JourneyState
from cerniq_outreach.domain.events import (
    LeadEnrolled,
    MessageBounced,
    MessageCancelled,
    MessageClicked,
    MessageDelivered,
    MessageFailed,
    MessageOpened,
    MessageQueued,
    MessageRead,
    MessageSent,
    OptedOut,
    ReplyReceived,
    ReviewRequested,
    ReviewResolved,
    StateChanged,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

TABLE = "outreach_daily_stats"
MESSAGES = "outreach_stats_messages"
LEAD_LEVEL = "ALL"

COUNTERS = (
    "enrolled",
    "queued",
    "sent",
    "new_contacts",
    "delivered",
    "read",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "failed",
    "cancelled",
    "opted_out",
    "reviews_opened",
    "reviews_resolved",
    "converted",
    "dead",
)

# One upsert per counter, built once from the constant names above ("read" is quoted: it
# is a keyword in SQL).
_BUMP = {
    counter: f"""
INSERT INTO outreach_daily_stats (tenant_id, stat_date, channel, "{counter}")
VALUES (:tenant, :day, :channel, :n)
ON CONFLICT (tenant_id, stat_date, channel) DO UPDATE SET
    "{counter}" = outreach_daily_stats."{counter}" + excluded."{counter}"
"""  # noqa: S608 - counter names from COUNTERS
    for counter in COUNTERS
}

_REMEMBER = """
INSERT INTO outreach_stats_messages (tenant_id, lead_id, message_id, channel)
VALUES (:tenant, :lead, :message_id, :channel)
ON CONFLICT (tenant_id, lead_id, message_id) DO NOTHING
"""

_CHANNEL = """
SELECT channel FROM outreach_stats_messages
WHERE tenant_id = :tenant AND lead_id = :lead AND message_id = :message_id
"""

_MESSAGE_FACTS: dict[type, str] = {
    MessageDelivered: "delivered",
    MessageRead: "read",
    MessageOpened: "opened",
    MessageClicked: "clicked",
    MessageBounced: "bounced",
    MessageFailed: "failed",
    MessageCancelled: "cancelled",
}
_LEAD_FACTS: dict[type, str] = {
    LeadEnrolled: "enrolled",
    OptedOut: "opted_out",
    ReviewRequested: "reviews_opened",
    ReviewResolved: "reviews_resolved",
}
_OUTCOMES = {JourneyState.CONVERTED: "converted", JourneyState.DEAD: "dead"}


class DailyStatsProjection:
    """Counts the day's events per channel (see module doc).

    Args:
        zone: the time zone whose calendar days the statistics use.
    """

    tables: tuple[str, ...] = (TABLE, MESSAGES)
    keys: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType(
        {
            TABLE: ("tenant_id", "stat_date", "channel"),
            MESSAGES: ("tenant_id", "lead_id", "message_id"),
        }
    )
    idempotent: ClassVar[bool] = False

    def __init__(self, *, zone: str = QUOTA_ZONE, name: str = "daily_stats") -> None:
        self.name = name
        self.zone = zone

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Count one event under its day and channel."""
        event = record.event
        kind = type(event)
        if isinstance(event, MessageQueued):
            tx.execute(
                _REMEMBER,
                {
                    "tenant": record.tenant_id,
                    "lead": record.stream_id,
                    "message_id": event.message_id,
                    "channel": event.channel.value,
                },
            )
            self._bump(tx, record, "queued", event.channel.value)
        elif isinstance(event, MessageSent):
            self._bump(tx, record, "sent", event.channel.value)
            self._bump(tx, record, "new_contacts", event.channel.value, event.quota_cost)
        elif isinstance(event, ReplyReceived):
            self._bump(tx, record, "replied", event.channel.value)
        elif kind in _MESSAGE_FACTS:
            channel = self._channel(tx, record, getattr(event, "message_id", ""))
            if channel is not None:  # a fact about a message never queued: nothing to count
                self._bump(tx, record, _MESSAGE_FACTS[kind], channel)
        elif kind in _LEAD_FACTS:
            self._bump(tx, record, _LEAD_FACTS[kind], LEAD_LEVEL)
        elif isinstance(event, StateChanged) and event.to_state in _OUTCOMES:
            self._bump(tx, record, _OUTCOMES[event.to_state], LEAD_LEVEL)

    def _bump(
        self, tx: SqlTx, record: RecordedEvent, counter: str, channel: str, n: int = 1
    ) -> None:
        if n == 0:
            return  # a zero would still create the day's row; keep rows to real activity
        tx.execute(
            _BUMP[counter],
            {
                "tenant": record.tenant_id,
                "day": local_day(record.occurred_at, self.zone),
                "channel": channel,
                "n": n,
            },
        )

    @staticmethod
    def _channel(tx: SqlTx, record: RecordedEvent, message_id: str) -> str | None:
        rows = tx.fetchall(
            _CHANNEL,
            {"tenant": record.tenant_id, "lead": record.stream_id, "message_id": message_id},
        )
        return str(rows[0]["channel"]) if rows else None
