"""Follows the global log and applies projections to their read models, exactly once.

EXACTLY ONCE. Each projection has a checkpoint row in `projector_checkpoints` (its place in
the log, records.Checkpoint). A batch of events is applied, and the checkpoints advanced
past it, in ONE read-model transaction: a crash before the commit leaves neither the writes
nor the new checkpoint, so the batch is read again and applied once; after the commit both
are there, so nothing of the batch is read again. No event is applied twice, none skipped.

TWO PROJECTORS AT ONCE (a second process, or `replay` beside a running projector). The
checkpoint update is a compare-and-set (`... WHERE tx_id = :old_tx_id AND position =
:old_position`) and it is the batch's first statement, so it also takes the row's lock: on
PostgreSQL a second projector on the same projection waits at that UPDATE until the first
commits, then matches nothing and rolls back its batch; on SQLite writers are serialised
anyway. The loser re-reads the checkpoints and goes on from there.

The event store is read outside the read-model transaction: the transaction holds only the
writes, and the store may be a different database (or, in SQLite, a different connection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cerniq_outreach.application.records import START, Checkpoint

if TYPE_CHECKING:
    import threading

    from cerniq_outreach.application.ports import (
        EventStore,
        Projection,
        ReadModelDatabase,
        SqlTx,
    )
    from cerniq_outreach.application.records import RecordedEvent

Progress = Callable[[int, int | None], None]
"""`progress(done, total)`: events handled so far, and the total when known (else None)."""

_ENSURE = """
INSERT INTO projector_checkpoints (name, tx_id, position, updated_at)
VALUES (:name, 0, 0, CURRENT_TIMESTAMP)
ON CONFLICT (name) DO NOTHING
"""
_READ = "SELECT name, tx_id, position FROM projector_checkpoints"
_ADVANCE = """
UPDATE projector_checkpoints
SET tx_id = :tx_id, position = :position, updated_at = CURRENT_TIMESTAMP
WHERE name = :name AND tx_id = :old_tx_id AND position = :old_position
"""
_RESET = """
INSERT INTO projector_checkpoints (name, tx_id, position, updated_at)
VALUES (:name, :tx_id, :position, CURRENT_TIMESTAMP)
ON CONFLICT (name) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position,
    updated_at = excluded.updated_at
"""
# A no-op write: it takes the row's lock (PostgreSQL), so no projector commits a batch of
# this projection until the caller's transaction ends. The caller then reads a checkpoint
# that stays true for as long as it works.
_LOCK = "UPDATE projector_checkpoints SET position = position WHERE name = :name"


def read_checkpoints(tx: SqlTx, names: Sequence[str]) -> dict[str, Checkpoint]:
    """The checkpoints of `names`, creating missing rows at the start of the log."""
    for name in names:
        tx.execute(_ENSURE, {"name": name})
    rows = tx.fetchall(_READ)
    stored = {row["name"]: Checkpoint(int(row["tx_id"]), int(row["position"])) for row in rows}
    return {name: stored.get(name, START) for name in names}


def advance_checkpoint(tx: SqlTx, name: str, old: Checkpoint, new: Checkpoint) -> bool:
    """Move `name` from `old` to `new`; False when it is no longer at `old` (someone moved it)."""
    params = {
        "name": name,
        "tx_id": new.tx_id,
        "position": new.position,
        "old_tx_id": old.tx_id,
        "old_position": old.position,
    }
    return tx.execute(_ADVANCE, params) == 1


def reset_checkpoint(tx: SqlTx, name: str, to: Checkpoint = START) -> None:
    """Set `name`'s checkpoint (to the start of the log by default)."""
    tx.execute(_RESET, {"name": name, "tx_id": to.tx_id, "position": to.position})


def lock_checkpoints(tx: SqlTx, names: Sequence[str]) -> dict[str, Checkpoint]:
    """Hold `names`' checkpoints for the rest of `tx` and return them (see `_LOCK`)."""
    for name in names:
        tx.execute(_ENSURE, {"name": name})
        tx.execute(_LOCK, {"name": name})
    return read_checkpoints(tx, names)


