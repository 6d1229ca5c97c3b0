"""The quota guardian contract, written once and run against every adapter.

In-process, Redis (redis-py) and Redis (redis.asyncio, behind a small synchronous facade)
must answer as `domain.quota_ledger` does: the same refusals with the same retry times, the
same phone choice, one count per lead and day, releases that give back once. The example
tests state the rules; `test_the_guardian_answers_exactly_as_the_ledger` drives each
adapter and the ledger side by side through random days, DST changes included.

Monday 2026-03-02 is the reference day: 10:00 in Bucharest is 08:00 UTC (EET).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.adapters.quota.redis_guardian import (
    AsyncRedisQuotaGuardian,
    RedisQuotaGuardian,
)
from cerniq_outreach.domain import quota_ledger
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.errors import InvalidCommand
from cerniq_outreach.domain.quota import WarmupRamp
from cerniq_outreach.domain.quota_ledger import (
    DEFAULT_POLICY,
    PhoneQuotaSettings,
    QuotaLedger,
    QuotaPolicy,
    Reservation,
)

import services

BUCHAREST = ZoneInfo("Europe/Bucharest")
HOURS = DEFAULT_POLICY.hours
MONDAY = date(2026, 3, 2)
ALL_WEEK = frozenset(range(7))
ALWAYS_OPEN = QuotaPolicy(
    hours=BusinessHours(days=ALL_WEEK, opens=time(0), closes=time(23, 59, 59, 999999))
)
T = "tenant-1"


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BUCHAREST).astimezone(UTC)


def phone(phone_id, status=PhoneStatus.ACTIVE, limit=200, warmup=None) -> PhoneQuotaSettings:
    return PhoneQuotaSettings(
        phone_id=phone_id, status=status, daily_limit=limit, warmup_started=warmup
    )


class AsyncFacade:
    """The async guardian behind the synchronous port, on one private event loop."""

    def __init__(self, guardian: AsyncRedisQuotaGuardian) -> None:
        self._guardian = guardian
        self._runner = asyncio.Runner()

    def reserve(self, tenant_id, **kwargs):
        return self._runner.run(self._guardian.reserve(tenant_id, **kwargs))

    def release(self, reservation):
        return self._runner.run(self._guardian.release(reservation))

    def usage(self, tenant_id, phone_id, day):
        return self._runner.run(self._guardian.usage(tenant_id, phone_id, day))

    def set_phone(self, tenant_id, changed):
        self._runner.run(self._guardian.set_phone(tenant_id, changed))

    def load_phones(self, tenant_id, phones, usage=None):
        self._runner.run(self._guardian.load_phones(tenant_id, phones, usage))

    def close(self):
        self._runner.run(self._guardian.aclose())
        self._runner.close()


ADAPTERS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-async", marks=pytest.mark.redis),
]


def guardian_factory(adapter, request):
    """A function making fresh guardians of `adapter` (each Redis one under its own prefix)."""
    if adapter == "memory":
        return lambda policy: MemoryQuotaGuardian(lambda _tenant: policy)
    url, run_prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")

    def make(policy):
        prefix = f"{run_prefix}{services.new_token()}:"
        if adapter == "redis":
            return RedisQuotaGuardian(url, prefix=prefix, policy_for=lambda _tenant: policy)
        return AsyncFacade(
            AsyncRedisQuotaGuardian(url, prefix=prefix, policy_for=lambda _tenant: policy)
        )

    return make


@pytest.fixture(params=ADAPTERS)
def make_guardian(request):
    made = []
    factory = guardian_factory(request.param, request)

    def make(policy=DEFAULT_POLICY, phones=()):
        guardian = factory(policy)
        made.append(guardian)
        guardian.load_phones(T, list(phones))
        return guardian

    yield make
    for guardian in made:
        guardian.close()


def new(guardian, lead, phone_id=None, at=None, cost=1):
    return guardian.reserve(
        T, phone_id=phone_id, lead_id=lead, cost=cost, at=at or local(MONDAY, 10)
    )


def test_a_new_contact_is_allowed_counted_and_reserved(make_guardian):
    """An ACTIVE phone with room allows a new contact, counts it and hands a reservation."""
    guardian = make_guardian(phones=[phone("p1", limit=5)])
    answer = new(guardian, "lead-1", "p1")
    assert answer.decision.allowed
    assert (answer.decision.used, answer.decision.limit, answer.decision.reason) == (1, 5, None)
    assert answer.reservation == Reservation(
        tenant_id=T, phone_id="p1", lead_id="lead-1", day=MONDAY
    )
    assert guardian.usage(T, "p1", MONDAY) == 1


@pytest.mark.parametrize("status", [s for s in PhoneStatus if s is not PhoneStatus.ACTIVE])
def test_an_inactive_phone_is_refused_without_a_retry_time(make_guardian, status):
    """Only an ACTIVE phone sends; an inactive one waits for a human, so no retry_at."""
    guardian = make_guardian(phones=[phone("p1", status=status, limit=5)])
    for cost in (0, 1):
        decision = new(guardian, "lead-1", "p1", cost=cost).decision
        assert (decision.allowed, decision.reason) == (False, QuotaRefusal.PHONE_NOT_ACTIVE)
        assert (decision.used, decision.limit, decision.retry_at) == (0, 5, None)
    night = new(guardian, "lead-1", "p1", at=local(MONDAY, 22)).decision
    assert night.reason is QuotaRefusal.PHONE_NOT_ACTIVE  # status is checked before hours


def test_an_unknown_phone_is_refused_as_not_active(make_guardian):
    """A phone the guardian does not know is refused as not active, used 0 of 0."""
    guardian = make_guardian(phones=[phone("p1")])
    for unknown in ("p9", ""):
        decision = new(guardian, "lead-1", unknown).decision
        assert (decision.allowed, decision.reason) == (False, QuotaRefusal.PHONE_NOT_ACTIVE)
        assert (decision.phone_id, decision.used, decision.limit) == (unknown, 0, 0)


@pytest.mark.parametrize(
    ("at", "retry_at"),
    [
        (local(MONDAY, 18), local(MONDAY + timedelta(days=1), 9)),
        (local(MONDAY, 8, 59), local(MONDAY, 9)),
        (local(date(2026, 3, 7), 12), local(date(2026, 3, 9), 9)),  # Saturday -> Monday
    ],
)
def test_outside_business_hours_is_refused_until_the_next_window(make_guardian, at, retry_at):
    """New contacts and follow-ups alike wait for the next window, named in retry_at."""
    guardian = make_guardian(phones=[phone("p1")])
    for phone_id in ("p1", None):
        for cost in (0, 1):
            decision = new(guardian, "lead-1", phone_id, at=at, cost=cost).decision
            assert decision.reason is QuotaRefusal.OUTSIDE_BUSINESS_HOURS
            assert decision.retry_at == retry_at
    assert guardian.usage(T, "p1", HOURS.local_date(at)) == 0


def test_a_full_phone_refuses_new_contacts_until_the_next_day(make_guardian):
    """Past its limit a phone refuses QUOTA_EXCEEDED, retry at the next day's first window."""
    guardian = make_guardian(phones=[phone("p1", limit=2)])
    assert [new(guardian, f"lead-{i}", "p1").decision.allowed for i in range(3)] == [
        True,
        True,
        False,
    ]
    friday = date(2026, 3, 6)
    for day, next_day in ((MONDAY, MONDAY + timedelta(days=1)), (friday, date(2026, 3, 9))):
        for i in range(3):
            decision = new(guardian, f"{day}-{i}", "p1", at=local(day, 17)).decision
        assert (decision.reason, decision.used, decision.limit) == (
            QuotaRefusal.QUOTA_EXCEEDED,
            2,
            2,
        )
        assert decision.retry_at == local(next_day, 9)
    assert guardian.usage(T, "p1", MONDAY) == 2


