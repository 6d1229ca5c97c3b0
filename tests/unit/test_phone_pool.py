"""The phone pool service: each change reaches the log, the read model and the guardian.

The guardian may be stricter than the log for a moment, never looser.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.records import ConcurrencyConflict
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import PhoneAlreadyInPool, UnknownPhone
from cerniq_outreach.domain.events import phone_stream

from projection_support import T0, World

TODAY = date(2026, 3, 2)  # T0's day in Bucharest


class Hooked:
    """Delegates to a store, running `on_append` / `on_version` once when armed."""

    def __init__(self, store) -> None:
        self.inner = store
        self.on_append = None
        self.on_version = None

    def append(self, *args, **kwargs):
        hook, self.on_append = self.on_append, None
        if hook is not None:
            hook()
        return self.inner.append(*args, **kwargs)

    def stream_version(self, *args):
        hook, self.on_version = self.on_version, None
        if hook is not None:
            hook()
        return self.inner.stream_version(*args)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class Unreachable(MemoryQuotaGuardian):
    """A guardian whose set_phone fails while `down`, and runs `before_set` once when armed."""

    down = False
    before_set = None
    before_load = None

    def set_phone(self, tenant_id, phone):
        hook, self.before_set = self.before_set, None
        if hook is not None:
            hook()
        if self.down:
            raise ConnectionError("guardian down")
        super().set_phone(tenant_id, phone)

    def load_phones(self, tenant_id, phones, usage=None):
        hook, self.before_load = self.before_load, None
        if hook is not None:
            hook()
        super().load_phones(tenant_id, phones, usage)


@pytest.fixture
def world():
    return World()


@pytest.fixture
def guardian():
    return Unreachable()


@pytest.fixture
def store(world):
    return Hooked(world.store)


@pytest.fixture
def pool(world, store, guardian):
    return PhonePool(store, world.db, guardian, SimulatedClock(T0, speed=0))


def allowed(guardian, phone_id: str, lead: str = "lead-x") -> bool:
    answer = guardian.reserve("t1", phone_id=phone_id, lead_id=lead, cost=0, at=T0)
    return answer.decision.allowed


def test_an_added_phone_is_listed_at_once_and_known_to_the_guardian(pool, guardian):
    """Inline read model and guardian: the new number shows and sends right away."""
    added = pool.add("t1", "0722 123 456", label="Vânzări", warmup_started=TODAY)
    [listed] = pool.list("t1")
    assert listed.phone_id == added.phone_id
    assert (listed.number, listed.label, listed.status) == ("+40722123456", "Vânzări", "ACTIVE")
    assert (listed.used_today, listed.limit_today, listed.warming_up) == (0, 20, True)
    assert allowed(guardian, added.phone_id)
    assert pool.list("t2") == []


def test_a_number_is_in_a_tenants_pool_once(pool):
    """The same number in another form is refused; another tenant may have it."""
    pool.add("t1", "+40722123456")
    with pytest.raises(PhoneAlreadyInPool):
        pool.add("t1", "0040 722 123 456")
    other = pool.add("t2", "0722123456")
    assert [p.phone_id for p in pool.list("t2")] == [other.phone_id]


def test_a_status_change_by_number_or_id_reaches_the_guardian(pool, guardian):
    """PAUSED stops sends at once; the change reports before and after."""
    added = pool.add("t1", "+40722123456")
    change = pool.set_status("t1", "0722-123-456", PhoneStatus.PAUSED, "ban warning")
    assert change.changed
    assert change.before is not None
    assert (change.before.status, change.after.status) == ("ACTIVE", "PAUSED")
    assert change.after.status_reason == "ban warning"
    assert not allowed(guardian, added.phone_id)
    again = pool.set_status("t1", added.phone_id, PhoneStatus.PAUSED, "again")
    assert not again.changed
    assert pool.status_of("t1", added.phone_id) is PhoneStatus.PAUSED
    assert pool.status_of("t1", "nope") is None


def test_a_ban_is_in_force_in_the_guardian_before_it_is_recorded(pool, store, guardian):
    """When the append runs, the guardian refuses the phone already."""
    added = pool.add("t1", "+40722123456")
    seen = []
    store.on_append = lambda: seen.append(allowed(guardian, added.phone_id))
    pool.set_status("t1", added.phone_id, PhoneStatus.BANNED, "banned")
    assert seen == [False]


def test_a_change_whose_append_fails_leaves_the_guardian_as_the_log_says(pool, store, guardian):
    """The stricter settings given before the append are taken back from the log."""
    added = pool.add("t1", "+40722123456")

    def crash():
        raise RuntimeError("database went away")

    store.on_append = crash
    with pytest.raises(RuntimeError):
        pool.set_status("t1", added.phone_id, PhoneStatus.BANNED, "banned")
    assert pool.status_of("t1", added.phone_id) is PhoneStatus.ACTIVE
    assert allowed(guardian, added.phone_id)


def test_a_change_the_guardian_cannot_be_told_of_is_not_recorded(pool, store, guardian):
    """Fail closed: a ban the guardian might not enforce is not recorded as done."""
    added = pool.add("t1", "+40722123456")
    guardian.down = True
    with pytest.raises(ConnectionError):
        pool.set_status("t1", added.phone_id, PhoneStatus.BANNED, "banned")
    assert store.stream_version("t1", phone_stream(added.phone_id)) == 1


def test_a_writer_that_finishes_last_leaves_the_latest_settings_in_the_guardian(
    world, pool, store, guardian
):
    """A ban that lands between this change's append and its guardian update wins in the end."""
    added = pool.add("t1", "+40722123456")
    pool.set_status("t1", added.phone_id, PhoneStatus.PAUSED, "maintenance")
    other = PhonePool(world.store, world.db, guardian, SimulatedClock(T0, speed=0))

    def ban() -> None:
        other.set_status("t1", added.phone_id, PhoneStatus.BANNED, "banned")

    # Armed by our append: the ban runs whole right before our guardian update.
    store.on_append = lambda: setattr(guardian, "before_set", ban)
    pool.set_status("t1", added.phone_id, PhoneStatus.ACTIVE, "back")
    assert pool.status_of("t1", added.phone_id) is PhoneStatus.BANNED
    assert not allowed(guardian, added.phone_id)


