"""The personal-data vault contract, written once and run against every backend.

Memory, SQLite and PostgreSQL must behave alike: a sealed blob opens only for its own
tenant and lead, reads as erased (None) once the key is destroyed, and never carries the
plaintext. PostgreSQL adds row-level security on the key table.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.adapters.vault import (
    FORMAT_VERSION,
    MemoryVault,
    PostgresVault,
    SealedDataError,
    SqliteVault,
)

PERSONAL = {"company.name": "Agro Verde SRL", "company.phone": "+40722123456"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class VaultContract:
    """Behaviour every PersonalDataVault must show; subclasses provide `make_vault`."""

    def make_vault(self):
        raise NotImplementedError

    @pytest.fixture
    def vault(self):
        vault = self.make_vault()
        yield vault
        vault.close()

    @pytest.fixture
    def tenant(self):
        return new_id("tenant")

    @pytest.fixture
    def lead(self):
        return new_id("lead")

    def test_sealed_fields_open_again_for_their_lead(self, vault, tenant, lead):
        """What was sealed for a lead opens to the same fields for that lead."""
        sealed = vault.seal(tenant, lead, PERSONAL)
        assert vault.open(tenant, lead, sealed) == PERSONAL

    def test_sealed_bytes_hold_no_plaintext(self, vault, tenant, lead):
        """No personal value, nor any recognisable part of one, is readable in the blob."""
        sealed = vault.seal(tenant, lead, PERSONAL)
        assert sealed[0] == FORMAT_VERSION
        for value in PERSONAL.values():
            assert value.encode() not in sealed
            assert value[:6].encode() not in sealed
        assert b"company" not in sealed

    def test_each_seal_uses_a_fresh_nonce(self, vault, tenant, lead):
        """Sealing the same fields twice gives different blobs that both open."""
        first, second = vault.seal(tenant, lead, PERSONAL), vault.seal(tenant, lead, PERSONAL)
        assert first != second
        assert vault.open(tenant, lead, first) == vault.open(tenant, lead, second) == PERSONAL

    def test_a_blob_moved_to_another_lead_does_not_open(self, vault, tenant, lead):
        """A blob copied onto another lead's event fails loudly, never shows the wrong person."""
        other = new_id("lead")
        vault.seal(tenant, other, {"company.name": "Alt SRL"})  # the other lead has a key
        sealed = vault.seal(tenant, lead, PERSONAL)
        with pytest.raises(SealedDataError):
            vault.open(tenant, other, sealed)

    def test_a_blob_moved_to_another_tenant_does_not_open(self, vault, tenant, lead):
        """The same lead id in another tenant is another person: the blob does not open."""
        other_tenant = new_id("tenant")
        vault.seal(other_tenant, lead, {"company.name": "Alt SRL"})
        sealed = vault.seal(tenant, lead, PERSONAL)
        with pytest.raises(SealedDataError):
            vault.open(other_tenant, lead, sealed)

    def test_a_tampered_blob_does_not_open(self, vault, tenant, lead):
        """Flipping one ciphertext bit is detected by the GCM tag."""
        sealed = bytearray(vault.seal(tenant, lead, PERSONAL))
        sealed[-1] ^= 0x01
        with pytest.raises(SealedDataError):
            vault.open(tenant, lead, bytes(sealed))

    def test_an_unknown_format_is_refused(self, vault, tenant, lead):
        """A blob of another format version is an error, not erased data."""
        sealed = vault.seal(tenant, lead, PERSONAL)
        with pytest.raises(SealedDataError):
            vault.open(tenant, lead, bytes((FORMAT_VERSION + 1,)) + sealed[1:])
        with pytest.raises(SealedDataError):
            vault.open(tenant, lead, sealed[:10])

    def test_after_destroy_key_the_blob_reads_as_erased(self, vault, tenant, lead):
        """Once the key is destroyed, open returns None: the data is gone for good."""
        sealed = vault.seal(tenant, lead, PERSONAL)
        assert vault.destroy_key(tenant, lead) is True
        assert vault.open(tenant, lead, sealed) is None

    def test_destroy_key_is_idempotent(self, vault, tenant, lead):
        """Destroying twice, or a lead that never had a key, is not an error: just False."""
        vault.seal(tenant, lead, PERSONAL)
        assert vault.destroy_key(tenant, lead) is True
        assert vault.destroy_key(tenant, lead) is False
        assert vault.destroy_key(tenant, new_id("lead")) is False

    def test_destroy_key_touches_only_that_lead(self, vault, tenant, lead):
        """Erasing one lead leaves the other leads of the tenant readable."""
        other = new_id("lead")
        mine, theirs = vault.seal(tenant, lead, PERSONAL), vault.seal(tenant, other, PERSONAL)
        vault.destroy_key(tenant, lead)
        assert vault.open(tenant, lead, mine) is None
        assert vault.open(tenant, other, theirs) == PERSONAL

    def test_a_new_seal_after_erasure_uses_a_new_key(self, vault, tenant, lead):
        """A person who comes back after erasure gets a new key; the old blobs stay erased."""
        old = vault.seal(tenant, lead, PERSONAL)
        vault.destroy_key(tenant, lead)
        new = vault.seal(tenant, lead, {"company.name": "Agro Verde SRL"})
        assert vault.open(tenant, lead, new) == {"company.name": "Agro Verde SRL"}
        with pytest.raises(SealedDataError):
            vault.open(tenant, lead, old)

    def test_threads_sealing_a_leads_first_event_agree_on_one_key(self, vault, tenant, lead):
        """Racing first seals of one lead all end up with the single stored key."""
        workers = 8
        barrier = threading.Barrier(workers)

        def seal(i: int) -> bytes:
            barrier.wait()  # line every thread up on the key creation
            return vault.seal(tenant, lead, {"company.name": f"n{i}"})

        with ThreadPoolExecutor(workers) as pool:
            blobs = list(pool.map(seal, range(workers)))
        vault.clear_cache()  # read the stored key back, not the one a thread cached
        assert [vault.open(tenant, lead, b) for b in blobs] == [
            {"company.name": f"n{i}"} for i in range(workers)
        ]


