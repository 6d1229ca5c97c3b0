"""The transition table of domain.md, checked as data and through `decide`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given

from cerniq_outreach.domain.commands import Transition
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import TERMINAL_STATES, JourneyState
from cerniq_outreach.domain.errors import IllegalTransition
from cerniq_outreach.domain.events import Company, StateChanged
from cerniq_outreach.domain.journey import Journey
from cerniq_outreach.domain.transitions import ALLOWED, Cause, is_allowed, targets_from

from strategies import states, users

S = JourneyState
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def journey_in(stage: JourneyState) -> Journey:
    paused_from = S.CONTACTED_WA if stage is S.PAUSED else None
    return Journey(
        tenant_id="t",
        lead_id="l",
        enrolled=True,
        stage=stage,
        paused_from=paused_from,
        company=Company(name="Agro", phone="+40722123456"),
    )


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATES))
def test_terminal_states_have_no_way_out(terminal):
    """CONVERTED and DEAD are terminal: the table lists no move out of them."""
    assert targets_from(terminal) == frozenset()


def test_every_live_state_can_reach_an_end():
    """From every non-terminal state some chain of moves reaches CONVERTED or DEAD."""
    for start in set(S) - TERMINAL_STATES:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in targets_from(frontier.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL_STATES, start


def test_table_matches_domain_md():
    """The table holds exactly the moves domain.md lists (a changed rule changes this test)."""
    moves = {(src, dst) for src, dst, _ in ALLOWED}
    live = set(S) - TERMINAL_STATES
    expected = {
        (S.COLD, S.CONTACTED_WA),
        (S.COLD, S.CONTACTED_EMAIL),
        (S.CONTACTED_WA, S.CONTACTED_EMAIL),
        (S.CONTACTED_EMAIL, S.CONTACTED_WA),
        (S.COLD, S.WARM_REPLY),
        (S.CONTACTED_WA, S.WARM_REPLY),
        (S.CONTACTED_EMAIL, S.WARM_REPLY),
        (S.WARM_REPLY, S.NEGOTIATION),
        (S.WARM_REPLY, S.CONVERTED),
        (S.NEGOTIATION, S.CONVERTED),
        *((src, S.DEAD) for src in live),
        *((src, S.PAUSED) for src in live - {S.PAUSED}),
        *((S.PAUSED, dst) for dst in live - {S.PAUSED}),
    }
    assert moves == expected


@given(source=states, target=states, user=users)
def test_human_transition_is_allowed_exactly_when_the_table_says(source, target, user):
    """A human move succeeds iff the table allows it for a human cause, else emits nothing."""
    cause = {S.NEGOTIATION: Cause.HUMAN_INTEREST, S.CONVERTED: Cause.HUMAN_DEAL}.get(
        target, Cause.HUMAN_DECISION
    )
    command = Transition(command_id="c1", at=AT, to=target, reason="", by=user)
    if is_allowed(source, target, cause):
        events = decide(journey_in(source), command)
        changes = [e for e in events if isinstance(e, StateChanged)]
        assert [(e.from_state, e.to_state) for e in changes] == [(source, target)]
    else:
        with pytest.raises(IllegalTransition):
            decide(journey_in(source), command)
