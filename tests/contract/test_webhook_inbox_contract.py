"""The webhook inbox contract, run against every adapter: the first delivery of an event wins.

In memory, SQLite and PostgreSQL (as the application role, with no tenant bound: the inbox
is written before any tenant is known) answer alike, concurrent deliveries included.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from cerniq_outreach.adapters.eventstore.sqlite_database import SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate_postgres, migrate_sqlite
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.adapters.webhooks.inbox import (
    MemoryWebhookInbox,
    PostgresWebhookInbox,
    SqlWebhookInbox,
)

import services
from projection_support import T0, sqlite_read_models

ADAPTERS = [
    "memory",
    "sqlite",
    "sqlite-file-not-durable",  # the intake's own connections (synchronous = NORMAL)
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres-direct", marks=pytest.mark.postgres),  # PostgresWebhookInbox
]


@pytest.fixture(scope="module")
def postgres_inbox_url(request):
    server = request.getfixturevalue("postgres_server_url")
    with services.fresh_database(server) as url:
        migrate_postgres(url)
        yield url


@pytest.fixture(params=ADAPTERS)
def inbox(request, tmp_path):
    if request.param == "memory":
        yield MemoryWebhookInbox()
    elif request.param == "sqlite":
        yield SqlWebhookInbox(sqlite_read_models())
    elif request.param == "sqlite-file-not-durable":
        path = str(tmp_path / "inbox.db")
        migrate_sqlite(path)
        db = SqliteReadModels(path, durable=False)
        try:
            yield SqlWebhookInbox(db)
        finally:
            db.close()
    elif request.param == "postgres-direct":
        direct = PostgresWebhookInbox(request.getfixturevalue("postgres_inbox_url"))
        try:
            yield direct
        finally:
            direct.close()
    else:
        db = PostgresReadModels(request.getfixturevalue("postgres_inbox_url"), role="cerniq_app")
        try:
            yield SqlWebhookInbox(db)
        finally:
            db.close()


def test_an_identity_is_new_once_per_provider(inbox):
    """True the first time, False after; the same identity from another provider is new."""
    key = f"evt-{services.new_token()}"
    assert inbox.record_once("t1", "resend", key, T0) is True
    assert inbox.record_once("t1", "resend", key, T0 + timedelta(seconds=1)) is False
    assert inbox.record_once(None, "resend", key, T0) is False
    assert inbox.record_once(None, "instantly", key, T0) is True


def test_a_forgotten_identity_is_new_again(inbox):
    """`forget` undoes a record whose job never got queued, so the provider's retry gets in."""
    key = f"evt-{services.new_token()}"
    assert inbox.record_once(None, "timelinesai", key, T0)
    inbox.forget("timelinesai", key)
    assert inbox.record_once(None, "timelinesai", key, T0)
    inbox.forget("timelinesai", "never-seen")  # forgetting the unknown is harmless


def test_concurrent_deliveries_of_one_event_let_exactly_one_in(inbox):
    """Providers retry while the first attempt is in flight: one winner among racing threads."""
    key = f"evt-{services.new_token()}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: inbox.record_once(None, "resend", key, T0), range(16)))
    assert results.count(True) == 1
