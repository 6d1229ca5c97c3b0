"""`gold_communication_log`: one row per outbound message and per inbound reply.

Written by the journey projection (`journey.py`) for its own lead, in the same transaction
and only once the journey row has accepted the event, so these statements need no guard of
their own. Statuses follow the journey fold (`domain.journey`): SENT, FAILED and CANCELLED
are set as they come; provider facts (delivered, read, opened, clicked, bounced, replied)
only ever raise a message's status, so a late "delivered" never demotes a "read".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cerniq_outreach.application.projections.base import iso, personal
from cerniq_outreach.domain.enums import Channel, MessageStatus, opt_out_scope_of

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent
    from cerniq_outreach.domain.events import (
        MessageBounced,
        MessageCancelled,
        MessageFailed,
        MessageQueued,
        MessageSent,
        ReplyReceived,
    )

TABLE = "gold_communication_log"
KEY = ("tenant_id", "lead_id", "message_id")
RECEIVED = "RECEIVED"  # the status of an inbound row (a reply is not an outbound status)

# How far a message got: the journey fold's order (domain/journey.py), which the property
# tests hold this table to (the status here equals the fold's for every message).
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.FAILED: 1,
    MessageStatus.CANCELLED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.BOUNCED: 3,
    MessageStatus.DELIVERED: 3,
    MessageStatus.OPENED: 4,
    MessageStatus.READ: 4,
    MessageStatus.CLICKED: 5,
    MessageStatus.REPLIED: 6,
}

# The rank of the stored status, as SQL: the comparison happens in the UPDATE itself, one
# statement per provider fact instead of a read and a write. Built from constants only.
_RANK_SQL = (
    "CASE status "
    + " ".join(f"WHEN '{status.value}' THEN {rank}" for status, rank in STATUS_RANK.items())
    + " ELSE 0 END"
)

_WHERE = "WHERE tenant_id = :tenant AND lead_id = :lead AND message_id = :message_id"

_QUEUE = """
INSERT INTO gold_communication_log (
    tenant_id, lead_id, message_id, direction, channel, status, sequence_id, step,
    template_id, template_version, content_hash, quota_cost, phone_id, stream_version,
    created_at, updated_at)
VALUES (:tenant, :lead, :message_id, 'OUTBOUND', :channel, 'QUEUED', :sequence_id, :step,
    :template_id, :template_version, :content_hash, :quota_cost, :phone_id, :version,
    :at, :at)
ON CONFLICT (tenant_id, lead_id, message_id) DO NOTHING
"""

_SENT = f"""
UPDATE gold_communication_log SET status = 'SENT', sent_at = :at, provider = :provider,
    external_id = :external_id, updated_at = :at
{_WHERE}
"""  # noqa: S608 - constant fragments only

_FAILED = f"""
UPDATE gold_communication_log SET status = 'FAILED', failed_at = :at,
    failure_reason = :reason, permanent_failure = :permanent, updated_at = :at
{_WHERE}
"""  # noqa: S608 - constant fragments only

_CANCELLED = f"""
UPDATE gold_communication_log SET status = 'CANCELLED', cancelled_at = :at, updated_at = :at
{_WHERE}
"""  # noqa: S608 - constant fragments only

# One statement per fact column: the first time of each fact is kept (COALESCE), the
# status moves only up. Column names come from the fixed table below, never from input.
_FACT_COLUMNS = {
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.READ: "read_at",
    MessageStatus.OPENED: "opened_at",
    MessageStatus.CLICKED: "clicked_at",
    MessageStatus.BOUNCED: "bounced_at",
    MessageStatus.REPLIED: "replied_at",
}
_FACT = {
    status: f"""
UPDATE gold_communication_log SET
    status = CASE WHEN {_RANK_SQL} < :rank THEN :status ELSE status END,
    {column} = COALESCE({column}, :at), updated_at = :at
{_WHERE}
"""  # noqa: S608 - column names from _FACT_COLUMNS
    for status, column in _FACT_COLUMNS.items()
}

_BOUNCE_KIND = f"UPDATE gold_communication_log SET bounce_kind = :kind {_WHERE}"  # noqa: S608 - constant

_REPLY = """
INSERT INTO gold_communication_log (
    tenant_id, lead_id, message_id, direction, channel, status, content_hash, external_id,
    preview, stream_version, created_at, updated_at)
VALUES (:tenant, :lead, :message_id, 'INBOUND', :channel, 'RECEIVED', :content_hash,
    :external_id, :preview, :version, :at, :at)
