"""The in-process quota guardian and rate limiter: the pure models behind one lock each.

The embedded default runs in one process, so a lock makes each decision as atomic as the
Redis scripts make it across processes; the answers are the domain model's by construction.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from cerniq_outreach.domain import quota_ledger, rate_limit
from cerniq_outreach.domain.quota_ledger import DEFAULT_POLICY, QuotaLedger, QuotaPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import date, datetime

    from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings, QuotaAnswer, Reservation
    from cerniq_outreach.domain.rate_limit import Bucket, RateLimit


def _default_policy(_tenant_id: str) -> QuotaPolicy:
    return DEFAULT_POLICY


class MemoryQuotaGuardian:
    """A thread-safe QuotaGuardian holding one `QuotaLedger` per tenant.

    Args:
        policy_for: each tenant's business hours and warm-up ramp.
    """

    def __init__(self, policy_for: Callable[[str], QuotaPolicy] = _default_policy) -> None:
        self._policy_for = policy_for
        self._lock = threading.Lock()
        self._ledgers: dict[str, QuotaLedger] = {}

    def _ledger(self, tenant_id: str) -> QuotaLedger:
        return self._ledgers.get(tenant_id) or QuotaLedger(tenant_id=tenant_id)

    def reserve(
        self, tenant_id: str, *, phone_id: str | None, lead_id: str, cost: int, at: datetime
    ) -> QuotaAnswer:
        """Decide and count in one step (see QuotaGuardian)."""
        policy = self._policy_for(tenant_id)
        with self._lock:
            ledger, answer = quota_ledger.reserve(
                self._ledger(tenant_id),
                phone_id=phone_id,
                lead_id=lead_id,
                cost=cost,
                at=at,
                hours=policy.hours,
                ramp=policy.ramp,
            )
            self._ledgers[tenant_id] = ledger
        return answer

    def release(self, reservation: Reservation) -> bool:
        """Give a held reservation back (see QuotaGuardian)."""
        with self._lock:
            ledger, released = quota_ledger.release(
                self._ledger(reservation.tenant_id), reservation
            )
            self._ledgers[reservation.tenant_id] = ledger
        return released

    def usage(self, tenant_id: str, phone_id: str, day: date) -> int:
        """New conversations counted on the phone that day."""
        with self._lock:
            return self._ledger(tenant_id).usage(phone_id, day)

    def set_phone(self, tenant_id: str, phone: PhoneQuotaSettings) -> None:
        """Add or change one phone."""
        with self._lock:
            self._ledgers[tenant_id] = self._ledger(tenant_id).with_phone(phone)

    def load_phones(
        self,
        tenant_id: str,
        phones: Sequence[PhoneQuotaSettings],
        usage: Mapping[tuple[str, date], int] | None = None,
    ) -> None:
        """Replace the tenant's phones and restore counters to at least `usage`."""
        with self._lock:
            ledger = self._ledger(tenant_id).with_phones(list(phones))
            for (phone_id, day), used in (usage or {}).items():
                ledger = ledger.with_usage(phone_id, day, used)
            self._ledgers[tenant_id] = ledger

    def close(self) -> None:
        """Nothing to release."""


class MemoryRateLimiter:
    """A thread-safe RateLimiter: `domain.rate_limit.take` on a dict of buckets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, Bucket] = {}

    def acquire(self, key: str, limit: RateLimit, *, at: datetime, cost: int = 1) -> float:
        """Take tokens from bucket `key`, or say how long until they are there."""
        with self._lock:
            bucket, wait = rate_limit.take(self._buckets.get(key), limit, at, cost)
            self._buckets[key] = bucket
        return wait
