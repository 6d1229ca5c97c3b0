"""An independent reading of a journey's event log, written from domain.md, not from the code.

`check_log` walks a stream event by event, keeping only the few facts the invariants need,
and fails on the first event that breaks a rule. It shares no logic with `evolve`/`decide`
beyond the transition table (which *is* the rule), so a bug in the domain's fold cannot hide
itself here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cerniq_outreach.domain.enums import TERMINAL_STATES, Channel, JourneyState, OptOutScope
from cerniq_outreach.domain.events import (
    Event,
    HumanReleasedControl,
    HumanTookControl,
    LeadEnrolled,
    MessageQueued,
    MessageSent,
    OptedOut,
    ReviewRequested,
    ReviewResolved,
    SentimentScored,
    SequenceStarted,
    SequenceStopped,
    StateChanged,
)
from cerniq_outreach.domain.transitions import targets_from

_FAMILY = {
    Channel.WHATSAPP: OptOutScope.WHATSAPP,
    Channel.EMAIL_COLD: OptOutScope.EMAIL,
    Channel.EMAIL_WARM: OptOutScope.EMAIL,
}


@dataclass
class Oracle:
    """The facts the invariants are stated in."""

    stage: JourneyState = JourneyState.COLD
    opted_out: set[OptOutScope] = field(default_factory=set)
    controlled: bool = False
    open_reviews: set[str] = field(default_factory=set)
    sequence_active: bool = False
    queued: dict[str, MessageQueued] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    steps: set[tuple[str, int]] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)

    def silenced(self, channel: Channel) -> bool:
        family = _FAMILY.get(channel)
        return OptOutScope.ALL in self.opted_out or (
            family is not None and family in self.opted_out
        )

    def automation_blocked(self) -> bool:
        return (
            self.stage in {JourneyState.PAUSED, *TERMINAL_STATES}
            or self.controlled
            or bool(self.open_reviews)
        )


def check_log(events: list[Event]) -> Oracle:  # noqa: C901, PLR0912, PLR0915 - one arm per rule
    """Fail with an AssertionError on the first event that breaks an invariant."""
    o = Oracle()
    for i, e in enumerate(events):
        where = f"event {i + 1} ({type(e).__name__})"
        assert e.event_id not in o.event_ids, f"{where}: event id repeated"
        o.event_ids.add(e.event_id)
        if i == 0:
            assert isinstance(e, LeadEnrolled), "a stream starts with LeadEnrolled"
        match e:
            case LeadEnrolled():
                assert i == 0, f"{where}: enrolled twice"
                o.sequence_active = True
            case MessageQueued():
                assert e.message_id not in o.queued, f"{where}: message queued twice"
                assert not o.silenced(e.channel), f"{where}: queued after opt-out"
                assert o.stage is not JourneyState.DEAD, f"{where}: queued on a DEAD journey"
                if e.step is not None:
                    assert e.sequence_id is not None
                    assert not o.automation_blocked(), f"{where}: automated while blocked"
                    assert o.sequence_active, f"{where}: step queued with no sequence running"
                    assert (e.sequence_id, e.step) not in o.steps, f"{where}: step queued twice"
                    o.steps.add((e.sequence_id, e.step))
                o.queued[e.message_id] = e
            case MessageSent():
                assert e.message_id in o.queued, f"{where}: sent but never queued"
                assert e.message_id not in o.sent, f"{where}: two MessageSent for one message"
                assert not o.silenced(e.channel), f"{where}: sent after opt-out"
                assert o.stage is not JourneyState.DEAD, f"{where}: sent on a DEAD journey"
                if o.queued[e.message_id].step is not None:
                    assert not o.automation_blocked(), f"{where}: automated send while blocked"
                o.sent.add(e.message_id)
            case StateChanged():
                assert e.from_state is o.stage, f"{where}: from {e.from_state}, but was {o.stage}"
                assert o.stage not in TERMINAL_STATES, f"{where}: left terminal {o.stage}"
                assert e.to_state in targets_from(e.from_state), f"{where}: not in the table"
                o.stage = e.to_state
            case OptedOut():
                o.opted_out.add(e.channel)
            case HumanTookControl():
                o.controlled = True
            case HumanReleasedControl():
                o.controlled = False
            case ReviewRequested():
                o.open_reviews.add(e.review_id)
            case ReviewResolved():
                assert e.review_id in o.open_reviews, f"{where}: resolved a review not open"
                o.open_reviews.discard(e.review_id)
            case SequenceStarted():
                o.sequence_active = True
            case SequenceStopped():
                o.sequence_active = False
            case SentimentScored():
                assert -100 <= e.score <= 100, f"{where}: score out of range"
                assert 0 <= e.confidence <= 1, f"{where}: confidence out of range"
            case _:
                pass
    return o
