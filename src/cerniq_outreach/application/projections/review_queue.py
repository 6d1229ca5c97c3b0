"""`human_review_queue`: the review desk, one row per review item.

Inline, like the journey: opening and closing a review are visible to the request that did
them. Idempotent by construction (an item is inserted once by its id and resolved only while
OPEN), so a replay running beside live appends cannot count anything twice.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from cerniq_outreach.application.projections.base import iso
from cerniq_outreach.domain.events import ReviewRequested, ReviewResolved
from cerniq_outreach.domain.review import PRIORITY_RANK

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

TABLE = "human_review_queue"

_OPEN = """
INSERT INTO human_review_queue (
    tenant_id, review_id, lead_id, reason, priority, priority_rank, sla_due_at, status,
    created_at)
VALUES (:tenant, :review_id, :lead, :reason, :priority, :rank, :sla_due_at, 'OPEN', :at)
ON CONFLICT (tenant_id, review_id) DO NOTHING
"""

_RESOLVE = """
UPDATE human_review_queue SET status = 'RESOLVED', resolution = :resolution,
    resolved_by = :resolved_by, resolved_at = :at
WHERE tenant_id = :tenant AND review_id = :review_id AND status = 'OPEN'
"""


class ReviewQueueProjection:
    """Opens an item on ReviewRequested and closes it on ReviewResolved."""

    name = "review_queue"
    tables: tuple[str, ...] = (TABLE,)
    keys: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType(
        {TABLE: ("tenant_id", "review_id")}
    )
    idempotent: ClassVar[bool] = True

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Open or resolve the item an event names; other events change nothing here."""
        event = record.event
        if isinstance(event, ReviewRequested):
            tx.execute(
                _OPEN,
                {
                    "tenant": record.tenant_id,
                    "review_id": event.review_id,
                    "lead": record.stream_id,
                    "reason": event.reason.value,
                    "priority": event.priority.value,
                    "rank": PRIORITY_RANK[event.priority],
                    "sla_due_at": iso(event.sla_due_at),
                    "at": iso(record.occurred_at),
                },
            )
        elif isinstance(event, ReviewResolved):
            tx.execute(
                _RESOLVE,
                {
                    "tenant": record.tenant_id,
                    "review_id": event.review_id,
                    "resolution": event.resolution.value,
                    "resolved_by": event.resolved_by,
                    "at": iso(record.occurred_at),
                },
            )
