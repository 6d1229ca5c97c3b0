"""The transition table of the lead journey, as data.

`decide` consults this table for every change of state and the property tests generate
their moves from it, so the table below *is* the rule: a change not listed here is a domain
error and appends nothing.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from cerniq_outreach.domain.enums import TERMINAL_STATES, JourneyState
from cerniq_outreach.domain.errors import IllegalTransition

S = JourneyState


class Cause(StrEnum):
    """Why a journey changes state; stored as the `reason` of `StateChanged`."""

    WHATSAPP_SENT = "first WhatsApp message sent"
    EMAIL_SENT = "first cold email sent"
    MOVED_TO_EMAIL = "the sequence moved to email"
    MOVED_TO_WHATSAPP = "the sequence moved to WhatsApp"
    WHATSAPP_INVALID = "WhatsApp failed for good"
    REPLY = "a reply arrived"
    HUMAN_INTEREST = "a human marked real interest"
    HUMAN_DEAL = "a human recorded the deal"
    OPT_OUT = "opt-out"
    COMPLAINT = "complaint"
    HARD_BOUNCE = "hard bounce with no other channel left"
    SEQUENCE_EXHAUSTED = "sequence exhausted without reply"
    HUMAN_DECISION = "human decision"
    HUMAN_PAUSE = "a human paused"
    HUMAN_RESUME = "a human resumed"


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """From any of `sources` a journey may move to `target` for any of `causes`."""

    sources: frozenset[JourneyState]
    target: JourneyState
    causes: frozenset[Cause]


_LIVE = frozenset(set(S) - TERMINAL_STATES)  # any but CONVERTED, DEAD
_PAUSABLE = _LIVE - {S.PAUSED}  # any but CONVERTED, DEAD, PAUSED

TRANSITIONS: tuple[Rule, ...] = (
    Rule(
        sources=frozenset({S.COLD}), target=S.CONTACTED_WA, causes=frozenset({Cause.WHATSAPP_SENT})
    ),
    Rule(
        sources=frozenset({S.COLD}), target=S.CONTACTED_EMAIL, causes=frozenset({Cause.EMAIL_SENT})
    ),
    Rule(
        sources=frozenset({S.CONTACTED_WA}),
        target=S.CONTACTED_EMAIL,
        causes=frozenset({Cause.MOVED_TO_EMAIL, Cause.WHATSAPP_INVALID}),
    ),
    Rule(
        sources=frozenset({S.CONTACTED_EMAIL}),
        target=S.CONTACTED_WA,
        causes=frozenset({Cause.MOVED_TO_WHATSAPP}),
    ),
    Rule(
        sources=frozenset({S.COLD, S.CONTACTED_WA, S.CONTACTED_EMAIL}),
        target=S.WARM_REPLY,
        causes=frozenset({Cause.REPLY}),
    ),
    Rule(
        sources=frozenset({S.WARM_REPLY}),
        target=S.NEGOTIATION,
        causes=frozenset({Cause.HUMAN_INTEREST}),
    ),
    Rule(
        sources=frozenset({S.WARM_REPLY, S.NEGOTIATION}),
        target=S.CONVERTED,
        causes=frozenset({Cause.HUMAN_DEAL}),
    ),
    Rule(
        sources=_LIVE,
        target=S.DEAD,
        causes=frozenset(
            {
                Cause.OPT_OUT,
                Cause.COMPLAINT,
                Cause.HARD_BOUNCE,
                Cause.SEQUENCE_EXHAUSTED,
                Cause.HUMAN_DECISION,
            }
        ),
    ),
    Rule(sources=_PAUSABLE, target=S.PAUSED, causes=frozenset({Cause.HUMAN_PAUSE})),
    # PAUSED -> "the state it was paused from": the table allows every pausable state as a
    # target; `decide` adds that it must be the one recorded when the pause began.
    *(
        Rule(sources=frozenset({S.PAUSED}), target=target, causes=frozenset({Cause.HUMAN_RESUME}))
        for target in sorted(_PAUSABLE)
    ),
)

ALLOWED: frozenset[tuple[JourneyState, JourneyState, Cause]] = frozenset(
    (source, rule.target, cause)
    for rule in TRANSITIONS
    for source in rule.sources
    for cause in rule.causes
)


def is_allowed(source: JourneyState, target: JourneyState, cause: Cause) -> bool:
    """Whether the table lets a journey in `source` move to `target` because of `cause`."""
    return (source, target, cause) in ALLOWED


def check(source: JourneyState, target: JourneyState, cause: Cause) -> None:
    """Raise `IllegalTransition` unless the table allows the move."""
    if not is_allowed(source, target, cause):
        raise IllegalTransition(f"{source} -> {target} is not allowed ({cause})")


def targets_from(source: JourneyState) -> frozenset[JourneyState]:
    """Every state the table lets `source` move to, for any cause."""
    return frozenset(target for (src, target, _) in ALLOWED if src is source)
