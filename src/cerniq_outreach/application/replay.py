"""Rebuild read models from the log (`cerniq-outreach replay`) and check them (`--verify`).

REBUILD, ALL TENANTS. One transaction resets the chosen projections' checkpoints to the
start of the log (first, which also waits for a running projector's batch to end) and
deletes their rows; then a `Projector` folds the whole log in batches, each committed with
its checkpoint. A running projector may share the work (the checkpoint compare-and-set
keeps it exactly once), and a rebuild that stops half-way leaves tables and checkpoints
consistent: the projector, or the next rebuild, goes on from there. Inline projections
(journey, review desk) are rebuilt the same way while appends go on: they are idempotent,
so an event applied by its append and again by the rebuild counts once.

REBUILD, ONE TENANT. The checkpoints are global, so they cannot be reset for one tenant.
Idempotent projections: delete the tenant's rows, then fold the log applying the tenant's
events (as above, beside live appends). Counting projections (daily stats, quota audit):
in ONE transaction, hold their checkpoints (no projector commits meanwhile), delete the
tenant's rows and apply the tenant's events up to each checkpoint: the projector then goes
on from its checkpoint over rows that are again exactly what it had folded.

VERIFY folds the log into a scratch read-model database (typically a fresh in-memory
SQLite, migrated: the same SQL runs there) and compares it row by row with the live tables.
Counting projections are compared as of their checkpoint (a projector that lags is not a
difference); inline ones as of the end of the log, so verify a quiet system or expect
differences for journeys being written while it runs.

An event of a type this code does not know stops everything with its position and type
(`ReplayError`): skipping it would build read models that silently disagree with the log.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cerniq_outreach.application.differences import Difference, compare_tables, normalise
from cerniq_outreach.application.projections import INLINE_PROJECTIONS
from cerniq_outreach.application.projections.base import is_idempotent, keys_of
from cerniq_outreach.application.projector import (
    Progress,
    Projector,
    lock_checkpoints,
    reset_checkpoint,
)
from cerniq_outreach.application.records import START, Checkpoint
from cerniq_outreach.domain.codec import UnknownEventType

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from cerniq_outreach.application.ports import (
        EventStore,
        Projection,
        ReadModelDatabase,
        SqlTx,
    )
    from cerniq_outreach.application.records import RecordedEvent

__all__ = ["CountsEvents", "Difference", "ReplayError", "rebuild", "verify"]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# The stores note where an event they cannot decode is stored ("stored at global position
# 12 (tenant/lead version 3)"); an attribute `global_position` on the error is read first.
_POSITION_NOTE = re.compile(r"global position (\d+)")


class ReplayError(Exception):
    """Replay met an event it cannot apply (an unknown type) and stopped there.

    `position` is the event's global position when the store reports it, else None; the
    replay had then applied everything up to `after`.
    """

    def __init__(self, position: int | None, event_type: str, after: Checkpoint) -> None:
        where = (
            f"global position {position}"
            if position is not None
            else f"the first event after global position {after.position}"
        )
        super().__init__(
            f"replay stopped at {where}: unknown event type {event_type!r}"
            " (upgrade the code, or add an upcaster; no event is ever skipped)"
        )
        self.position = position
        self.event_type = event_type
        self.after = after


@runtime_checkable
class CountsEvents(Protocol):
    """An event store that can count its events: replay's progress bar then has a total."""

    def count_events(self, *, tenant_id: str | None = None) -> int:
        """How many events the log holds (of one tenant, or of all)."""
        ...


def rebuild(
    store: EventStore,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    tenant: str | None = None,
    progress: Progress | None = None,
    batch: int = 1000,
) -> int:
    """Delete the chosen read models (of one tenant, or all) and fold them from the log again.

    Returns the number of events read. Raises `ReplayError` on an event of unknown type
    (see the module doc for what is left behind and how concurrency is handled).
    """
    _check_tables(projections)
    total = store.count_events() if isinstance(store, CountsEvents) else None
    report = progress or _ignore
    if tenant is None:
        return _rebuild_all(store, db, projections, report=report, total=total, batch=batch)
    done = 0
    counting = [p for p in projections if not is_idempotent(p)]
    if counting:
        done += _rebuild_counting(
            store, db, counting, tenant=tenant, report=report, total=total, batch=batch
        )
    idempotent = [p for p in projections if is_idempotent(p)]
    if idempotent:
        with db.transaction() as tx:
            _delete(tx, idempotent, tenant)
        for records in _batches(store, START, batch):
            with db.transaction() as tx:
                _apply(tx, records, idempotent, tenant, limits={})
            done += len(records)
            report(done, total)
    return done


