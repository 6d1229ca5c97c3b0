"""The composition root: the one place that picks concrete adapters and wires them together.

Entrypoints (the CLI, the HTTP app, workers, the scheduler) call `bootstrap(settings)` and take
what they need from the returned `Container`; nothing else imports adapters to build objects.
The event log is opened separately with `open_event_store(settings, role=...)`, because a
process may need it as more than one database role (see `EventLog`).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple, Self

from cerniq_outreach.adapters.clock import SystemClock
from cerniq_outreach.adapters.eventstore.postgres import PostgresEventStore
from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore, SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate_sqlite_connection
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.adapters.vault import PostgresVault, SqliteVault
from cerniq_outreach.application.projections import INLINE_PROJECTIONS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from cerniq_outreach.application.ports import (
        Clock,
        EventStore,
        PersonalDataVault,
        ReadModelDatabase,
    )
    from cerniq_outreach.settings import Settings

APP_ROLE: Final = "cerniq_app"
FOLLOWER_ROLE: Final = "cerniq_follower"


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


class EventLog(NamedTuple):
    """The event store with the read models and the vault it writes through.

    A tuple, so `store, read_models, vault = open_event_store(settings)` works, and a
    context manager that closes all three.
    """

    store: EventStore
    read_models: ReadModelDatabase
    vault: PersonalDataVault

    def close(self) -> None:
        """Release every connection the three hold."""
        self.store.close()
        for resource in (self.read_models, self.vault):
            close = getattr(resource, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_event_store(settings: Settings, *, role: str = APP_ROLE) -> EventLog:
    """Open the event log that `CERNIQ_DATABASE_URL` names, with its read models and vault.

    `sqlite:///path`: the store, the read models and the keys share the one file.
    `postgresql://`: each works as the database role `role` — `cerniq_app` (commands, the
    API: one tenant per transaction under row-level security) or `cerniq_follower`
    (projectors, replay, export and audit: every tenant). SQLite has no roles and ignores it.
    The journey read model is an inline projection: updated in the append's transaction.
    """
    path = settings.sqlite_path
    if path is not None:
        vault: SqliteVault | PostgresVault = SqliteVault(path)
        store = SqliteEventStore(path, vault, inline_projections=INLINE_PROJECTIONS)
        # The read models share the store's connections: one set per thread, not two.
        return EventLog(store, store.read_models, vault)
    url = settings.database_url
    vault = PostgresVault(url, role=role)
    return EventLog(
        PostgresEventStore(url, vault, role=role, inline_projections=INLINE_PROJECTIONS),
        PostgresReadModels(url, role=role),
        vault,
    )


@contextmanager
def scratch_read_models() -> Iterator[SqliteReadModels]:
    """An empty, migrated in-memory read-model database (`replay --verify` rebuilds into it).

    SQLite whatever the live backend: the read models are written in SQL both accept, and
    the comparison brings values to one form, so a scratch copy needs no server and leaves
    nothing behind when the block ends.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        migrate_sqlite_connection(conn)
        yield SqliteReadModels(conn)
    finally:
        conn.close()
