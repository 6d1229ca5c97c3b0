"""`replay` on SQLite and PostgreSQL.

Rebuilds equal the live models, one tenant can be rebuilt alone, and an event of unknown
type stops the replay at its position.
"""

from __future__ import annotations

import pytest

from cerniq_outreach.application.projections import (
    ALL_PROJECTIONS,
    DAILY_STATS,
    FOLLOWER_PROJECTIONS,
    JOURNEY,
)
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.application.replay import ReplayError, rebuild, verify
from cerniq_outreach.domain import commands as c

from projection_support import Lead, rows, snapshot, sqlite_read_models
from read_model_backends import open_backend, wait_until_visible

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with open_backend(request.param, request, tmp_path) as b:
        yield b


def populate(store) -> int:
    """Four leads in two tenants; returns how many events were appended."""
    total = 0
    for i in range(4):
        lead = Lead(store, tenant=f"t{i % 2}", lead_id=f"lead-{i}")
        lead.queue("m1", phone="p1")
        lead.send("m1")
        lead.do(c.RecordRead, message_id="m1")
        if i % 2:
            lead.do(c.Pause, by="ana")
        total += len(lead.events)
    return total


def project(backend, total: int) -> None:
    wait_until_visible(backend.follower, total)
    Projector(backend.follower, backend.db, FOLLOWER_PROJECTIONS).catch_up()


def test_rebuilding_every_read_model_gives_back_the_same_tables(backend):
    """Dropped and rebuilt from the log, every table is as it was, and verify agrees."""
    project(backend, populate(backend.app))
    before = snapshot(backend.db)
    seen: list[tuple[int, int | None]] = []
    read = rebuild(
        backend.follower, backend.db, ALL_PROJECTIONS, batch=5, progress=lambda *p: seen.append(p)
    )
    assert snapshot(backend.db) == before
    assert read == seen[-1][0] == len(backend.follower.read_all())
    assert verify(backend.follower, backend.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []


def test_a_rebuilt_model_is_followed_on_from_its_checkpoint(backend):
    """After a rebuild the projector applies only what came later: nothing twice."""
    project(backend, populate(backend.app))
    rebuild(backend.follower, backend.db, [DAILY_STATS])
    before = len(backend.follower.read_all())
    more = Lead(backend.app, tenant="t0", lead_id="late")
    project(backend, before + len(more.events))
    [stats] = rows(backend.db, "outreach_daily_stats", "t0", channel="ALL")
    assert stats["enrolled"] == 3


def test_one_tenant_is_rebuilt_without_touching_the_other(backend):
    """Replay --tenant repairs that tenant's rows; the other tenant's rows stay as they are."""
    project(backend, populate(backend.app))
    backend.execute("UPDATE gold_lead_journey SET stage = 'DEAD'")
    backend.execute("UPDATE outreach_daily_stats SET sent = 99")
    rebuild(backend.follower, backend.db, [JOURNEY, DAILY_STATS], tenant="t1")
    assert {r["stage"] for r in rows(backend.db, "gold_lead_journey", "t1")} == {"PAUSED"}
    assert {r["stage"] for r in rows(backend.db, "gold_lead_journey", "t0")} == {"DEAD"}
    assert {r["sent"] for r in rows(backend.db, "outreach_daily_stats", "t1")} <= {0, 2}
    assert {r["sent"] for r in rows(backend.db, "outreach_daily_stats", "t0")} == {99}
    scratch = sqlite_read_models()
    assert verify(backend.follower, backend.db, ALL_PROJECTIONS, scratch=scratch, tenant="t1") == []


def test_an_unknown_event_type_stops_replay_with_its_position_and_type(backend):
    """Replay never skips what it cannot read: it names the event's position and type."""
    total = populate(backend.app)
    position = backend.insert_unknown_event("t0", "lead-0", 99)
    wait_until_visible(backend.follower, total + 1)
    with pytest.raises(ReplayError, match="LeadTeleported") as info:
        rebuild(backend.follower, backend.db, ALL_PROJECTIONS, batch=4)
    assert (info.value.position, info.value.event_type) == (position, "LeadTeleported")
    assert f"global position {position}" in str(info.value)
    with pytest.raises(ReplayError):
        verify(backend.follower, backend.db, [JOURNEY], scratch=sqlite_read_models())


def test_verify_compares_a_follower_as_far_as_it_got_and_still_sees_its_losses(backend):
    """A projector behind the log is not a difference; a row it lost on the way is one."""
    project(backend, populate(backend.app))
    Lead(backend.app, tenant="t0", lead_id="after-the-projector").do(c.Pause, by="ana")
    scratch = sqlite_read_models()
    assert verify(backend.follower, backend.db, ALL_PROJECTIONS, scratch=scratch) == []
    with backend.db.transaction() as tx:
        tx.execute("DELETE FROM activity_feed WHERE tenant_id = 't1'")
    lost = verify(backend.follower, backend.db, ALL_PROJECTIONS, scratch=sqlite_read_models())
    assert lost
    assert {d.table for d in lost} == {"activity_feed"}