def verify(
    store: EventStore,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    scratch: ReadModelDatabase,
    tenant: str | None = None,
    progress: Progress | None = None,
    batch: int = 1000,
) -> list[Difference]:
    """Fold the log into `scratch` and compare with the live tables; [] when identical.

    `scratch` is an empty read-model database with the same tables (its rows of these
    tables are deleted first). With `tenant`, only that tenant's rows are compared.

    A projection that follows the log (it has a checkpoint) is compared as far as its live
    projector got: a follower a few events behind the log is not a difference. Inline
    projections are applied with every append, so they are compared to the end.
    """
    _check_tables(projections)
    inline = {p.name for p in INLINE_PROJECTIONS}
    counting = [p.name for p in projections if not is_idempotent(p) or p.name not in inline]
    with db.transaction() as tx:
        # Held checkpoints: the live rows read below are exactly what they say was folded.
        limits = lock_checkpoints(tx, counting)
        live = {t: _rows(tx, t, tenant) for p in projections for t in p.tables}
    with scratch.transaction() as stx:
        _delete(stx, projections, None)
    total = store.count_events() if isinstance(store, CountsEvents) else None
    done = 0
    for records in _batches(store, START, batch):
        with scratch.transaction() as stx:
            _apply(stx, records, projections, tenant, limits)
        done += len(records)
        if progress is not None:
            progress(done, total)
    with scratch.transaction() as stx:
        rebuilt = {t: _rows(stx, t, tenant) for p in projections for t in p.tables}
    differences: list[Difference] = []
    for projection in projections:
        foreign = getattr(projection, "foreign_columns", {})
        for table in projection.tables:
            key = keys_of(projection, table)
            skip = foreign.get(table, ())
            differences += compare_tables(
                table, key, _without(live[table], skip), _without(rebuilt[table], skip)
            )
    return differences


def _without(rows: list[dict[str, object]], columns: Sequence[str]) -> list[dict[str, object]]:
    """The rows without the columns a projection does not own (see `foreign_columns`)."""
    if not columns:
        return rows
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


def _rebuild_all(
    store: EventStore,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    report: Progress,
    total: int | None,
    batch: int,
) -> int:
    with db.transaction() as tx:
        # Checkpoints before rows: resetting them waits for a projector's open batch, so
        # its rows are committed (and deleted here) or rolled back, never left behind.
        for projection in projections:
            reset_checkpoint(tx, projection.name)
        _delete(tx, projections, None)
    projector = Projector(store, db, projections)
    done = 0
    try:
        while handled := projector.run_once(batch):
            done += handled
            report(done, total)
    except UnknownEventType as exc:
        raise _stopped(exc, projector.position()) from exc
    return done


def _rebuild_counting(
    store: EventStore,
    db: ReadModelDatabase,
    projections: Sequence[Projection],
    *,
    tenant: str,
    report: Progress,
    total: int | None,
    batch: int,
) -> int:
    done = 0
    with db.transaction() as tx:
        limits = lock_checkpoints(tx, [p.name for p in projections])
        _delete(tx, projections, tenant)
        end = max(limits.values())
        for records in _batches(store, START, batch):
            _apply(tx, records, projections, tenant, limits)
            done += len(records)
            report(done, total)
            if records[-1].checkpoint >= end:
                break  # past every checkpoint: the rest is the projector's to apply
    return done


def _apply(
    tx: SqlTx,
    records: Sequence[RecordedEvent],
    projections: Sequence[Projection],
    tenant: str | None,
    limits: dict[str, Checkpoint],
) -> None:
    """Apply the tenant's records, each projection up to its limit (none: to the end)."""
    for record in records:
        if tenant is not None and record.tenant_id != tenant:
            continue
        at = record.checkpoint
        for projection in projections:
            limit = limits.get(projection.name)
            if limit is None or at <= limit:
                projection.apply(tx, record)


def _batches(store: EventStore, after: Checkpoint, batch: int) -> Iterator[list[RecordedEvent]]:
    """The log from `after` in batches, gap-safe (`read_all`), until nothing is left."""
    while True:
        try:
            records = store.read_all(after=after, limit=batch)
        except UnknownEventType as exc:
            raise _stopped(exc, after) from exc
        if not records:
            return
        yield records
        after = records[-1].checkpoint


def _stopped(exc: UnknownEventType, after: Checkpoint) -> ReplayError:
    return ReplayError(_position_of(exc), exc.event_type, after)


def _position_of(exc: Exception) -> int | None:
    """Where the store says the undecodable event is stored, if it says."""
    position = getattr(exc, "global_position", None)
    if isinstance(position, int):
        return position
    for note in getattr(exc, "__notes__", ()):
        found = _POSITION_NOTE.search(str(note))
        if found:
            return int(found.group(1))
    return None


def _delete(tx: SqlTx, projections: Sequence[Projection], tenant: str | None) -> None:
    for table in (t for p in projections for t in p.tables):
        if tenant is None:
            tx.execute(f"DELETE FROM {table}")  # noqa: S608 - checked by _check_tables
        else:
            tx.execute(f"DELETE FROM {table} WHERE tenant_id = :tenant", {"tenant": tenant})  # noqa: S608


def _rows(tx: SqlTx, table: str, tenant: str | None) -> list[dict[str, object]]:
    if tenant is None:
        rows = tx.fetchall(f"SELECT * FROM {table}")  # noqa: S608 - checked by _check_tables
    else:
        rows = tx.fetchall(f"SELECT * FROM {table} WHERE tenant_id = :tenant", {"tenant": tenant})  # noqa: S608
    return normalise(rows)


def _check_tables(projections: Sequence[Projection]) -> None:
    """Table names go into SQL text: accept only plain lower-case identifiers."""
    for projection in projections:
        for table in projection.tables:
            if not _IDENTIFIER.fullmatch(table):
                raise ValueError(f"projection {projection.name}: bad table name {table!r}")


def _ignore(done: int, total: int | None) -> None:
    """The progress callback when the caller wants none."""
