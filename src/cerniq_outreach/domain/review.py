"""Human review rules: which replies a human must read, how urgently, and by when.

The SLA deadline of a review is counted in wall hours or, when the tenant says so, in
business hours (an URGENT item opened Friday 17:30 is due Monday 09:30).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import msgspec

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import Priority, ReplyTrigger, ReviewReason, SentimentLabel
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand

DEFAULT_SLA_HOURS: Mapping[Priority, int] = MappingProxyType(
    {Priority.URGENT: 1, Priority.HIGH: 4, Priority.MEDIUM: 24, Priority.LOW: 72}
)
"""Hours a human has to resolve a review item, by priority."""

PRIORITY_RANK: Mapping[Priority, int] = MappingProxyType(
    {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2, Priority.URGENT: 3}
)
"""Priorities in order of urgency (higher is more urgent); sort review queues by it."""

UNCERTAIN_CONFIDENCE = 0.6
"""Below this confidence the analyser's reading is not trusted and a human looks."""

STRONGLY_NEGATIVE_SCORE = -50
"""At or below this sentiment score a negative reply is reviewed with HIGH priority."""

SCORE_RANGE = range(-100, 101)


class SlaPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """SLA hours per priority, counted in `business_hours` or, when None, in wall hours.

    Raises:
        ConfigurationError: a priority has no SLA, or an SLA is not a positive number of hours.
    """

    hours: Mapping[Priority, int] = msgspec.field(default_factory=lambda: dict(DEFAULT_SLA_HOURS))
    business_hours: BusinessHours | None = None

    def __post_init__(self) -> None:
        missing = sorted(set(Priority) - set(self.hours))
        if missing:
            raise ConfigurationError(f"SLA hours missing for priorities {missing}")
        bad = {p: h for p, h in self.hours.items() if isinstance(h, bool) or h <= 0}
        if bad:
            raise ConfigurationError(f"SLA hours must be positive, got {bad}")

    def deadline(self, priority: Priority, opened_at: datetime) -> datetime:
        """When a review of `priority` opened at `opened_at` becomes breached (UTC)."""
        if opened_at.tzinfo is None or opened_at.utcoffset() is None:
            raise ValueError(f"a tz-aware datetime is required, got {opened_at!r}")
        allowed = timedelta(hours=self.hours[priority])
        if self.business_hours is None:
            # Convert first: adding to a datetime in a ZoneInfo zone is wall-clock
            # arithmetic, which makes a 24 h SLA 23 or 25 real hours across a DST switch.
            return opened_at.astimezone(UTC) + allowed
        return self.business_hours.add_business_time(opened_at, allowed)


def is_breached(due_at: datetime, now: datetime, *, resolved: bool) -> bool:
    """An unresolved review is breached once `now` is past its deadline."""
    return not resolved and now > due_at


class ReviewTicket(msgspec.Struct, frozen=True, kw_only=True):
    """Why a reply needs a human, and how urgently."""

    reason: ReviewReason
    priority: Priority


# The rules in order of priority: the first that matches wins, so each reply opens at most
# one review, at the most urgent level any rule asks for.
_COMPLAINT = ReviewTicket(reason=ReviewReason.COMPLAINT, priority=Priority.URGENT)
_OPT_OUT = ReviewTicket(reason=ReviewReason.KEYWORD_TRIGGER, priority=Priority.HIGH)
_STRONGLY_NEGATIVE = ReviewTicket(reason=ReviewReason.NEGATIVE_SENTIMENT, priority=Priority.HIGH)
_WRONG_PERSON = ReviewTicket(reason=ReviewReason.KEYWORD_TRIGGER, priority=Priority.MEDIUM)
_NEGATIVE = ReviewTicket(reason=ReviewReason.NEGATIVE_SENTIMENT, priority=Priority.MEDIUM)
_UNCERTAIN = ReviewTicket(reason=ReviewReason.AI_UNCERTAIN, priority=Priority.LOW)


def review_for_reply(
    score: int,
    label: SentimentLabel,
    confidence: float,
    triggers: frozenset[ReplyTrigger],
) -> ReviewTicket | None:
    """The review a scored reply opens, or None when automation may carry on.

    Rules, most urgent first (the first match wins): a complaint is URGENT; an opt-out
    keyword is HIGH; a score at or below -50 is HIGH; a wrong-person reply is MEDIUM; a
    negative label is MEDIUM; a confidence below 0.6 is LOW.

    Raises:
        InvalidCommand: `score` is outside -100..100 or `confidence` outside 0..1.
    """
    if isinstance(score, bool) or score not in SCORE_RANGE:
        raise InvalidCommand(f"sentiment score must be an integer in -100..100, got {score!r}")
    if not (math.isfinite(confidence) and 0 <= confidence <= 1):
        raise InvalidCommand(f"confidence must be in 0..1, got {confidence!r}")
    rules = (
        (ReplyTrigger.COMPLAINT in triggers, _COMPLAINT),
        (ReplyTrigger.OPT_OUT in triggers, _OPT_OUT),
        (score <= STRONGLY_NEGATIVE_SCORE, _STRONGLY_NEGATIVE),
        (ReplyTrigger.WRONG_PERSON in triggers, _WRONG_PERSON),
        (label is SentimentLabel.NEGATIVE, _NEGATIVE),
        (confidence < UNCERTAIN_CONFIDENCE, _UNCERTAIN),
    )
    return next((ticket for matched, ticket in rules if matched), None)
