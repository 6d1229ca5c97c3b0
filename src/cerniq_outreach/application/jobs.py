"""The job queue port: background work handed off by request handlers.

Webhook intake acknowledges at once and leaves the journey work to a job. The port is
deliberately small (a name and a JSON-ready payload), so the in-process adapter of the
embedded mode and dramatiq (issue #6) both fit it: a payload must survive a broker, hence
bytes or a dict of JSON values, never live objects (actors take ids, not objects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

JobPayload = bytes | dict[str, Any]
JobHandler = Callable[[JobPayload], None]
"""Runs one job; it must be idempotent (a broker may deliver a job twice)."""


class JobQueue(Protocol):
    """Hands jobs to workers by name."""

    def enqueue(self, job_name: str, payload: JobPayload) -> None:
        """Queue one job; raises when the queue cannot take it (the caller answers 503)."""
        ...
