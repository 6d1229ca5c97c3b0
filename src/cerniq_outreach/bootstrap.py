"""The composition root: the one place that picks concrete adapters and wires them together.

Entrypoints (the CLI, the HTTP app, workers, the scheduler) call `bootstrap(settings)` and take
what they need from the returned `Container`; nothing else imports adapters to build objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerniq_outreach.adapters.clock import SystemClock

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import Clock
    from cerniq_outreach.settings import Settings


@dataclass(frozen=True, slots=True)
class Container:
    """The wired object graph of one process."""

    settings: Settings
    clock: Clock


def bootstrap(settings: Settings, *, clock: Clock | None = None) -> Container:
    """Build the object graph for `settings`.

    Args:
        settings: the validated configuration.
        clock: a clock to use instead of the wall clock (the demo's simulated time, tests).
    """
    return Container(settings=settings, clock=clock if clock is not None else SystemClock())
