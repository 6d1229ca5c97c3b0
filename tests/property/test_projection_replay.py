"""Read models are a function of the log: live projection equals replay, whatever happened.

Random sessions of several leads in two tenants run through `decide` and a real (memory)
event store; inline projections apply with each append, a projector follows the log at
random moments. Then the live tables must equal a rebuild from the log, the journey rows
must agree with the domain's own fold, and re-delivering events to the projector must
change nothing.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.application.projections import ALL_PROJECTIONS, FOLLOWER_PROJECTIONS, iso
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.application.records import START, Checkpoint
from cerniq_outreach.application.replay import rebuild, verify

from projection_support import World, play_step, rows, sessions, snapshot, sqlite_read_models

LEADS = (("t1", "lead-a"), ("t1", "lead-b"), ("t2", "lead-a"), ("t2", "lead-c"))


def run_session(world: World, session, project_at: set[int]):
    """Play a session; run the projector after the steps in `project_at`."""
    leads = [world.lead(lead_id, tenant) for tenant, lead_id in LEADS]
    for i, step in enumerate(session):
        play_step(leads[step[0]], step)
        if i in project_at:
            world.projector.run_once(batch=1 + i % 5)
    world.project()
    return leads


@given(session=sessions, project_at=st.sets(st.integers(0, 70)))
def test_live_read_models_equal_a_rebuild_from_the_log(session, project_at):
    """Inline + follower projection, interleaved with appends, equals a replay of the log."""
    world = World()
    run_session(world, session, project_at)
    assert verify(world.store, world.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []
    live = snapshot(world.db)
    rebuild(world.store, world.db, ALL_PROJECTIONS, batch=5)
    assert snapshot(world.db) == live


@given(session=sessions)
def test_journey_rows_agree_with_the_domain_fold(session):
    """Stage, flags, counts and message statuses are what `evolve` says, lead by lead."""
    world = World()
    for lead in run_session(world, session, set()):
        s = lead.state
        [row] = rows(world.db, "gold_lead_journey", lead.tenant, lead_id=lead.lead_id)
        assert row["stage"] == s.stage.value
        assert row["paused_from"] == (s.paused_from and s.paused_from.value)
        assert row["stream_version"] == s.version
        assert bool(row["sequence_active"]) == s.sequence_active
        assert row["sequence_id"] == s.sequence_id
        assert row["assigned_phone_id"] == s.phone_id
        assert row["human_controlled_by"] == s.controlled_by
        assert row["open_reviews"] == len(s.open_reviews)
        assert bool(row["needs_review"]) == s.under_review
        assert bool(row["has_reply"]) == s.replied
        assert row["last_reply_at"] == (s.last_reply_at and iso(s.last_reply_at))
        assert row["last_contact_at"] == (s.last_contact_at and iso(s.last_contact_at))
        assert row["sentiment_score"] == s.sentiment_score
        assert bool(row["whatsapp_invalid"]) == s.whatsapp_invalid
        assert bool(row["email_invalid"]) == s.email_invalid
        assert row["snoozed_until"] == (s.snoozed_until and iso(s.snoozed_until))
        log = rows(
            world.db,
            "gold_communication_log",
            lead.tenant,
            lead_id=lead.lead_id,
            direction="OUTBOUND",
        )
        assert {m["message_id"]: m["status"] for m in log} == {
            m.message_id: m.status.value for m in s.messages.values()
        }


class Stuttering:
    """A store that hands followers events again: each read starts a few positions early.

    It reads that many more, too, so every batch still holds something new (a store whose
    reads held only old events would break the read_all contract, not test exactly-once).
    """

    def __init__(self, store, back: int) -> None:
        self.store = store
        self.back = back

    def read_all(self, *, after=START, limit=1000):
        earlier = Checkpoint(after.tx_id, max(0, after.position - self.back))
        return self.store.read_all(after=earlier, limit=limit + self.back)

    def wait_for_events(self, timeout):
        return self.store.wait_for_events(timeout)


@given(session=sessions, back=st.integers(1, 6), batch=st.integers(1, 9))
def test_events_delivered_twice_to_the_projector_are_applied_once(session, back, batch):
    """A follower fed the same events again (at-least-once reads) ends where a clean one does."""
    world = World()
    run_session(world, session, set())
    clean = snapshot(world.db, FOLLOWER_PROJECTIONS)
    twice = sqlite_read_models()
    Projector(Stuttering(world.store, back), twice, FOLLOWER_PROJECTIONS).catch_up(batch)
    # A second projector on the same checkpoints finds nothing left to do.
    assert Projector(world.store, twice, FOLLOWER_PROJECTIONS).run_once() == 0
    assert snapshot(twice, FOLLOWER_PROJECTIONS) == clean


class AppendsWhileReading:
    """A store through which a rebuild reads while the business goes on.

    Before each read, the next steps of the session append (with their inline projections)
    to the real store.

    Not while the rebuild holds a write transaction open (a one-tenant rebuild of counting
    projections does, on purpose): SQLite would make such an append wait for the commit.
    """

    def __init__(self, world: World, leads, steps, per_read: int) -> None:
        self.world = world
        self.leads = leads
        self.steps = list(steps)
        self.per_read = per_read

    def read_all(self, *, after=START, limit=1000):
        if not self.world.conn.in_transaction:
            for step in self.steps[: self.per_read]:
                play_step(self.leads[step[0]], step)
            del self.steps[: self.per_read]
        return self.world.store.read_all(after=after, limit=limit)

    def wait_for_events(self, timeout):
        return self.world.store.wait_for_events(timeout)


@given(
    before=sessions,
    during=sessions,
    per_read=st.integers(1, 4),
    batch=st.integers(1, 8),
    tenant=st.sampled_from([None, "t1"]),
)
def test_a_rebuild_beside_live_appends_ends_equal_to_the_log(
    before, during, per_read, batch, tenant
):
    """Replay at any time: appends between a rebuild's reads are never lost nor doubled."""
    world = World()
    leads = run_session(world, before, set())
    busy = AppendsWhileReading(world, leads, during, per_read)
    rebuild(busy, world.db, ALL_PROJECTIONS, tenant=tenant, batch=batch)
    for step in busy.steps:  # what the rebuild finished too early to interleave
        play_step(leads[step[0]], step)
    world.project()
    assert verify(world.store, world.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []
