"""Human review: which replies open a review, at which priority, and their SLA deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import Priority, ReplyTrigger, ReviewReason, SentimentLabel
from cerniq_outreach.domain.errors import ConfigurationError, InvalidCommand
from cerniq_outreach.domain.review import (
    PRIORITY_RANK,
    UNCERTAIN_CONFIDENCE,
    ReviewTicket,
    SlaPolicy,
    is_breached,
    review_for_reply,
)

BUCHAREST = ZoneInfo("Europe/Bucharest")
BUSINESS = SlaPolicy(business_hours=BusinessHours())
T = ReplyTrigger
NEG, NEU, POS = SentimentLabel.NEGATIVE, SentimentLabel.NEUTRAL, SentimentLabel.POSITIVE


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A Bucharest wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=BUCHAREST)


def test_priorities_are_ordered_low_to_urgent():
    """URGENT outranks HIGH outranks MEDIUM outranks LOW."""
    ranked = sorted(Priority, key=PRIORITY_RANK.__getitem__)
    assert ranked == [Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.URGENT]


@pytest.mark.parametrize(
    ("priority", "hours"),
    [(Priority.URGENT, 1), (Priority.HIGH, 4), (Priority.MEDIUM, 24), (Priority.LOW, 72)],
)
def test_default_sla_in_wall_hours(priority, hours):
    """By default a review is due 1/4/24/72 real hours after it opens, whatever the weekday."""
    opened = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)  # a Friday
    assert SlaPolicy().deadline(priority, opened) == opened + timedelta(hours=hours)


def test_wall_hours_are_real_hours_across_a_dst_switch():
    """24 wall hours from Saturday 12:00 before the spring switch end Sunday 13:00 local."""
    opened = local(2024, 3, 30, 12, 0)
    due = SlaPolicy().deadline(Priority.MEDIUM, opened)
    assert due - opened == timedelta(hours=24)
    assert due.astimezone(BUCHAREST).hour == 13
    assert due.tzinfo is UTC


def test_urgent_ticket_opened_friday_evening_is_due_monday_morning_in_business_hours():
    """Friday 17:30 + 1 business hour: 30 minutes on Friday, 30 on Monday, due 09:30."""
    due = BUSINESS.deadline(Priority.URGENT, local(2026, 3, 6, 17, 30))
    assert due == local(2026, 3, 9, 9, 30)


@pytest.mark.parametrize(
    ("priority", "opened", "due"),
    [
        (Priority.HIGH, local(2026, 3, 5, 16, 0), local(2026, 3, 6, 11, 0)),
        (Priority.HIGH, local(2026, 3, 7, 12, 0), local(2026, 3, 9, 13, 0)),  # a Saturday
        (Priority.MEDIUM, local(2026, 3, 2, 9, 0), local(2026, 3, 4, 15, 0)),
        (Priority.LOW, local(2026, 3, 2, 9, 0), local(2026, 3, 11, 18, 0)),
        (Priority.URGENT, local(2026, 3, 2, 17, 0), local(2026, 3, 2, 18, 0)),
        (Priority.URGENT, local(2024, 3, 29, 17, 30), local(2024, 4, 1, 9, 30)),  # DST weekend
    ],
)
def test_business_hour_sla_counts_only_open_time(priority, opened, due):
    """Nights, weekends and closed hours do not count toward a business-hours SLA."""
    assert BUSINESS.deadline(priority, opened) == due


def test_custom_sla_hours_are_used():
    """A tenant may set its own SLA hours per priority."""
    policy = SlaPolicy(
        hours={Priority.URGENT: 2, Priority.HIGH: 8, Priority.MEDIUM: 48, Priority.LOW: 96}
    )
    opened = datetime(2026, 3, 2, 8, tzinfo=UTC)
    assert policy.deadline(Priority.URGENT, opened) == opened + timedelta(hours=2)


@pytest.mark.parametrize(
    "hours",
    [
        {Priority.URGENT: 1, Priority.HIGH: 4, Priority.MEDIUM: 24},
        {Priority.URGENT: 0, Priority.HIGH: 4, Priority.MEDIUM: 24, Priority.LOW: 72},
        {Priority.URGENT: -1, Priority.HIGH: 4, Priority.MEDIUM: 24, Priority.LOW: 72},
    ],
)
def test_sla_policy_needs_a_positive_sla_for_every_priority(hours):
    """A missing priority or a non-positive SLA is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        SlaPolicy(hours=hours)