ON CONFLICT (tenant_id, lead_id, message_id) DO NOTHING
"""


def _family_sql(channel: Channel) -> str:
    """The latest sent outbound message on the channels `channel`'s opt-out scope covers.

    Ties on sent_at go to the message queued first, as the fold's `max` does.
    """
    scope = opt_out_scope_of(channel)
    family = [c.value for c in Channel if opt_out_scope_of(c) == scope]
    names = ", ".join(f"'{value}'" for value in family)  # enum values: constants
    return f"""
SELECT message_id FROM gold_communication_log
WHERE tenant_id = :tenant AND lead_id = :lead AND direction = 'OUTBOUND'
    AND sent_at IS NOT NULL AND channel IN ({names})
ORDER BY sent_at DESC, stream_version ASC LIMIT 1
"""  # noqa: S608 - built from enum constants at import time


_LATEST_SENT = {channel: _family_sql(channel) for channel in Channel}

_CHANNEL_OF = f"SELECT channel FROM gold_communication_log {_WHERE} AND direction = 'OUTBOUND'"  # noqa: S608 - constant


def _base(record: RecordedEvent, message_id: str) -> dict[str, Any]:
    return {
        "tenant": record.tenant_id,
        "lead": record.stream_id,
        "message_id": message_id,
        "at": iso(record.occurred_at),
    }


def queued(tx: SqlTx, record: RecordedEvent, event: MessageQueued) -> None:
    """A new outbound row in status QUEUED."""
    tx.execute(
        _QUEUE,
        {
            **_base(record, event.message_id),
            "channel": event.channel.value,
            "sequence_id": event.sequence_id,
            "step": event.step,
            "template_id": event.template_id,
            "template_version": event.template_version,
            "content_hash": event.content_hash,
            "quota_cost": event.quota_cost,
            "phone_id": event.phone_id,
            "version": record.stream_version,
        },
    )


def sent(tx: SqlTx, record: RecordedEvent, event: MessageSent) -> None:
    """The provider took the message: SENT, with the provider's id for webhooks."""
    params = {"provider": event.provider, "external_id": event.external_id}
    tx.execute(_SENT, {**_base(record, event.message_id), **params})


def failed(tx: SqlTx, record: RecordedEvent, event: MessageFailed) -> None:
    """The provider refused the message."""
    params = {"reason": event.reason, "permanent": event.permanent}
    tx.execute(_FAILED, {**_base(record, event.message_id), **params})


def cancelled(tx: SqlTx, record: RecordedEvent, event: MessageCancelled) -> None:
    """The queued message will not go out."""
    tx.execute(_CANCELLED, _base(record, event.message_id))


def fact(tx: SqlTx, record: RecordedEvent, message_id: str, status: MessageStatus) -> None:
    """A provider fact (delivered, read, opened, clicked, bounced, replied) about a message."""
    params = {**_base(record, message_id), "rank": STATUS_RANK[status], "status": status.value}
    tx.execute(_FACT[status], params)


def bounced(tx: SqlTx, record: RecordedEvent, event: MessageBounced) -> None:
    """The address refused the message; the latest bounce's kind is kept."""
    fact(tx, record, event.message_id, MessageStatus.BOUNCED)
    tx.execute(_BOUNCE_KIND, {**_base(record, event.message_id), "kind": event.kind.value})


def reply(tx: SqlTx, record: RecordedEvent, event: ReplyReceived) -> None:
    """An inbound row for the reply; the latest sent message of its family becomes REPLIED."""
    tx.execute(
        _REPLY,
        {
            **_base(record, record.event_id),
            "channel": event.channel.value,
            "content_hash": event.content_hash,
            "external_id": event.external_id,
            "preview": personal(event.text_preview),
            "version": record.stream_version,
        },
    )
    rows = tx.fetchall(
        _LATEST_SENT[event.channel], {"tenant": record.tenant_id, "lead": record.stream_id}
    )
    if rows:
        fact(tx, record, rows[0]["message_id"], MessageStatus.REPLIED)


def channel_of(tx: SqlTx, record: RecordedEvent, message_id: str) -> Channel | None:
    """The channel of one of the lead's outbound messages (None if never queued)."""
    rows = tx.fetchall(_CHANNEL_OF, _base(record, message_id))
    return Channel(rows[0]["channel"]) if rows else None


def scrub(tx: SqlTx, tenant_id: str, lead_id: str) -> int:
    """Null the reply previews of one lead (erasure); the rows keep their shape."""
    return tx.execute(
        "UPDATE gold_communication_log SET preview = NULL"
        " WHERE tenant_id = :tenant AND lead_id = :lead AND preview IS NOT NULL",
        {"tenant": tenant_id, "lead": lead_id},
    )
