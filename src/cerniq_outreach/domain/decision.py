"""The working state of one decision: events built one at a time, each folded as it is built.

Later checks in the same decision see earlier effects (an opt-out that leaves no channel
then kills the journey, for instance). Event ids derive from the command id, so a retried
command produces the same events.
"""

from __future__ import annotations

import uuid
from typing import Any

from cerniq_outreach.domain import transitions
from cerniq_outreach.domain.commands import Command
from cerniq_outreach.domain.enums import JourneyState
from cerniq_outreach.domain.events import (
    Event,
    SequenceStopped,
    StateChanged,
)
from cerniq_outreach.domain.journey import Journey, evolve
from cerniq_outreach.domain.transitions import Cause

S = JourneyState

# Fixed namespace: event ids are uuid5(namespace, "<command id>/<index>"), stable forever.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a52-93a4-4d0e-9a37-0c7e0f5b8d21")

CONTACTED = frozenset({S.COLD, S.CONTACTED_WA, S.CONTACTED_EMAIL})


def derive_id(command_id: str, index: int) -> str:
    """The id of the `index`-th thing a command creates; the same for every retry."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_id}/{index}"))


class Decision:
    """Collects the events of one decision, folding each into the working state."""

    def __init__(self, state: Journey, command: Command, tenant_id: str, lead_id: str) -> None:
        self.state = state
        self.command = command
        self.tenant_id = tenant_id
        self.lead_id = lead_id
        self.events: list[Event] = []

    def emit(self, cls: type[Event], **fields: Any) -> None:  # noqa: ANN401 - fields vary by event type; the Struct validates them
        """Build the next event of this decision and fold it into the working state."""
        event = cls(
            event_id=derive_id(self.command.command_id, len(self.events)),
            tenant_id=self.tenant_id,
            lead_id=self.lead_id,
            occurred_at=self.command.at,
            **fields,
        )
        self.events.append(event)
        self.state = evolve(self.state, event)

    def move(self, target: JourneyState, cause: Cause, reason: str | None = None) -> None:
        """Change state through the table; `reason` overrides the cause's wording."""
        source = self.state.stage
        transitions.check(source, target, cause)
        self.emit(StateChanged, from_state=source, to_state=target, reason=reason or cause.value)

    def stop_sequence(self, reason: str) -> None:
        """Stop the running sequence, if one runs."""
        if self.state.sequence_active:
            self.emit(SequenceStopped, reason=reason)

    def end(self, cause: Cause, reason: str | None = None) -> None:
        """Move to DEAD (unless terminal already) and stop any running sequence."""
        self.stop_sequence(reason or cause.value)
        if not self.state.terminal:
            self.move(S.DEAD, cause, reason)
