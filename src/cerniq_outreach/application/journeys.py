"""Running commands on journeys: read the stream, fold, decide, append at the version read.

Every use case that changes a journey (enrolment, the scheduler, send workers, the review
desk) goes through `JourneyCommands.run`, so they share one behaviour: a concurrent writer
makes the append conflict and the commands are decided again on the fresh state, a refused
command raises its `DomainError` and appends nothing, and a retried command (same command
id) derives the same event ids, which the store turns into a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from cerniq_outreach.application.records import ConcurrencyConflict, Metadata
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.events import Event
from cerniq_outreach.domain.journey import Journey, evolve, replay

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import EventStore
    from cerniq_outreach.domain.commands import AnyCommand

ATTEMPTS: Final = 8
"""How often commands are decided again when concurrent writers keep moving the stream."""

Decide = Callable[[Journey], Sequence["AnyCommand"]]
"""Given the fresh state, the commands to run (none: nothing to do)."""


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a run did: the state after it and the events it appended (empty: nothing new)."""

    state: Journey
    events: tuple[Event, ...]
    appended: int


class JourneyCommands:
    """Decides and appends commands on one journey at a time, retrying on conflicts."""

    def __init__(self, store: EventStore, *, attempts: int = ATTEMPTS) -> None:
        self._store = store
        self._attempts = attempts

    def load(self, tenant_id: str, lead_id: str) -> Journey:
        """The journey's current state (an empty, unenrolled one for an unknown lead)."""
        records = self._store.read_stream(tenant_id, lead_id)
        return replay(r.event for r in records if isinstance(r.event, Event))

    def run(
        self,
        tenant_id: str,
        lead_id: str,
        commands: Sequence[AnyCommand] | Decide,
        *,
        metadata: Metadata | None = None,
        state: Journey | None = None,
    ) -> Outcome:
        """Decide `commands` on the journey's state and append what they produce.

        `commands` may be a function of the state, called again on every retry (the
        scheduler's next step depends on it). `state`, when the caller has just read it,
        saves the first read; a stale one only costs a conflict and a fresh read. Raises
        the first command's `DomainError`, or `ConcurrencyConflict` when the stream still
        moved after every attempt.
        """
        conflict: ConcurrencyConflict | None = None
        known = state
        for _ in range(self._attempts):
            state = known if known is not None else self.load(tenant_id, lead_id)
            known = None
            todo = commands(state) if callable(commands) else commands
            events: list[Event] = []
            after = state
            for command in todo:
                decided = decide(after, command)
                for event in decided:
                    after = evolve(after, event)
                events.extend(decided)
            if not events:
                return Outcome(state=state, events=(), appended=0)
            try:
                result = self._store.append(
                    tenant_id, lead_id, events, expected_version=state.version, metadata=metadata
                )
            except ConcurrencyConflict as exc:
                conflict = exc
                continue
            return Outcome(state=after, events=tuple(events), appended=result.appended)
        assert conflict is not None  # noqa: S101 - the loop ran at least once
        raise conflict
