"""The phone pool on SQLite and PostgreSQL (as the application role), and with the Redis guardian.

Numbers are unique per tenant even when added concurrently, each tenant sees only its own
pool, the read model rebuilds from the log, and a guardian that lost its state (a restarted
process, an emptied Redis) is restored from the database.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.adapters.quota.redis_guardian import RedisQuotaGuardian
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.application.phone_directory import PhoneQuotaSource
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.projections import ALL_PROJECTIONS, FOLLOWER_PROJECTIONS, PHONES
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.application.replay import rebuild, verify
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.errors import PhoneAlreadyInPool
from cerniq_outreach.domain.events import phone_stream

import services
from projection_support import T0, Lead, snapshot, sqlite_read_models
from read_model_backends import open_backend, wait_until_visible

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TODAY = date(2026, 3, 2)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    with open_backend(request.param, request, tmp_path) as b:
        yield b


@contextmanager
def app_read_models(backend):
    """The read models as the application sees them: one tenant per transaction (RLS)."""
    if backend.name == "sqlite":
        yield backend.db
        return
    db = PostgresReadModels(backend.url, role="cerniq_app")
    try:
        yield db
    finally:
        db.close()


def new_pool(backend, read_models, guardian=None) -> PhonePool:
    guardian = guardian or MemoryQuotaGuardian()
    return PhonePool(backend.app, read_models, guardian, SimulatedClock(T0, speed=0))


def test_add_list_and_set_status_as_the_application(backend):
    """The application role adds, lists and changes phones; each tenant sees its own pool."""
    with app_read_models(backend) as db:
        pool = new_pool(backend, db)
        first = pool.add("t1", "0722 123 456", label="Vânzări", account_id="acc-1")
        pool.add("t1", "+40744000111", warmup_started=None)
        other = pool.add("t2", "+40722123456")
        assert other.phone_id != first.phone_id
        change = pool.set_status("t1", "+40 722 123 456", PhoneStatus.BANNED, "banned")
        assert change.after.status == "BANNED"
        listed = pool.list("t1")
        assert [(p.number, p.status) for p in listed] == [
            ("+40722123456", "BANNED"),
            ("+40744000111", "ACTIVE"),
        ]
        assert [p.limit_today for p in listed] == [20, 200]
        assert [p.phone_id for p in pool.list("t2")] == [other.phone_id]
        with pytest.raises(PhoneAlreadyInPool):
            pool.add("t1", "0040722123456")


def test_concurrent_adds_of_one_number_let_exactly_one_in(backend):
    """Racing registrations of one number meet on its stream: one wins, the rest are refused."""
    with app_read_models(backend) as db:
        pool = new_pool(backend, db)

        def add(i: int) -> str:
            try:
                return pool.add("t1", "+40722123456", label=f"try {i}").phone_id
            except PhoneAlreadyInPool:
                return "refused"

        with ThreadPoolExecutor(max_workers=6) as executor:
            results = list(executor.map(add, range(6)))
        assert results.count("refused") == 5
        assert len(pool.list("t1")) == 1
        [won] = [r for r in results if r != "refused"]
        assert backend.app.stream_version("t1", phone_stream(won)) == 1


def test_concurrent_changes_leave_the_guardian_with_the_logs_last_word(backend):
    """Status changes racing on one phone: the guardian ends where the log ends."""
    guardian = MemoryQuotaGuardian()
    with app_read_models(backend) as db:
        pool = new_pool(backend, db, guardian)
        phone_id = pool.add("t1", "+40722123456").phone_id
        statuses = list(PhoneStatus) * 3

        def change(i: int) -> None:
            pool.set_status("t1", phone_id, statuses[i], f"change {i}")

        with ThreadPoolExecutor(max_workers=4) as executor:
            list(executor.map(change, range(len(statuses))))
        final = pool.status_of("t1", phone_id)
        assert guardian._ledgers["t1"].phones[phone_id].status is final


def test_the_phones_read_model_rebuilds_equal_to_the_live_one(backend):
    """Dropped and folded again from the log, wa_phone_numbers is as it was; verify agrees."""
    total = 0
    with app_read_models(backend) as db:
        pool = new_pool(backend, db)
        for tenant in ("t1", "t2"):
            phone_id = pool.add(tenant, "+40722123456").phone_id
            pool.change_settings(tenant, phone_id, daily_limit=120, label="x")
            pool.record_health_check(tenant, phone_id, connected=True, reputation=35)
            pool.set_status(tenant, phone_id, PhoneStatus.ACTIVE, "checked by hand")
            total += 5
    wait_until_visible(backend.follower, total)
    before = snapshot(backend.db, [PHONES])
    assert len(before["wa_phone_numbers"]) == 2
    rebuild(backend.follower, backend.db, [PHONES], batch=3)
    assert snapshot(backend.db, [PHONES]) == before
    assert verify(backend.follower, backend.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []


def test_a_restarted_guardian_is_restored_for_every_tenant(backend):
    """Start-up sync (across tenants, as a follower): phones and the day's new conversations."""
    with app_read_models(backend) as db:
        pool = new_pool(backend, db)
        phones = {
            t: pool.add(t, "+40722123456", warmup_started=None).phone_id for t in ("t1", "t2")
        }
    total = 2
    for i in range(3):
        lead = Lead(backend.app, tenant="t1", lead_id=f"lead-{i}")
        lead.queue("m1", phone=phones["t1"])
        lead.send("m1")
        total += len(lead.events)
    wait_until_visible(backend.follower, total)
    Projector(backend.follower, backend.db, FOLLOWER_PROJECTIONS).catch_up()
    fresh = MemoryQuotaGuardian()
    restarted = PhonePool(backend.app, backend.db, fresh, SimulatedClock(T0, speed=0))
    assert restarted.sync_guardian() == 2
    assert fresh.usage("t1", phones["t1"], TODAY) == 3
    assert fresh.usage("t2", phones["t2"], TODAY) == 0


@pytest.mark.redis
def test_the_redis_guardian_reloads_a_lost_tenant_from_the_pool(backend, redis_url, redis_prefix):
    """Redis emptied: the next decision reloads phones and today's usage from the database."""
    prefix = f"{redis_prefix}{services.new_token()}:"
    with app_read_models(backend) as db:
        clock = SimulatedClock(T0, speed=0)
        source = PhoneQuotaSource(db, clock)
        guardian = RedisQuotaGuardian(redis_url, prefix=prefix, phone_source=source)
        try:
            pool = PhonePool(backend.app, db, guardian, clock)
            phone_id = pool.add("t1", "+40722123456", daily_limit=2, warmup_started=None).phone_id
            for i in range(2):
                answer = guardian.reserve("t1", phone_id=None, lead_id=f"l{i}", cost=1, at=T0)
                assert answer.decision.phone_id == phone_id
                Lead(backend.app, tenant="t1", lead_id=f"l{i}").queue("m1", phone=phone_id)
            client = services.redis_client(redis_url)
            try:
                assert services.delete_prefixed_keys(client, services.escape_glob(prefix) + "*")
            finally:
                client.close()
            refused = guardian.reserve("t1", phone_id=None, lead_id="l9", cost=1, at=T0)
            assert not refused.decision.allowed
            assert refused.decision.reason == "QUOTA_EXCEEDED"
            assert guardian.usage("t1", phone_id, TODAY) == 2
        finally:
            guardian.close()
