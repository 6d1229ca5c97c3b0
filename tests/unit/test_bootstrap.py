"""The composition root wires a container, and the event log, from settings."""

from __future__ import annotations

from datetime import UTC, datetime

from cerniq_outreach.adapters.clock import SimulatedClock, SystemClock
from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore, SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.adapters.vault import SqliteVault
from cerniq_outreach.bootstrap import bootstrap, open_event_store
from cerniq_outreach.settings import Settings


def test_bootstrap_uses_the_system_clock_by_default():
    """Without an override the container carries the given settings and the real clock."""
    settings = Settings.from_env({})
    container = bootstrap(settings)
    assert container.settings is settings
    assert isinstance(container.clock, SystemClock)


def test_bootstrap_takes_a_clock_override():
    """The demo and tests can hand in a simulated clock."""
    clock = SimulatedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), speed=0)
    assert bootstrap(Settings(), clock=clock).clock is clock


def test_a_sqlite_url_opens_the_store_read_models_and_vault_on_one_file(tmp_path):
    """`sqlite:///path` wires the SQLite store, its read models and the key vault together."""
    path = tmp_path / "one.db"
    url = f"sqlite:///{path}"
    migrate(url)
    with open_event_store(Settings(database_url=url)) as log:
        store, read_models, vault = log
        assert isinstance(store, SqliteEventStore)
        assert isinstance(read_models, SqliteReadModels)
        assert isinstance(vault, SqliteVault)
        sealed = vault.seal("t1", "lead-1", {"company.name": "Agro"})
        with read_models.transaction() as tx:
            rows = tx.fetchall("SELECT tenant_id, lead_id FROM personal_data_keys")
        assert rows == [{"tenant_id": "t1", "lead_id": "lead-1"}]
    with open_event_store(Settings(database_url=url)) as reopened:
        assert reopened.vault.open("t1", "lead-1", sealed) == {"company.name": "Agro"}