def test_a_concurrent_writer_makes_the_change_decide_again(world, pool, store, guardian):
    """A conflict re-reads the phone and decides on it: both changes are kept."""
    added = pool.add("t1", "+40722123456")
    other = PhonePool(world.store, world.db, guardian, SimulatedClock(T0, speed=0))
    store.on_append = lambda: other.change_settings("t1", added.phone_id, daily_limit=50)
    change = pool.set_status("t1", added.phone_id, PhoneStatus.PAUSED, "maintenance")
    assert (change.after.status, change.after.daily_limit, change.after.version) == (
        "PAUSED",
        50,
        3,
    )


def test_a_phone_that_keeps_conflicting_gives_up_with_the_conflict(world, pool, store, guardian):
    """Past its attempts the change raises ConcurrencyConflict and records nothing of its own."""
    added = pool.add("t1", "+40722123456")
    other = PhonePool(world.store, world.db, guardian, SimulatedClock(T0, speed=0))
    labels = iter(range(100))

    def interfere():
        store.on_append = interfere
        other.change_settings("t1", added.phone_id, label=f"l{next(labels)}")

    store.on_append = interfere
    with pytest.raises(ConcurrencyConflict):
        pool.set_status("t1", added.phone_id, PhoneStatus.PAUSED, "maintenance")
    store.on_append = None
    assert pool.status_of("t1", added.phone_id) is PhoneStatus.ACTIVE


def test_a_bad_health_check_pauses_the_phone_in_the_guardian_too(pool, guardian):
    """A disconnect reported by the provider stops the phone's sends."""
    added = pool.add("t1", "+40722123456")
    change = pool.record_health_check("t1", added.phone_id, connected=False, reputation=70)
    assert change.after.status == "PAUSED"
    assert change.after.status_reason == "health check: disconnected"
    assert (change.after.reputation, change.after.connected) == (70, False)
    assert not allowed(guardian, added.phone_id)
    [listed] = pool.list("t1")
    assert listed.last_health_check_at == T0


def test_unknown_phones_are_refused_by_name(pool):
    """Neither an id nor a number of the pool: UnknownPhone, with what was given."""
    pool.add("t1", "+40722123456")
    with pytest.raises(UnknownPhone, match=r"\+40744000111 is not in the pool"):
        pool.set_status("t1", "0744 000 111", PhoneStatus.PAUSED, "r")
    with pytest.raises(UnknownPhone, match="'bogus'"):
        pool.set_status("t1", "bogus", PhoneStatus.PAUSED, "r")


def test_the_guardian_is_restored_with_the_days_new_conversations(world, pool):
    """A fresh guardian learns the phones and counts what the database knows was started."""
    added = pool.add("t1", "+40722123456", warmup_started=None)
    pool.add("t1", "+40744000111", status=PhoneStatus.PAUSED)
    for i in range(3):
        lead = world.lead(f"lead-{i}")
        lead.queue("m1", phone=added.phone_id)
        if i == 0:
            lead.send("m1")
    cancelled = world.lead("lead-3")
    cancelled.queue("m1", phone=added.phone_id)
    cancelled.do(c.CancelMessage, message_id="m1", reason="closed")
    world.project()
    settings, usage = pool.phone_source("t1")
    assert {s.phone_id: s.status for s in settings} == {
        added.phone_id: PhoneStatus.ACTIVE,
        pool.resolve("t1", "+40744000111"): PhoneStatus.PAUSED,
    }
    assert usage == {(added.phone_id, TODAY): 4}
    fresh = MemoryQuotaGuardian()
    restored = PhonePool(world.store, world.db, fresh, SimulatedClock(T0, speed=0))
    assert restored.sync_guardian() == 2
    assert fresh.usage("t1", added.phone_id, TODAY) == 4
    assert [p.used_today for p in restored.list("t1")] == [4, 0]


def test_a_change_made_while_the_guardian_loads_is_not_lost(world, pool, guardian):
    """A ban committed between the start-up read and the load is set again after it."""
    added = pool.add("t1", "+40722123456")
    other = PhonePool(world.store, world.db, MemoryQuotaGuardian(), SimulatedClock(T0, speed=0))
    guardian.before_load = lambda: other.set_status(
        "t1", added.phone_id, PhoneStatus.BANNED, "banned"
    )
    pool.sync_guardian("t1")
    assert not allowed(guardian, added.phone_id)


def test_yesterdays_messages_are_not_todays_usage(world, pool):
    """The restore counts the local day only."""
    added = pool.add("t1", "+40722123456")
    lead = world.lead("lead-1", at=T0 - timedelta(days=1))
    lead.queue("m1", phone=added.phone_id)
    lead.send("m1")
    world.project()
    assert pool.phone_source("t1")[1] == {}
