"""The PostgreSQL read-model database: pooled transactions bound to a tenant and a role.

Projections write plain SQL through `SqlTx`; this adapter supplies the transaction. Like the
event store, every connection works as one database role (`SET ROLE` when the pool opens
it): `cerniq_app` sees one tenant per transaction under row-level security, bound with
`SET LOCAL cerniq.tenant_id`; `cerniq_follower` (projectors, replay) sees every tenant.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from cerniq_outreach.adapters.sql import PsycopgTx

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg


class PostgresReadModels:
    """ReadModelDatabase on PostgreSQL.

    Args:
        url: a libpq URL whose login is `role` or may `SET ROLE` to it.
        role: the role connections work as; None keeps the login role (admin tools).
        pool_size: the most connections the pool opens.
        durable: commits wait for the WAL flush (False only for a demo's store).
    """

    def __init__(
        self,
        url: str,
        role: str | None = "cerniq_app",
        *,
        pool_size: int = 4,
        durable: bool = True,
    ) -> None:
        self.role = role
        self._durable = durable
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            configure=self._configure,
            name=f"cerniq-read-models-{role}",
            open=True,
        )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if self.role is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))
        # UTC, as the event store's sessions: timestamps read back the same on every server.
        conn.execute("SET TIME ZONE 'UTC'")
        if not self._durable:  # see PostgresEventStore: a demo's store only
            conn.execute("SET synchronous_commit = off")
        conn.commit()  # the pool takes connections back only when idle

    @contextmanager
    def transaction(self, tenant_id: str | None = None) -> Iterator[PsycopgTx]:
        """A transaction that commits on success and rolls back on error.

        With `tenant_id`, it is bound to that tenant for row-level security. set_config(...,
        true) is `SET LOCAL` with a bind parameter: it ends with the transaction, so a pooled
        connection never carries one tenant's binding into another's work.
        """
        with self._pool.connection() as conn, conn.transaction():
            if tenant_id is not None:
                conn.execute("SELECT set_config('cerniq.tenant_id', %s, true)", (tenant_id,))
            yield PsycopgTx(conn)

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
