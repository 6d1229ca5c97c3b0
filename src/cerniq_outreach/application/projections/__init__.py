"""The read models, as projections of the event log, and the registry that names them.

Two kinds, by how they are kept up to date:

- INLINE projections run in the append's own transaction (the event store applies them),
  so the API reads its own writes: the journey (`gold_lead_journey` with its communication
  log), the review desk and the phone pool (`wa_phone_numbers`). They are idempotent,
  which lets `replay` rebuild them while appends go on.
- FOLLOWER projections are applied by a `Projector` that follows the global log and commits
  its checkpoint with its writes: quota audit, daily statistics, activity feed.

Every projection is deterministic (no clock, no randomness: times come from the events), so
a rebuild from the log equals the live tables (`replay --verify` checks it).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from cerniq_outreach.application.projections.activity_feed import ActivityFeedProjection
from cerniq_outreach.application.projections.base import ReadModel, comparable, iso
from cerniq_outreach.application.projections.daily_stats import DailyStatsProjection
from cerniq_outreach.application.projections.journey import JourneyProjection, scrub_lead
from cerniq_outreach.application.projections.phones import PhonesProjection
from cerniq_outreach.application.projections.quota_usage import QuotaUsageProjection
from cerniq_outreach.application.projections.review_queue import ReviewQueueProjection
from cerniq_outreach.application.projections.search import search_key, search_pattern

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from cerniq_outreach.application.ports import Projection

__all__ = [
    "ACTIVITY_FEED",
    "ALL_PROJECTIONS",
    "DAILY_STATS",
    "FOLLOWER_PROJECTIONS",
    "INLINE_PROJECTIONS",
    "JOURNEY",
    "PHONES",
    "PROJECTIONS",
    "QUOTA_USAGE",
    "REVIEW_QUEUE",
    "ActivityFeedProjection",
    "DailyStatsProjection",
    "JourneyProjection",
    "PhonesProjection",
    "QuotaUsageProjection",
    "ReadModel",
    "ReviewQueueProjection",
    "UnknownProjection",
    "comparable",
    "iso",
    "projections_named",
    "scrub_lead",
    "search_key",
    "search_pattern",
]

JOURNEY = JourneyProjection()
REVIEW_QUEUE = ReviewQueueProjection()
PHONES = PhonesProjection()
QUOTA_USAGE = QuotaUsageProjection()
DAILY_STATS = DailyStatsProjection()
ACTIVITY_FEED = ActivityFeedProjection()

INLINE_PROJECTIONS: tuple[Projection, ...] = (JOURNEY, REVIEW_QUEUE, PHONES)
"""Applied by the event store in the append transaction."""

FOLLOWER_PROJECTIONS: tuple[Projection, ...] = (QUOTA_USAGE, DAILY_STATS, ACTIVITY_FEED)
"""Applied by a `Projector` following the log."""

ALL_PROJECTIONS: tuple[Projection, ...] = INLINE_PROJECTIONS + FOLLOWER_PROJECTIONS

PROJECTIONS: Mapping[str, Projection] = MappingProxyType({p.name: p for p in ALL_PROJECTIONS})
"""Every projection by name (`replay --projection NAME`)."""


class UnknownProjection(ValueError):
    """A projection name that is not in the registry; the message lists the known ones."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown projection {name!r}; known: {', '.join(sorted(known))}")
        self.name = name


def projections_named(
    names: Iterable[str] | None, registry: Mapping[str, Projection] = PROJECTIONS
) -> tuple[Projection, ...]:
    """The projections with these names, in registry order; all of them for None or empty."""
    wanted = list(names or ())
    for name in wanted:
        if name not in registry:
            raise UnknownProjection(name, registry)
    if not wanted:
        return tuple(registry.values())
    return tuple(p for name, p in registry.items() if name in wanted)