def test_an_open_review_is_breached_only_after_its_deadline():
    """Breached means unresolved and strictly past the deadline."""
    due = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert not is_breached(due, due - timedelta(seconds=1), resolved=False)
    assert not is_breached(due, due, resolved=False)
    assert is_breached(due, due + timedelta(microseconds=1), resolved=False)


def test_a_resolved_review_is_never_breached():
    """Resolving a review, even late, ends its breach."""
    due = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert not is_breached(due, due + timedelta(days=3), resolved=True)


R = ReviewReason
P = Priority


@pytest.mark.parametrize(
    ("score", "label", "confidence", "triggers", "expected"),
    [
        (10, NEU, 0.9, {T.COMPLAINT}, (R.COMPLAINT, P.URGENT)),
        (-90, NEG, 0.2, {T.COMPLAINT, T.OPT_OUT}, (R.COMPLAINT, P.URGENT)),
        (0, NEU, 0.9, {T.OPT_OUT}, (R.KEYWORD_TRIGGER, P.HIGH)),
        (-80, NEG, 0.9, {T.OPT_OUT}, (R.KEYWORD_TRIGGER, P.HIGH)),
        (20, NEU, 0.9, {T.WRONG_PERSON}, (R.KEYWORD_TRIGGER, P.MEDIUM)),
        (-50, NEG, 0.9, set(), (R.NEGATIVE_SENTIMENT, P.HIGH)),
        (-60, NEU, 0.9, {T.WRONG_PERSON}, (R.NEGATIVE_SENTIMENT, P.HIGH)),
        (-49, NEG, 0.9, set(), (R.NEGATIVE_SENTIMENT, P.MEDIUM)),
        (-10, NEG, 0.3, set(), (R.NEGATIVE_SENTIMENT, P.MEDIUM)),
        (30, POS, 0.59, set(), (R.AI_UNCERTAIN, P.LOW)),
        (30, POS, 0.59, {T.BUYING_SIGNAL}, (R.AI_UNCERTAIN, P.LOW)),
        (30, POS, UNCERTAIN_CONFIDENCE, {T.BUYING_SIGNAL}, None),
        (-49, NEU, 1.0, {T.OUT_OF_OFFICE}, None),
        (100, POS, 0.95, set(), None),
    ],
)
def test_review_for_reply_table(score, label, confidence, triggers, expected):
    """The most urgent matching rule decides reason and priority; no rule, no review."""
    ticket = review_for_reply(score, label, confidence, frozenset(triggers))
    if expected is None:
        assert ticket is None
    else:
        assert ticket == ReviewTicket(reason=expected[0], priority=expected[1])


@pytest.mark.parametrize(
    ("score", "confidence"),
    [(-101, 0.5), (101, 0.5), (500, 0.5), (0, -0.1), (0, 1.5), (0, float("nan")), (True, 0.5)],
)
def test_out_of_range_scores_and_confidences_are_invalid(score, confidence):
    """Score outside -100..100 or confidence outside 0..1 is an InvalidCommand."""
    with pytest.raises(InvalidCommand):
        review_for_reply(score, SentimentLabel.NEUTRAL, confidence, frozenset())


readings = st.tuples(
    st.integers(min_value=-100, max_value=100),
    st.sampled_from(SentimentLabel),
    st.floats(min_value=0, max_value=1),
    st.frozensets(st.sampled_from(ReplyTrigger)),
)


@given(readings)
def test_every_complaint_or_opt_out_opens_a_review(reading):
    """Invariant 7: a complaint is always URGENT, an opt-out always at least HIGH."""
    score, label, confidence, triggers = reading
    ticket = review_for_reply(score, label, confidence, triggers)
    if ReplyTrigger.COMPLAINT in triggers:
        assert ticket == ReviewTicket(reason=ReviewReason.COMPLAINT, priority=Priority.URGENT)
    elif ReplyTrigger.OPT_OUT in triggers:
        assert ticket is not None
        assert ticket.priority is Priority.HIGH


@given(readings)
def test_calm_confident_replies_need_no_human(reading):
    """No trigger of concern, score above -50, not negative and confident: no review."""
    score, label, confidence, triggers = reading
    concerning = {ReplyTrigger.COMPLAINT, ReplyTrigger.OPT_OUT, ReplyTrigger.WRONG_PERSON}
    calm = (
        not (triggers & concerning)
        and score > -50
        and label is not SentimentLabel.NEGATIVE
        and confidence >= UNCERTAIN_CONFIDENCE
    )
    assert (review_for_reply(score, label, confidence, triggers) is None) is calm