class _CheckpointMoved(Exception):
    """Another projector committed this batch first; re-read and go on."""


class Projector:
    """Applies `projections` to the events of the global log, from their checkpoints.

    Args:
        store: the event store to follow (on PostgreSQL, one with the follower role).
        db: the read-model database; its transactions without a tenant work across tenants.
        projections: what to apply; each keeps its own checkpoint under its `name`.
    """

    def __init__(
        self, store: EventStore, db: ReadModelDatabase, projections: Sequence[Projection]
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"projection names repeat: {names}")
        if not projections:
            raise ValueError("a projector needs at least one projection")
        self._store = store
        self._db = db
        self._projections = tuple(projections)
        self._names = tuple(names)
        # The checkpoints as last committed by this projector; None: read them again.
        self._known: dict[str, Checkpoint] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the projections this projector applies."""
        return self._names

    def checkpoints(self) -> dict[str, Checkpoint]:
        """Each projection's checkpoint as stored now."""
        with self._db.transaction() as tx:
            return read_checkpoints(tx, self._names)

    def position(self) -> Checkpoint:
        """Where the slowest of the projections stands (the next read starts after it)."""
        return min(self._current().values())

    def run_once(self, batch: int = 500) -> int:
        """Read up to `batch` events after the checkpoints and apply them in one transaction.

        Returns how many new events the batch held (0: the projector is caught up).
        Raises what a projection or the store raises, with nothing of the batch committed.
        """
        while True:
            known = self._current()
            start = min(known.values())
            # Only what lies past the checkpoint counts: a store that hands an event out
            # again (at-least-once) must neither apply it twice nor keep us busy forever.
            records = [
                r for r in self._store.read_all(after=start, limit=batch) if r.checkpoint > start
            ]
            if not records:
                return 0
            try:
                self._apply(records, known)
            except _CheckpointMoved:
                self._known = None
                continue
            except BaseException:
                self._known = None  # rolled back: the database says where we are
                raise
            end = records[-1].checkpoint
            self._known = {name: max(cp, end) for name, cp in known.items()}
            return len(records)

    def catch_up(self, batch: int = 500, progress: Progress | None = None) -> int:
        """Run batches until none is left; return how many events were handled."""
        done = 0
        while n := self.run_once(batch):
            done += n
            if progress is not None:
                progress(done, None)
        return done

    def run_forever(
        self,
        stop: threading.Event,
        *,
        batch: int = 500,
        idle_timeout: float = 0.2,
        on_error: Callable[[Exception], None] | None = None,
        retry_after: float = 1.0,
    ) -> None:
        """Follow the log until `stop` is set.

        When caught up it waits on `store.wait_for_events(idle_timeout)`, a wake-up hint:
        every pass re-reads from the checkpoints, so a lost notification costs at most
        `idle_timeout` of latency. Without `on_error` an error ends the loop (raised); with
        it, the error is reported and the same batch is tried again after `retry_after`
        seconds (an event that cannot be applied stops the projection, it is never skipped).
        """
        while not stop.is_set():
            try:
                handled = self.run_once(batch)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
                stop.wait(retry_after)
                continue
            if handled == 0:
                self._store.wait_for_events(idle_timeout)

    def _current(self) -> dict[str, Checkpoint]:
        if self._known is None:
            self._known = self.checkpoints()
        return self._known

    def _apply(self, records: Sequence[RecordedEvent], known: dict[str, Checkpoint]) -> None:
        end = records[-1].checkpoint
        with self._db.transaction() as tx:
            # Checkpoints first: the compare-and-set also locks them (module doc).
            for name, checkpoint in known.items():
                if checkpoint < end and not advance_checkpoint(tx, name, checkpoint, end):
                    raise _CheckpointMoved(name)
            for record in records:
                at = record.checkpoint
                for projection in self._projections:
                    # A projection further along than this event has it already.
                    if at > known[projection.name]:
                        projection.apply(tx, record)
