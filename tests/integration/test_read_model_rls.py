"""Row-level security on every read-model table: a tenant sees and writes only its own rows."""

from __future__ import annotations

import psycopg
import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.projections import ALL_PROJECTIONS, FOLLOWER_PROJECTIONS
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.enums import Channel, Priority, ReviewReason

from projection_support import T0, Lead
from read_model_backends import open_backend, wait_until_visible

pytestmark = pytest.mark.postgres

TABLES = sorted({t for p in ALL_PROJECTIONS for t in p.tables})


@pytest.fixture
def backend(request, tmp_path):
    with open_backend("postgres", request, tmp_path) as b:
        total = 0
        for tenant in ("t0", "t1"):
            lead = Lead(b.app, tenant=tenant, lead_id="lead-1")
            lead.queue("m1", Channel.WHATSAPP, phone="p1")
            lead.send("m1")
            lead.do(c.RequestReview, reason=ReviewReason.MANUAL_FLAG, priority=Priority.LOW)
            lead.do(c.Pause, by="ana")
            total += len(lead.events)
            pool = PhonePool(b.app, b.db, MemoryQuotaGuardian(), SimulatedClock(T0, speed=0))
            pool.add(tenant, "+40722123456")  # the same number: each tenant has its own pool
            total += 1
        wait_until_visible(b.follower, total)
        Projector(b.follower, b.db, FOLLOWER_PROJECTIONS).catch_up()
        yield b


def test_the_application_role_sees_only_its_tenants_rows(backend):
    """Bound to t0, cerniq_app reads t0's rows of every read model and none of t1's."""
    app = PostgresReadModels(backend.url, role="cerniq_app")
    try:
        with app.transaction("t0") as tx:
            for table in TABLES:
                found = tx.fetchall(f"SELECT DISTINCT tenant_id FROM {table}")  # noqa: S608
                assert [r["tenant_id"] for r in found] == ["t0"], table
        with app.transaction() as tx:  # no tenant bound: fails closed
            for table in TABLES:
                assert tx.fetchall(f"SELECT 1 FROM {table}") == [], table  # noqa: S608
    finally:
        app.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE gold_lead_journey SET tenant_id = 't1' WHERE lead_id = 'lead-1'",
        "UPDATE wa_phone_numbers SET tenant_id = 't1' WHERE phone_number = '+40722123456'",
    ],
)
def test_the_application_role_cannot_write_into_another_tenant(backend, statement):
    """WITH CHECK refuses a row of t1 written by a transaction bound to t0."""
    app = PostgresReadModels(backend.url, role="cerniq_app")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), app.transaction("t0") as tx:
            tx.execute(statement)
    finally:
        app.close()


def test_checkpoints_belong_to_followers_only(backend):
    """The application role has no business with projector checkpoints; followers do."""
    app = PostgresReadModels(backend.url, role="cerniq_app")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), app.transaction("t0") as tx:
            tx.fetchall("SELECT * FROM projector_checkpoints")
    finally:
        app.close()
    with backend.db.transaction() as tx:
        names = {r["name"] for r in tx.fetchall("SELECT name FROM projector_checkpoints")}
    assert names == {p.name for p in FOLLOWER_PROJECTIONS}
    with backend.db.transaction() as tx:
        for table in TABLES:
            found = tx.fetchall(f"SELECT DISTINCT tenant_id FROM {table}")  # noqa: S608
            assert sorted(r["tenant_id"] for r in found) == ["t0", "t1"], table