def test_the_warm_up_ramp_limits_a_new_number_day_by_day(make_guardian):
    """A warming number is refused WARMUP_LIMIT at its ramp's limit, which rises each day."""
    policy = QuotaPolicy(ramp=WarmupRamp(start=2, ceiling=10, days=5))
    guardian = make_guardian(policy, [phone("p1", warmup=MONDAY)])
    decisions = [new(guardian, f"lead-{i}", "p1").decision for i in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert (decisions[-1].reason, decisions[-1].limit) == (QuotaRefusal.WARMUP_LIMIT, 2)
    assert decisions[-1].retry_at == local(MONDAY + timedelta(days=1), 9)
    tuesday = local(MONDAY + timedelta(days=1), 10)
    assert new(guardian, "lead-9", "p1", at=tuesday).decision.limit == 4  # 2 + 8 * 1 // 4
    guardian.set_phone(T, phone("p1", limit=3, warmup=MONDAY))  # its own limit binds now
    assert new(guardian, "lead-8", "p1", at=tuesday).decision.limit == 3


def test_follow_ups_are_never_refused_for_quota(make_guardian):
    """A follow-up (cost 0) passes a full phone, counts nothing and holds no reservation."""
    guardian = make_guardian(phones=[phone("p1", limit=1), phone("p2", limit=0)])
    new(guardian, "lead-1", "p1")
    for phone_id in ("p1", "p2", None):
        answer = new(guardian, "lead-2", phone_id, cost=0)
        assert answer.decision.allowed
        assert answer.reservation is None
    assert new(guardian, "lead-2", None, cost=0).decision.phone_id == "p1"  # tie: smallest id
    assert guardian.usage(T, "p1", MONDAY) == 1


def test_any_phone_goes_to_the_phone_with_most_quota_left(make_guardian):
    """Without a phone, a lead gets the ACTIVE phone with most quota left, ties to smallest id."""
    guardian = make_guardian(
        phones=[
            phone("p2", limit=3),
            phone("p1", limit=3),
            phone("p0", status=PhoneStatus.PAUSED, limit=9),
        ]
    )
    chosen = [new(guardian, f"lead-{i}").decision.phone_id for i in range(6)]
    assert chosen == ["p1", "p2", "p1", "p2", "p1", "p2"]
    refused = new(guardian, "lead-6").decision
    assert (refused.phone_id, refused.reason) == (None, QuotaRefusal.QUOTA_EXCEEDED)
    assert (refused.used, refused.limit) == (6, 6)  # summed over the ACTIVE phones


def test_any_phone_refusals_name_the_first_failed_check(make_guardian):
    """No ACTIVE phone: PHONE_NOT_ACTIVE; closed: OUTSIDE_BUSINESS_HOURS; all warming: WARMUP."""
    paused = make_guardian(phones=[phone("p1", status=PhoneStatus.BANNED)])
    decision = new(paused, "lead-1").decision
    assert (decision.reason, decision.used, decision.limit) == (
        QuotaRefusal.PHONE_NOT_ACTIVE,
        0,
        0,
    )
    policy = QuotaPolicy(ramp=WarmupRamp(start=1, ceiling=10, days=5))
    warming = make_guardian(policy, [phone("p1", warmup=MONDAY), phone("p2", warmup=MONDAY)])
    new(warming, "lead-1")
    new(warming, "lead-2")
    assert new(warming, "lead-3").decision.reason is QuotaRefusal.WARMUP_LIMIT
    closed = new(warming, "lead-3", at=local(MONDAY, 19)).decision
    assert (closed.reason, closed.used, closed.limit) == (
        QuotaRefusal.OUTSIDE_BUSINESS_HOURS,
        2,
        2,
    )


def test_a_reservation_is_counted_once_per_lead_and_day(make_guardian):
    """Asking again for a lead's new contact the same day counts nothing, even on a full phone."""
    guardian = make_guardian(phones=[phone("p1", limit=1), phone("p2", limit=1)])
    first = new(guardian, "lead-1")
    assert new(guardian, "lead-1") == new(guardian, "lead-1", first.reservation.phone_id)
    assert new(guardian, "lead-1").reservation == first.reservation
    assert new(guardian, "lead-1").decision.used == 1
    assert guardian.usage(T, "p1", MONDAY) + guardian.usage(T, "p2", MONDAY) == 1
    tuesday = MONDAY + timedelta(days=1)
    assert new(guardian, "lead-1", at=local(tuesday, 10)).reservation.day == tuesday


def test_a_release_gives_the_conversation_back_once(make_guardian):
    """Release returns a held reservation's count (True), and a second release does nothing."""
    guardian = make_guardian(phones=[phone("p1", limit=1)])
    reservation = new(guardian, "lead-1", "p1").reservation
    assert guardian.release(reservation)
    assert not guardian.release(reservation)
    assert guardian.usage(T, "p1", MONDAY) == 0
    assert new(guardian, "lead-2", "p1").decision.allowed
    assert not guardian.release(reservation)  # the slot went to another lead


def test_a_reservation_follows_its_lead_off_a_phone_that_left_the_pool(make_guardian):
    """When a lead's phone stops being ACTIVE, its reservation moves and the old count returns."""
    guardian = make_guardian(phones=[phone("p1", limit=2), phone("p2", limit=1)])
    old = new(guardian, "lead-1").reservation
    assert old.phone_id == "p1"
    guardian.set_phone(T, phone("p1", status=PhoneStatus.PAUSED, limit=2))
    moved = new(guardian, "lead-1")
    assert moved.reservation.phone_id == "p2"
    assert (guardian.usage(T, "p1", MONDAY), guardian.usage(T, "p2", MONDAY)) == (0, 1)
    assert not guardian.release(old)
    assert guardian.release(moved.reservation)


def test_usage_is_counted_per_local_day(make_guardian):
    """Counts belong to the local calendar day: 23:30 UTC on Monday counts on Tuesday."""
    guardian = make_guardian(ALWAYS_OPEN, [phone("p1", limit=5)])
    new(guardian, "lead-1", "p1", at=datetime(2026, 3, 2, 21, 59, tzinfo=UTC))
    new(guardian, "lead-2", "p1", at=datetime(2026, 3, 2, 22, 0, tzinfo=UTC))
    new(guardian, "lead-3", "p1", at=datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    assert guardian.usage(T, "p1", MONDAY) == 1
    assert guardian.usage(T, "p1", MONDAY + timedelta(days=1)) == 2
    assert guardian.usage(T, "p9", MONDAY) == 0


def test_load_phones_replaces_the_phones_and_restores_usage_upwards(make_guardian):
    """load_phones drops phones left out and raises counters to at least the given usage."""
    guardian = make_guardian(phones=[phone("p1", limit=3), phone("p2", limit=3)])
    new(guardian, "lead-1", "p1")
    new(guardian, "lead-2", "p1")
    guardian.load_phones(T, [phone("p1", limit=3)], {("p1", MONDAY): 1, ("p3", MONDAY): 2})
    assert guardian.usage(T, "p1", MONDAY) == 2  # never lowered
    assert guardian.usage(T, "p3", MONDAY) == 2
    assert new(guardian, "lead-3", "p2").decision.reason is QuotaRefusal.PHONE_NOT_ACTIVE
    guardian.load_phones(T, [phone("p1", limit=3)], {("p1", MONDAY): 3})
    decision = new(guardian, "lead-3", "p1").decision
    assert (decision.reason, decision.used) == (QuotaRefusal.QUOTA_EXCEEDED, 3)


def test_tenants_do_not_share_phones_or_counters(make_guardian):
    """Two tenants with the same phone ids count and refuse independently."""
    guardian = make_guardian(phones=[phone("p1", limit=1)])
    guardian.load_phones("tenant-2", [phone("p1", limit=1)])
    assert new(guardian, "lead-1", "p1").decision.allowed
    other = guardian.reserve(
        "tenant-2", phone_id="p1", lead_id="lead-2", cost=1, at=local(MONDAY, 10)
    )
    assert other.decision.allowed
    assert other.reservation.tenant_id == "tenant-2"
    assert guardian.usage("tenant-2", "p1", MONDAY) == guardian.usage(T, "p1", MONDAY) == 1
    unknown = guardian.reserve("tenant-3", phone_id=None, lead_id="l", cost=1, at=local(MONDAY, 10))
    assert unknown.decision.reason is QuotaRefusal.PHONE_NOT_ACTIVE


def test_bad_arguments_raise_as_the_model_does(make_guardian):
    """A cost other than 0 or 1 is an invalid command; a naive time is a ValueError."""
    guardian = make_guardian(phones=[phone("p1")])
    with pytest.raises(InvalidCommand):
        new(guardian, "lead-1", "p1", cost=2)
    with pytest.raises(ValueError, match="tz-aware"):
        new(guardian, "lead-1", "p1", at=datetime(2026, 3, 2, 10))  # noqa: DTZ001


# --- the adapter against the model, step by step ---------------------------------------------

PHONES = ["p1", "p2", "p3"]
LEADS = [f"lead-{i}" for i in range(12)]  # enough new contacts a day to fill every phone
STARTS = [  # Monday morning, the two DST weekends of 2026, a Friday afternoon before one
    local(MONDAY, 8, 30),
    local(MONDAY, 11),
    local(date(2026, 3, 28), 22),
    local(date(2026, 10, 24), 23),
    local(date(2026, 10, 23), 16),
]
POLICIES = [
    DEFAULT_POLICY.hours,
    # open through the clock change (03:00-04:00 skipped in March, repeated in October),
    # with an opening that is not on a whole minute
    BusinessHours(days=ALL_WEEK, opens=time(2, 30, 15), closes=time(23, 59, 59)),
    # closing inside the skipped or repeated hour, and a holiday on the Monday after
    BusinessHours(
        days=ALL_WEEK, opens=time(0), closes=time(3, 30), holidays=frozenset({date(2026, 3, 30)})
    ),
]
RAMPS = [WarmupRamp(start=1, ceiling=4, days=4), WarmupRamp(start=2, ceiling=3, days=2)]
WALL_TIMES = [time(0), time(2, 59, 59), time(3), time(3, 30), time(4), time(9), time(17, 59, 59)]
statuses = st.sampled_from([PhoneStatus.ACTIVE] * 4 + [PhoneStatus.PAUSED, PhoneStatus.BANNED])
limits = st.integers(1, 4)
warm_days = st.sampled_from([None, -4, -2, -1, 0, 1])  # day 1 of the ramp, from today
new_phones = st.lists(st.tuples(statuses, limits, warm_days), min_size=3, max_size=3)


class LedgerMachine(RuleBasedStateMachine):
    """Drives an adapter and `quota_ledger` with the same calls; their answers must be equal."""

    make = None  # set by the test: policy -> guardian
    reservations = Bundle("reservations")

    @initialize(
        hours=st.sampled_from(POLICIES),
        ramp=st.sampled_from(RAMPS),
        start=st.sampled_from(STARTS),
        drawn=new_phones,
    )
    def start(self, hours, ramp, start, drawn):
        self.policy = QuotaPolicy(hours=hours, ramp=ramp)
        self.guardian = type(self).make(self.policy)
        self.ledger = QuotaLedger(tenant_id=T)
        self.now = start
        self.load_phones([(PhoneStatus.ACTIVE, limit, warm) for _, limit, warm in drawn], {})

    def teardown(self):
        if hasattr(self, "guardian"):
            self.guardian.close()

    def today(self):
        return self.policy.hours.local_date(self.now)

    def phone_settings(self, phone_id, status, limit, warm):
        warmup = None if warm is None else self.today() + timedelta(days=warm)
        return phone(phone_id, status, limit, warmup)

    def check_reserve(self, phone_id, lead, cost):
        got = self.guardian.reserve(T, phone_id=phone_id, lead_id=lead, cost=cost, at=self.now)
        self.ledger, expected = quota_ledger.reserve(
            self.ledger, phone_id=phone_id, lead_id=lead, cost=cost, at=self.now,
            hours=self.policy.hours, ramp=self.policy.ramp,
        )  # fmt: skip
        assert got == expected
        return multiple() if got.reservation is None else got.reservation

    @rule(
        target=reservations,
        phone_id=st.sampled_from([None, None, *PHONES]),
        leads=st.lists(st.sampled_from(LEADS), min_size=1, max_size=6),
    )
    def new_contacts(self, phone_id, leads):
        """A burst of new contacts, so that phones fill up within a day."""
        reservations = [self.check_reserve(phone_id, lead, 1) for lead in leads]
        return multiple(*(r for r in reservations if isinstance(r, Reservation)))

    @rule(
        target=reservations,
        phone_id=st.sampled_from([None, *PHONES, "p9"]),
        lead=st.sampled_from(LEADS),
        cost=st.sampled_from([0, 1]),
    )
    def reserve(self, phone_id, lead, cost):
        return self.check_reserve(phone_id, lead, cost)

    @rule(reservation=reservations)
    def release(self, reservation):
        self.ledger, expected = quota_ledger.release(self.ledger, reservation)
        assert self.guardian.release(reservation) == expected

    @rule(phone_id=st.sampled_from([*PHONES, "p4"]), status=statuses, limit=limits, warm=warm_days)
    def set_phone(self, phone_id, status, limit, warm):
        changed = self.phone_settings(phone_id, status, limit, warm)
        self.guardian.set_phone(T, changed)
        self.ledger = self.ledger.with_phone(changed)

    @rule(
        drawn=new_phones,
        restored=st.dictionaries(st.sampled_from(PHONES), st.integers(0, 4), max_size=2),
    )
    def load_phones(self, drawn, restored):
        # A phone whose limit is drawn as 1 is left out: the pool loses phones too.
        phones = [
            self.phone_settings(phone_id, status, limit, warm)
            for phone_id, (status, limit, warm) in zip(PHONES, drawn, strict=True)
            if limit > 1 or phone_id == "p1"
        ]
        usage = {(phone_id, self.today()): used for phone_id, used in restored.items()}
        self.guardian.load_phones(T, phones, usage)
        self.ledger = self.ledger.with_phones(phones)
        for (phone_id, day), used in usage.items():
            self.ledger = self.ledger.with_usage(phone_id, day, used)

    @rule(seconds=st.integers(1, 3 * 3600))
    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)

    @rule(wall=st.sampled_from(WALL_TIMES), fold=st.sampled_from([0, 1]))
    def advance_to(self, wall, fold):
        """To the next instant whose Bucharest wall clock reads `wall` (DST gaps and folds)."""
        day = self.now.astimezone(BUCHAREST).date()
        for offset in range(3):
            candidate = datetime.combine(day + timedelta(days=offset), wall, BUCHAREST)
            instant = candidate.replace(fold=fold).astimezone(UTC)
            if instant > self.now:
                self.now = instant
                return

    @invariant()
    def usage_matches(self):
        if not hasattr(self, "guardian"):
            return
        for day in (self.today(), self.today() - timedelta(days=1)):
            for phone_id in (*PHONES, "p4"):
                assert self.guardian.usage(T, phone_id, day) == self.ledger.usage(phone_id, day)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_guardian_answers_exactly_as_the_ledger(adapter, request):
    """Any sequence of sends, releases, phone changes and clock moves answers as the ledger.

    Clock moves cross local midnights and the DST changes; every answer and count is equal.
    """
    machine = type(
        "Machine", (LedgerMachine,), {"make": staticmethod(guardian_factory(adapter, request))}
    )
    current = settings.default
    if adapter == "redis-async":
        # Same scripts, keys and reply parsing as "redis" (shared code), behind a facade that
        # costs an event-loop round per call: a quarter of the runs covers its control flow.
        current = settings(current, max_examples=max(10, current.max_examples // 4))
    run_state_machine_as_test(machine, settings=current)
