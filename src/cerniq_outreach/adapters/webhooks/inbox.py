"""WebhookInbox adapters: in memory, and on the `webhook_inbox` table of SQLite or PostgreSQL.

The first delivery of an identity wins in one atomic statement: `INSERT ... ON CONFLICT DO
NOTHING RETURNING`, which returns a row only to the inserter, so two concurrent deliveries of
one event (providers do retry while the first attempt is still in flight) cannot both win.
`SqlWebhookInbox` runs that SQL on either database through `ReadModelDatabase` (the embedded
SQLite file); `PostgresWebhookInbox` is the production one, a single autocommit statement. On
PostgreSQL no tenant is bound, which is right: the table is not tenant data
(migrations/*/0005_webhook_inbox.sql).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from cerniq_outreach.application.projections.base import iso

if TYPE_CHECKING:
    from datetime import datetime

    from cerniq_outreach.application.ports import ReadModelDatabase

_RECORD = """
INSERT INTO webhook_inbox (provider, identity, tenant_id, received_at)
VALUES (:provider, :identity, :tenant, :at)
ON CONFLICT (provider, identity) DO NOTHING
RETURNING identity
"""
_FORGET = "DELETE FROM webhook_inbox WHERE provider = :provider AND identity = :identity"
_PURGE = "DELETE FROM webhook_inbox WHERE received_at < :before"


class MemoryWebhookInbox:
    """WebhookInbox in a dict (tests, and a process that keeps nothing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: dict[tuple[str, str], tuple[str | None, datetime]] = {}

    def record_once(
        self, tenant_id: str | None, provider: str, identity: str, received_at: datetime
    ) -> bool:
        """True the first time `(provider, identity)` is recorded."""
        with self._lock:
            if (provider, identity) in self.seen:
                return False
            self.seen[provider, identity] = (tenant_id, received_at)
            return True

    def forget(self, provider: str, identity: str) -> None:
        """Drop the identity (its job was never enqueued)."""
        with self._lock:
            self.seen.pop((provider, identity), None)


class SqlWebhookInbox:
    """WebhookInbox on the `webhook_inbox` table of SQLite or PostgreSQL.

    On SQLite, give it read models of its own opened with `durable=False` (synchronous =
    NORMAL): each delivery is one commit, and with FULL every one waits for a disk flush
    while holding SQLite's single write lock, which queues the intake behind the disk. What
    NORMAL can lose on power loss is the last few identities; a provider's redelivery of
    those then passes the inbox, and the processor still appends nothing twice (its event
    ids come from the provider's identity).
    """

    def __init__(self, db: ReadModelDatabase) -> None:
        self._db = db

    def record_once(
        self, tenant_id: str | None, provider: str, identity: str, received_at: datetime
    ) -> bool:
        """True the first time `(provider, identity)` is recorded."""
        params = {
            "provider": provider,
            "identity": identity,
            "tenant": tenant_id,
            "at": iso(received_at),
        }
        with self._db.transaction() as tx:
            return bool(tx.fetchall(_RECORD, params))

    def forget(self, provider: str, identity: str) -> None:
        """Drop the identity (its job was never enqueued)."""
        with self._db.transaction() as tx:
            tx.execute(_FORGET, {"provider": provider, "identity": identity})

    def purge(self, before: datetime) -> int:
        """Delete identities received before `before` (older than any provider retry)."""
        with self._db.transaction() as tx:
            return tx.execute(_PURGE, {"before": iso(before)})


class PostgresWebhookInbox:
    """WebhookInbox on PostgreSQL's `webhook_inbox`, one round trip per delivery.

    Its own pool of autocommit connections: the insert is a single statement, atomic by
    itself, so wrapping it in BEGIN/COMMIT (as `ReadModelDatabase` transactions do) would
    triple the round trips on the intake's hot path for nothing. Works as `cerniq_app` with
    no tenant bound (the table is not tenant data and has no row-level security).

    Args:
        url: a libpq URL whose login is `role` or may `SET ROLE` to it.
        role: the role connections work as.
        pool_size: the most connections the pool opens (one per concurrent request).
    """

    def __init__(self, url: str, role: str | None = "cerniq_app", *, pool_size: int = 8) -> None:
        self.role = role
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            name=f"cerniq-webhook-inbox-{role}",
            open=True,
        )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # The same trade as SqlWebhookInbox's non-durable SQLite connections: a commit that
        # waits for the WAL flush puts the disk's worst moments into the acknowledgement's
        # p99, and what an unflushed commit can lose on a crash (the last few identities)
        # only lets a redelivery past the inbox; the processor still appends nothing twice.
        conn.execute("SET synchronous_commit = off")
        if self.role is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))

    def record_once(
        self, tenant_id: str | None, provider: str, identity: str, received_at: datetime
    ) -> bool:
        """True the first time `(provider, identity)` is recorded."""
        with self._pool.connection() as conn:
            row = conn.execute(
                _PG_RECORD, (provider, identity, tenant_id, received_at), prepare=True
            ).fetchone()
        return row is not None

    def forget(self, provider: str, identity: str) -> None:
        """Drop the identity (its job was never enqueued)."""
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM webhook_inbox WHERE provider = %s AND identity = %s",
                (provider, identity),
            )

    def purge(self, before: datetime) -> int:
        """Delete identities received before `before` (older than any provider retry)."""
        with self._pool.connection() as conn:
            return conn.execute(
                "DELETE FROM webhook_inbox WHERE received_at < %s", (before,)
            ).rowcount

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()


_PG_RECORD = (
    "INSERT INTO webhook_inbox (provider, identity, tenant_id, received_at)"
    " VALUES (%s, %s, %s, %s) ON CONFLICT (provider, identity) DO NOTHING RETURNING identity"
)
