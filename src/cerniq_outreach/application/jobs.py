"""The job queue port: background work handed from the engine to workers.

A job is a name and a JSON-ready payload (bytes or a dict of JSON values, never live
objects: actors take ids, not objects), so the in-process adapter of the embedded mode and
dramatiq on a broker (production) run the same handlers. Every handler must be idempotent:
a broker may deliver a job twice, and a worker killed mid-job gets its job again.

How a handler ends tells the queue what to do:

- it returns: done;
- it raises `RetryLater(at)`: not a failure; run it again at `at` (a send outside business
  hours, a provider rate limit), without spending one of its retries;
- it raises `NonRetryable`: a failure retrying cannot fix (a defect, a refused request);
  logged and counted, never retried;
- it raises anything else: a failure that may pass (a conflict, a network error); retried
  with exponential backoff up to `RetryPolicy.max_retries`, then dropped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar

import msgspec

JobPayload = bytes | dict[str, Any]
JobHandler = Callable[[JobPayload], None]
"""Runs one job; it must be idempotent (a broker may deliver a job twice)."""

# --- job names: the actors of `cerniq-outreach worker` ------------------------------------------

SEND_WHATSAPP: Final = "send.whatsapp"
SEND_COLD_EMAIL: Final = "send.cold_email"
SEND_WARM_EMAIL: Final = "send.warm_email"
PROCESS_WEBHOOK: Final = "webhooks.process"
ANALYSE_REPLY: Final = "replies.analyse"
CHECK_SLAS: Final = "reviews.check_slas"
PHONE_HEALTH: Final = "phones.health"
DAILY_STATS: Final = "stats.daily_rollup"
COMPANY_STOP: Final = "journeys.company_stop"

JOB_NAMES: Final = (
    SEND_WHATSAPP,
    SEND_COLD_EMAIL,
    SEND_WARM_EMAIL,
    PROCESS_WEBHOOK,
    ANALYSE_REPLY,
    CHECK_SLAS,
    PHONE_HEALTH,
    DAILY_STATS,
    COMPANY_STOP,
)
"""Every job the engine enqueues; a worker registers a handler for each."""

FAILED_COUNTER: Final = "cerniq_jobs_failed_total"
"""Jobs given up on (non-retryable, or out of retries), labelled `job`."""


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Retries of a failing job: exponential backoff from `min_backoff`, capped."""

    max_retries: int = 8
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0

    def backoff(self, retries: int) -> float:
        """Seconds to wait before retry number `retries` (1 for the first retry)."""
        growth = float(2 ** max(0, retries - 1))
        return min(self.max_backoff_seconds, self.min_backoff_seconds * growth)


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


class NonRetryable(Exception):
    """A job failure that running it again cannot fix: record it, never retry."""


class RetryLater(Exception):
    """Run this job again at `at` (the clock's time); it is not a failure.

    Attributes:
        at: when to run it again (timezone-aware, from the Clock port).
        reason: why it waits, for the logs.
    """

    def __init__(self, at: datetime, reason: str) -> None:
        super().__init__(f"retry at {at.isoformat()}: {reason}")
        self.at = at
        self.reason = reason


T = TypeVar("T")


def read_payload(payload: JobPayload, kind: type[T]) -> T:
    """A job's payload as `kind` (bytes are JSON; a dict comes as the queue kept it)."""
    raw: Any = msgspec.json.decode(payload) if isinstance(payload, bytes) else payload
    return msgspec.convert(raw, kind)


class JobQueue(Protocol):
    """Hands jobs to workers by name."""

    def enqueue(
        self, job_name: str, payload: JobPayload, *, not_before: datetime | None = None
    ) -> None:
        """Queue one job, to run at once or not before `not_before` (the clock's time).

        Raises when the queue cannot take it (the caller answers 503 or retries); returning
        means the job is durably queued (a broker confirmed it).
        """
        ...
