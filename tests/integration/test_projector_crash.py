"""Exactly-once projection on SQLite and PostgreSQL, through crashes.

A projector that dies between its writes and its commit, then restarts, leaves the read
models as if nothing had happened.

The projector here carries a counting projection (`projection_applications`: one row per
event with how many times it was applied), so a double application or a skipped event is
visible, not just an unlucky equality of aggregates.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from cerniq_outreach.application.projections import FOLLOWER_PROJECTIONS, JOURNEY
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.application.replay import verify
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.enums import Channel, SentimentLabel

from projection_support import Lead, rows, snapshot, sqlite_read_models
from read_model_backends import (
    COUNT_TABLE,
    CountingProjection,
    open_backend,
    wait_until_visible,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class SimulatedCrash(Exception):
    """The process dies here."""


class CrashOnApply:
    """A projection that kills the process at its n-th event, mid-batch.

    Other rows of the same batch, and of the other projections, are written by then.
    """

    name = "crash_on_apply"
    tables: tuple[str, ...] = ()

    def __init__(self, n: int) -> None:
        self.left = n

    def apply(self, tx, record) -> None:
        self.left -= 1
        if self.left == 0:
            raise SimulatedCrash(record.global_position)


class DiesBeforeCommit:
    """A read-model database whose n-th transaction dies just before COMMIT.

    Its body ran to the end: every write and the checkpoint were made.
    """

    def __init__(self, db, n: int) -> None:
        self.db = db
        self.left = n

    @contextmanager
    def transaction(self, tenant_id=None):
        self.left -= 1
        with self.db.transaction(tenant_id) as tx:
            yield tx
            if self.left == 0:
                raise SimulatedCrash


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with open_backend(request.param, request, tmp_path) as b:
        yield b


def populate(store) -> list[Lead]:
    """Six journeys in two tenants: sends, deliveries, replies, reviews (some 60 events)."""
    leads = []
    for i in range(6):
        lead = Lead(store, tenant=f"t{i % 2}", lead_id=f"lead-{i}")
        lead.queue("m1", Channel.WHATSAPP if i % 3 else Channel.EMAIL_COLD, phone=f"p{i % 2}")
        lead.wait(minutes=10)
        lead.send("m1")
        lead.do(c.RecordDelivered, message_id="m1")
        lead.wait(hours=i)
        if i % 2:
            lead.do(
                c.ReceiveReply,
                channel=Channel.WHATSAPP if i % 3 else Channel.EMAIL_COLD,
                external_id=f"in-{i}",
                text="Nu, mulțumesc",
                content_hash="h",
            )
            lead.do(
                c.ScoreSentiment,
                score=-60,
                label=SentimentLabel.NEGATIVE,
                confidence=0.9,
                triggers=set(),
            )
        leads.append(lead)
    return leads


def drain(projector: Projector, store, total: int) -> None:
    """Run the projector until it has applied every one of the `total` events."""
    wait_until_visible(store, total)
    while projector.run_once(batch=BATCH):
        pass


def applications(db) -> dict[int, int]:
    return {r["global_position"]: r["times"] for r in rows(db, COUNT_TABLE)}


def clean_rebuild(backend):
    """The follower read models as a projector that never crashed builds them."""
    scratch = sqlite_read_models()
    with scratch.transaction() as tx:
        tx.execute(
            f"CREATE TABLE {COUNT_TABLE} (global_position integer PRIMARY KEY,"
            " tenant_id text NOT NULL, times integer NOT NULL)"
        )
    Projector(backend.follower, scratch, (*FOLLOWER_PROJECTIONS, CountingProjection())).catch_up()
    return scratch


BATCH = 7
# Where the process dies: a projection raising at its n-th event (mid-batch, after rows of
# that batch were written), or the n-th read-model transaction running to its end and dying
# just before COMMIT (the first one reads the checkpoints, each later one is a batch).
CRASHES = ["apply:3", "apply:17", "apply:40", "commit:2", "commit:3", "commit:4", "commit:5"]


@pytest.mark.parametrize("crash", CRASHES)
def test_a_projector_killed_before_commit_applies_every_event_exactly_once(backend, crash):
    """Killed between writes and commit, then restarted: nothing applied twice, nothing skipped."""
    leads = populate(backend.app)
    total = sum(len(lead.events) for lead in leads)
    wait_until_visible(backend.follower, total)
    projections = (*FOLLOWER_PROJECTIONS, CountingProjection())
    point, n = crash.split(":")
    if point == "apply":
        doomed = Projector(backend.follower, backend.db, (*projections, CrashOnApply(int(n))))
    else:
        doomed = Projector(backend.follower, DiesBeforeCommit(backend.db, int(n)), projections)
    with pytest.raises(SimulatedCrash):
        doomed.catch_up(batch=BATCH)
    # It died before the end; what it committed before, it applied once.
    before_restart = applications(backend.db)
    assert len(before_restart) < total
    assert set(before_restart.values()) <= {1}

    restarted = Projector(backend.follower, backend.db, projections)
    drain(restarted, backend.follower, total)

    counts = applications(backend.db)
    assert sorted(counts) == sorted(
        r.global_position for r in backend.follower.read_all(limit=total + 10)
    )
    assert set(counts.values()) == {1}, "an event was applied twice"
    expected = clean_rebuild(backend)
    assert snapshot(backend.db, projections) == snapshot(expected, projections)


def test_verify_finds_a_corrupted_journey_row(backend):
    """Replay --verify's comparison reports a row changed behind the projections' back."""
    leads = populate(backend.app)
    total = sum(len(lead.events) for lead in leads)
    drain(Projector(backend.follower, backend.db, FOLLOWER_PROJECTIONS), backend.follower, total)
    every = (JOURNEY, *FOLLOWER_PROJECTIONS)
    assert verify(backend.follower, backend.db, every, scratch=sqlite_read_models()) == []

    backend.execute(
        "UPDATE gold_lead_journey SET stage = 'CONVERTED' WHERE tenant_id = ? AND lead_id = ?",
        ("t1", "lead-3"),
    )
    differences = verify(backend.follower, backend.db, every, scratch=sqlite_read_models())
    assert [(d.table, dict(d.key), d.column, d.live, d.rebuilt) for d in differences] == [
        (
            "gold_lead_journey",
            {"tenant_id": "t1", "lead_id": "lead-3"},
            "stage",
            "CONVERTED",
            "WARM_REPLY",
        )
    ]


def test_two_projectors_at_once_apply_each_event_once(backend):
    """Two followers of the same projections share the work, each event applied once."""
    leads = populate(backend.app)
    total = sum(len(lead.events) for lead in leads)
    wait_until_visible(backend.follower, total)
    projections = (*FOLLOWER_PROJECTIONS, CountingProjection())
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            start.wait()
            Projector(backend.follower, backend.db, projections).catch_up(batch=3)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=follow) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = applications(backend.db)
    assert len(counts) == total
    assert set(counts.values()) == {1}, "an event was applied twice"
    assert snapshot(backend.db, projections) == snapshot(clean_rebuild(backend), projections)
