"""The phone pool's rules, for any sequence of changes.

1. The read model is the fold: each `wa_phone_numbers` row is what `domain.phones.evolve`
   makes of the phone's stream, and a rebuild from the log equals the live table.
2. The guardian is in step after every change: it holds exactly the quota settings of the
   phone as the log has it.
3. While a phone moves between two settings, the guardian is given settings that allow no
   more than either (`stricter`): status, limit and warm-up ramp, on any day.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.application.phone_directory import view_of
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.projections import ALL_PROJECTIONS, PHONES
from cerniq_outreach.application.replay import rebuild, verify
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.domain.events import PhoneEvent, phone_stream
from cerniq_outreach.domain.phones import quota_settings, replay, stricter
from cerniq_outreach.domain.quota import DEFAULT_RAMP, PhoneQuotaView, effective_limit
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings

from projection_support import T0, World, snapshot, sqlite_read_models

NUMBERS = ("+40722123456", "+40744000111", "+40264123456")
DAY0 = date(2026, 3, 2)

warmups = st.none() | st.dates(min_value=DAY0 - timedelta(days=30), max_value=DAY0 + timedelta(30))
quota_settings_st = st.builds(
    PhoneQuotaSettings,
    phone_id=st.just("p"),
    status=st.sampled_from(PhoneStatus),
    daily_limit=st.integers(0, 200),
    warmup_started=warmups,
)


@given(a=quota_settings_st, b=quota_settings_st, day=st.dates(DAY0, DAY0 + timedelta(days=40)))
def test_the_stricter_settings_allow_no_more_than_either_side(a, b, day):
    """Rule 3: ACTIVE only when both are; today's limit never above either side's."""
    both = stricter(a, b)

    def limit(s: PhoneQuotaSettings) -> int:
        view = PhoneQuotaView(
            phone_id="p",
            status=s.status,
            daily_limit=s.daily_limit,
            warmup_started=s.warmup_started,
        )
        return effective_limit(view, day, DEFAULT_RAMP)[0]

    if both.status is PhoneStatus.ACTIVE:
        assert a.status is PhoneStatus.ACTIVE
        assert b.status is PhoneStatus.ACTIVE
    assert limit(both) <= min(limit(a), limit(b))


# Each phone is added first (its values drawn), then changed at random; an "add" later on
# is a second registration of a number (refused), and out-of-range values are refused too.
steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(("status", "status", "settings", "health", "health", "wait", "add")),
        st.sampled_from(PhoneStatus),
        st.integers(-5, 205),
        st.none() | st.integers(0, 100),
        st.booleans(),
        warmups,
    ),
    min_size=5,
    max_size=40,
)
adds = st.tuples(
    st.just(0),
    st.just("add"),
    st.sampled_from(PhoneStatus),
    st.integers(0, 200),
    st.none(),
    st.booleans(),
    warmups,
)
sessions = st.builds(
    lambda first, rest: [(i, *first[i][1:]) for i in range(3)] + rest,
    st.lists(adds, min_size=3, max_size=3),
    steps,
)


def play(pool: PhonePool, clock: SimulatedClock, step) -> None:
    """One random change; refused ones (domain errors) change nothing."""
    index, kind, status, limit, reputation, flag, warmup = step
    tenant, number = f"t{index % 2}", NUMBERS[index]
    try:
        match kind:
            case "add":
                pool.add(tenant, number, daily_limit=limit, warmup_started=warmup, status=status)
            case "status":
                pool.set_status(tenant, number, status, "because")
            case "settings":
                label = None if flag else f"label {limit}"
                pool.change_settings(
                    tenant, number, daily_limit=limit, warmup_started=warmup, label=label
                )
            case "health":
                pool.record_health_check(
                    tenant, number, connected=flag, reputation=reputation, ban_warning=not flag
                )
            case _:
                clock.advance(timedelta(hours=1 + (limit % 30)))
    except DomainError:
        pass


@given(session=sessions)
def test_the_read_model_and_the_guardian_follow_the_log(session):
    """Rules 1 and 2, after every step of a random session on three phones in two tenants."""
    world = World()
    guardian = MemoryQuotaGuardian()
    clock = SimulatedClock(T0, speed=0)
    pool = PhonePool(world.store, world.db, guardian, clock)
    for step in session:
        play(pool, clock, step)
        for tenant in ("t0", "t1"):
            for view in pool.directory.phones(tenant):
                records = world.store.read_stream(tenant, phone_stream(view.phone_id))
                phone = replay(r.event for r in records if isinstance(r.event, PhoneEvent))
                assert view == view_of(phone)
                held = guardian._ledgers[tenant].phones[view.phone_id]
                assert held == quota_settings(phone)
    assert verify(world.store, world.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []
    live = snapshot(world.db, [PHONES])
    rebuild(world.store, world.db, [PHONES], batch=3)
    assert snapshot(world.db, [PHONES]) == live
