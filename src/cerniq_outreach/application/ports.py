"""The ports: what the application needs from the outside world, as Protocols.

Adapters implement them (in memory for the embedded mode and tests, real services in
production); only `bootstrap.py` chooses which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from cerniq_outreach.application.records import START, Checkpoint

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager
    from datetime import date, datetime

    from cerniq_outreach.application.records import AppendResult, Metadata, RecordedEvent
    from cerniq_outreach.domain.events import BaseEvent
    from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings, QuotaAnswer, Reservation
    from cerniq_outreach.domain.rate_limit import RateLimit


class Clock(Protocol):
    """The source of the current time.

    The domain never reads a clock: handlers ask this port and pass the time in, so the demo
    can run business days in minutes and tests can set the time exactly.
    """

    def now(self) -> datetime:
        """The current instant as a timezone-aware datetime in UTC."""
        ...


class EventStore(Protocol):
    """The append-only log of every journey and phone: the source of truth.

    Streams live inside one tenant: a lead's journey (`stream_id` is the lead id) or a
    phone of the pool (`phone:<phone_id>`); `domain.events.stream_of` names an event's. Every
    adapter (memory, SQLite, PostgreSQL) passes the same contract suite
    (`tests/contract/test_event_store_contract.py`), failures included.
    """

    def append(
        self,
        tenant_id: str,
        stream_id: str,
        events: Sequence[BaseEvent],
        *,
        expected_version: int,
        metadata: Metadata | None = None,
    ) -> AppendResult:
        """Append `events` to the stream if it is still at `expected_version`.

        Raises `ConcurrencyConflict` when the stream moved. Re-appending events whose ids
        are all stored already is a no-op (`appended == 0`), whatever the version: webhook
        and job retries rely on it. Inline projections registered with the store are
        applied in the same transaction, so a reader of the journey read model sees its
        own writes.
        """
        ...

    def read_stream(self, tenant_id: str, stream_id: str) -> list[RecordedEvent]:
        """Every event of one stream, by stream version (empty for an unknown stream)."""
        ...

    def stream_version(self, tenant_id: str, stream_id: str) -> int:
        """The stream's current version (0 for an unknown stream)."""
        ...

    def read_all(self, *, after: Checkpoint = START, limit: int = 1000) -> list[RecordedEvent]:
        """The next committed events of the global log after `after`, for followers.

        Gap-safe: an event whose transaction took a lower position but committed later is
        returned after the ones already seen, never skipped.
        """
        ...

    def export(
        self,
        *,
        tenant_id: str | None = None,
        stream_id: str | None = None,
        from_position: int = 0,
        until: datetime | None = None,
        batch_size: int = 5000,
    ) -> Iterator[RecordedEvent]:
        """Every committed event in global position order, optionally filtered (audits)."""
        ...

    def wait_for_events(self, timeout: float) -> bool:
        """Block until something may have been appended, or `timeout` seconds pass.

        A hint only (LISTEN/NOTIFY on PostgreSQL): followers always re-read from their
        checkpoint, so a missed or spurious wake-up costs latency, never correctness.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class PersonalDataVault(Protocol):
    """Seals personal fields with a key per lead; erasure destroys the key.

    After `destroy_key`, sealed fields of that lead read as erased and cannot be recovered
    from any copy of the log.
    """

    def seal(self, tenant_id: str, lead_id: str, personal: dict[str, Any]) -> bytes:
        """Encrypt a lead's personal fields (creating the lead's key on first use)."""
        ...

    def open(self, tenant_id: str, lead_id: str, sealed: bytes) -> dict[str, Any] | None:
        """Decrypt them, or None when the lead's key was destroyed."""
        ...

    def destroy_key(self, tenant_id: str, lead_id: str) -> bool:
        """Destroy the lead's key (erasure). True if there was one."""
        ...


class SqlTx(Protocol):
    """One open database transaction, with named parameters written `:name`.

    Read models are plain SQL that SQLite and PostgreSQL both accept (`INSERT ... ON
    CONFLICT`, no casts), so each projection is written once.
    """

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query; return its rows as dicts."""
        ...


class ReadModelDatabase(Protocol):
    """Where projections keep their tables and checkpoints."""

    def transaction(self, tenant_id: str | None = None) -> AbstractContextManager[SqlTx]:
        """A transaction that commits on success and rolls back on error.

        With `tenant_id` it is bound to that tenant (row-level security on PostgreSQL).
        """
        ...


class Projection(Protocol):
    """Folds events into read-model tables. Must be deterministic: replay equals live."""

    name: str
    tables: tuple[str, ...]

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Apply one event inside the caller's transaction."""
        ...


class QuotaGuardian(Protocol):
    """Decides and reserves WhatsApp sends so that no phone ever exceeds its daily limit.

    Each answer is the one `domain.quota_ledger.reserve` gives on the guardian's state; the
    check and the count are one atomic step however many processes ask at once. The time
    is the caller's (`at`, from the Clock port), so a simulated clock drives every adapter.
    Adapters: in-process (embedded) and Redis Lua (production), one contract suite
    (`tests/contract/test_quota_guardian_contract.py`). A guardian that cannot be reached
    refuses with GUARDIAN_UNAVAILABLE: it fails closed.
    """

    def reserve(
        self, tenant_id: str, *, phone_id: str | None, lead_id: str, cost: int, at: datetime
    ) -> QuotaAnswer:
        """Allow or refuse a send costing `cost` on `phone_id` (None: any ACTIVE phone)."""
        ...

    def release(self, reservation: Reservation) -> bool:
        """Give back a reservation whose message never reached the provider (True if held)."""
        ...

    def usage(self, tenant_id: str, phone_id: str, day: date) -> int:
        """New conversations counted on the phone on that local day."""
        ...

    def set_phone(self, tenant_id: str, phone: PhoneQuotaSettings) -> None:
        """Add a phone or change its status or limits (kept in step with the phone pool)."""
        ...

    def load_phones(
        self,
        tenant_id: str,
        phones: Sequence[PhoneQuotaSettings],
        usage: Mapping[tuple[str, date], int] | None = None,
    ) -> None:
        """Replace the tenant's phones; raise counters to at least `usage` (a restore)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class RateLimiter(Protocol):
    """Token buckets that keep provider calls under the providers' request limits.

    Follows `domain.rate_limit.take`; shared by every process (Redis) or one (in-process).
    """

    def acquire(self, key: str, limit: RateLimit, *, at: datetime, cost: int = 1) -> float:
        """Take `cost` tokens from bucket `key`: 0.0 if taken, else the seconds to wait."""
        ...