class StoredVaultContract(VaultContract):
    """Vaults whose keys outlive the object: another instance (process) shares them."""

    def test_another_instance_opens_what_one_sealed(self, vault, tenant, lead):
        """Keys live in the database: a second process opens a blob the first sealed."""
        sealed = vault.seal(tenant, lead, PERSONAL)
        other = self.make_vault()
        try:
            assert other.open(tenant, lead, sealed) == PERSONAL
            other.destroy_key(tenant, lead)
        finally:
            other.close()
        vault.clear_cache()  # what issue 9's erasure does for the other processes
        assert vault.open(tenant, lead, sealed) is None

    def test_destroy_key_deletes_the_stored_row(self, vault, tenant, lead):
        """Erasure removes the key from storage, not merely from a cache."""
        vault.seal(tenant, lead, PERSONAL)
        assert self.stored_keys(tenant, lead) == 1
        vault.destroy_key(tenant, lead)
        assert self.stored_keys(tenant, lead) == 0

    def stored_keys(self, tenant: str, lead: str) -> int:
        raise NotImplementedError


class TestMemoryVault(VaultContract):
    def make_vault(self):
        return MemoryVault()

    def test_a_blob_is_bound_to_its_lead_even_if_a_key_were_shared(self, vault, tenant, lead):
        """The associated data names tenant and lead: a copied key row still opens nothing."""
        other = new_id("lead")
        sealed = vault.seal(tenant, lead, PERSONAL)
        vault._keys[(tenant, other)] = vault._keys[(tenant, lead)]  # a key row copied by mistake
        with pytest.raises(SealedDataError):
            vault.open(tenant, other, sealed)


class TestSqliteVault(StoredVaultContract):
    @pytest.fixture(autouse=True)
    def database(self, tmp_path):
        self.path = tmp_path / "vault.db"
        migrate(f"sqlite:///{self.path}")

    def make_vault(self):
        return SqliteVault(self.path)

    def stored_keys(self, tenant: str, lead: str) -> int:
        with sqlite3.connect(self.path) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM personal_data_keys WHERE tenant_id = ? AND lead_id = ?",
                (tenant, lead),
            ).fetchone()
        return int(count)


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url):
    """This run's PostgreSQL database with every migration applied."""
    migrate(postgres_url)
    return postgres_url


@pytest.mark.postgres
class TestPostgresVault(StoredVaultContract):
    @pytest.fixture(autouse=True)
    def database(self, migrated_postgres_url):
        self.url = migrated_postgres_url

    def make_vault(self):
        return PostgresVault(self.url)

    def stored_keys(self, tenant: str, lead: str) -> int:
        # As the owner: row-level security does not hide rows from the test's own count.
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM personal_data_keys WHERE tenant_id = %s AND lead_id = %s",
                (tenant, lead),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def as_role(self, role: str, tenant: str | None):
        conn = psycopg.connect(self.url)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if tenant is not None:
            conn.execute("SELECT set_config('cerniq.tenant_id', %s, true)", (tenant,))
        return conn

    def test_the_application_role_sees_only_its_tenants_keys(self, vault, tenant, lead):
        """Under cerniq_app, a transaction bound to one tenant sees none of another's keys."""
        other_tenant = new_id("tenant")
        vault.seal(tenant, lead, PERSONAL)
        vault.seal(other_tenant, lead, PERSONAL)
        query = "SELECT tenant_id FROM personal_data_keys WHERE lead_id = %s"
        with self.as_role("cerniq_app", tenant) as conn:
            assert conn.execute(query, (lead,)).fetchall() == [(tenant,)]
        with self.as_role("cerniq_app", None) as conn:
            assert conn.execute(query, (lead,)).fetchall() == []

    def test_the_application_role_cannot_write_another_tenants_key(self, tenant, lead):
        """Bound to one tenant, cerniq_app cannot insert a key row for another tenant."""
        with self.as_role("cerniq_app", tenant) as conn, pytest.raises(psycopg.Error):
            conn.execute(
                "INSERT INTO personal_data_keys (tenant_id, lead_id, key) VALUES (%s, %s, %s)",
                (new_id("tenant"), lead, bytes(32)),
            )

    def test_the_follower_role_reads_every_tenant_but_writes_none(self, vault, tenant, lead):
        """Followers decode every tenant's events, so they read all keys; they make none."""
        other_tenant = new_id("tenant")
        sealed = vault.seal(tenant, lead, PERSONAL)
        vault.seal(other_tenant, lead, PERSONAL)
        query = "SELECT tenant_id FROM personal_data_keys WHERE lead_id = %s ORDER BY 1"
        with self.as_role("cerniq_follower", None) as conn:
            assert [r[0] for r in conn.execute(query, (lead,))] == sorted([tenant, other_tenant])
        follower = PostgresVault(self.url, role="cerniq_follower")
        try:
            assert follower.open(tenant, lead, sealed) == PERSONAL
            with pytest.raises(psycopg.Error):
                follower.seal(tenant, new_id("lead"), PERSONAL)
        finally:
            follower.close()
