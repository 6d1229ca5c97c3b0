"""Personal-data vaults: AES-256-GCM with one key per (tenant, lead), kept apart from the log.

Erasure is crypto-shredding: the log is append-only and copied into backups and exports, so
a person's data cannot be deleted from it; instead their personal fields are sealed with a
key of their own, and erasure deletes the key row. Every copy of the log then holds only
ciphertext nobody can open, while the history keeps its shape.

Sealed format, version 1: one version byte (0x01), a random 12-byte nonce, then the AES-GCM
ciphertext with its 16-byte tag. The associated data binds the blob to its tenant and lead,
so a blob copied onto another lead's event fails to open instead of showing that other
person's data. A random nonce per seal is safe here: a lead's key seals a handful of events
in its life, far below the ~2^32 messages where random 96-bit nonces start to risk a repeat.

Three stores of keys, one behaviour (`tests/contract/test_vault_contract.py`): in memory,
SQLite and PostgreSQL (table `personal_data_keys`, row-level security by tenant).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import sql
from psycopg_pool import ConnectionPool

from cerniq_outreach.application.records import EventStoreError

if TYPE_CHECKING:
    import psycopg

FORMAT_VERSION: Final = 1
NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32  # AES-256

_json = msgspec.json.Encoder()
_personal = msgspec.json.Decoder(dict[str, Any])


class SealedDataError(EventStoreError):
    """A sealed blob does not open with its lead's key: tampered, truncated or moved."""


def associated_data(tenant_id: str, lead_id: str) -> bytes:
    """What a blob is bound to. A JSON array, so no tenant/lead pair can spell another."""
    return _json.encode(("cerniq-personal", FORMAT_VERSION, tenant_id, lead_id))


class KeyedVault(ABC):
    """The sealing and the key cache; subclasses only store keys.

    Thread-safe. Keys are cached per process (a lead's events are sealed and opened many
    times; a database round trip each time would dominate replay). `destroy_key` drops the
    key from this process's cache; another process keeps a key it cached until it restarts
    or calls `clear_cache`, so erasure (issue 9) runs where it can reach them, and what such
    a process seals afterwards opens nowhere, which is what erasure wants anyway.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], AESGCM] = {}
        # Bumped by every destroy_key. A key read from storage is cached only if no destroy
        # ran while it was being read: otherwise a reader racing an erasure could put the
        # erased key back into the cache after destroy_key had removed it.
        self._generation = 0

    # --- the port -----------------------------------------------------------------------

    def seal(self, tenant_id: str, lead_id: str, personal: dict[str, Any]) -> bytes:
        """Encrypt a lead's personal fields, creating the lead's key on first use."""
        cipher = self._cipher(tenant_id, lead_id, create=True)
        if cipher is None:  # pragma: no cover - create=True always yields a key
            raise EventStoreError(f"no key could be made for lead {lead_id}")
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = cipher.encrypt(
            nonce, _json.encode(personal), associated_data(tenant_id, lead_id)
        )
        return bytes((FORMAT_VERSION,)) + nonce + ciphertext

    def open(self, tenant_id: str, lead_id: str, sealed: bytes) -> dict[str, Any] | None:
        """Decrypt a lead's personal fields, or None when the lead's key was destroyed.

        Raises:
            SealedDataError: the blob is not of a known format or does not open with the
                lead's key (tampered, or sealed for another lead).
        """
        sealed = bytes(sealed)  # psycopg hands back memoryview for bytea
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[0] != FORMAT_VERSION:
            raise SealedDataError(f"sealed data of lead {lead_id} is not in a known format")
        cipher = self._cipher(tenant_id, lead_id, create=False)
        if cipher is None:
            return None
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, associated_data(tenant_id, lead_id))
        except InvalidTag:
            raise SealedDataError(
                f"sealed data does not open with the key of lead {lead_id} in tenant "
                f"{tenant_id}: tampered, or sealed for another lead"
            ) from None
        return _personal.decode(plaintext)

    def destroy_key(self, tenant_id: str, lead_id: str) -> bool:
        """Delete the lead's key for good (erasure). True if there was one; idempotent."""
        existed = self._delete_key(tenant_id, lead_id)
        # After the delete, not before: a reader that loaded the key before the delete and
        # caches it now is evicted here; one that loads later finds no key.
        with self._lock:
            self._generation += 1
            self._cache.pop((tenant_id, lead_id), None)
        return existed

    def clear_cache(self) -> None:
        """Forget every cached key (after an erasure done by another process)."""
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def close(self) -> None:  # noqa: B027 - optional hook: only database vaults hold resources
        """Release connections."""

    # --- storage of keys, per backend ---------------------------------------------------

    @abstractmethod
    def _load_key(self, tenant_id: str, lead_id: str) -> bytes | None:
        """The stored key, or None."""

    @abstractmethod
    def _create_key(self, tenant_id: str, lead_id: str, key: bytes) -> bytes:
        """Store `key` unless the lead has one already; return the lead's key either way.

        Two threads sealing a lead's first event race here: both must end up with the one
        key that was stored, or the loser's blob would open with nothing.
        """

    @abstractmethod
    def _delete_key(self, tenant_id: str, lead_id: str) -> bool:
        """Delete the stored key; True if there was one."""

    # --- the cache ----------------------------------------------------------------------

    def _cipher(self, tenant_id: str, lead_id: str, *, create: bool) -> AESGCM | None:
        ident = (tenant_id, lead_id)
        with self._lock:
            cipher = self._cache.get(ident)
            generation = self._generation
        if cipher is not None:
            return cipher
        # Storage is read outside the lock so one slow round trip does not stall every
        # other lead's seal and open; the generation check below keeps the cache honest.
        key = self._load_key(tenant_id, lead_id)
        if key is None:
            if not create:
                # Not cached: a destroyed key is final, but a later seal may create a new
                # one (a person who comes back), and a cached "absent" would hide it.
                return None
            key = self._create_key(tenant_id, lead_id, AESGCM.generate_key(bit_length=256))
        cipher = AESGCM(bytes(key))
        with self._lock:
            if self._generation == generation:
                self._cache[ident] = cipher
        return cipher


class MemoryVault(KeyedVault):
    """Keys in a dict: for the in-memory event store and tests. Same semantics as the rest."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[tuple[str, str], bytes] = {}
        self._keys_lock = threading.Lock()

    def _load_key(self, tenant_id: str, lead_id: str) -> bytes | None:
        with self._keys_lock:
            return self._keys.get((tenant_id, lead_id))

    def _create_key(self, tenant_id: str, lead_id: str, key: bytes) -> bytes:
        with self._keys_lock:
            return self._keys.setdefault((tenant_id, lead_id), key)

    def _delete_key(self, tenant_id: str, lead_id: str) -> bool:
        with self._keys_lock:
            return self._keys.pop((tenant_id, lead_id), None) is not None


class SqliteVault(KeyedVault):
    """Keys in the SQLite file's `personal_data_keys` table (run `migrate` first).

    One autocommit connection shared by all threads behind a lock: SQLite serialises writers
    anyway, keys are cached, and each statement commits on its own, so a key is durable
    before the event that needs it is written.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        super().__init__()
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        # Zero the freed page on DELETE: otherwise a destroyed key's bytes linger in the
        # file until SQLite happens to reuse the page, and could be read back with a hex
        # editor, undoing the erasure.
        self._conn.execute("PRAGMA secure_delete = ON")
        self._conn_lock = threading.Lock()

    def _load_key(self, tenant_id: str, lead_id: str) -> bytes | None:
        with self._conn_lock:
            row = self._conn.execute(
                "SELECT key FROM personal_data_keys WHERE tenant_id = ? AND lead_id = ?",
                (tenant_id, lead_id),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def _create_key(self, tenant_id: str, lead_id: str, key: bytes) -> bytes:
        with self._conn_lock:
            # ON CONFLICT DO NOTHING then SELECT: whoever inserted first wins, everyone
            # reads the winner's key (see KeyedVault._create_key).
            self._conn.execute(
                "INSERT INTO personal_data_keys (tenant_id, lead_id, key) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id, lead_id) DO NOTHING",
                (tenant_id, lead_id, key),
            )
            row = self._conn.execute(
                "SELECT key FROM personal_data_keys WHERE tenant_id = ? AND lead_id = ?",
                (tenant_id, lead_id),
            ).fetchone()
        if row is None:  # pragma: no cover - destroyed between the two statements
            raise EventStoreError(f"the key of lead {lead_id} vanished while being created")
        return bytes(row[0])

    def _delete_key(self, tenant_id: str, lead_id: str) -> bool:
        with self._conn_lock:
            cur = self._conn.execute(
                "DELETE FROM personal_data_keys WHERE tenant_id = ? AND lead_id = ?",
                (tenant_id, lead_id),
            )
        return cur.rowcount > 0

    def close(self) -> None:
        """Close the connection."""
        with self._conn_lock:
            self._conn.close()


class PostgresVault(KeyedVault):
    """Keys in PostgreSQL's `personal_data_keys`, under row-level security.

    Connections switch to `role` (default `cerniq_app`, which owns nothing, so RLS applies)
    and bind each transaction to the tenant with `cerniq.tenant_id`; a follower process
    passes `role="cerniq_follower"`, which may read every tenant's keys but not write them.
    `role=None` keeps the connecting role (migrations, admin tools).
    """

    def __init__(
        self, url: str, role: str | None = "cerniq_app", *, max_connections: int = 4
    ) -> None:
        super().__init__()
        self.role = role
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            configure=self._configure,
            open=True,
            name="cerniq-vault",
        )

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if self.role is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))
            # The pool hands out idle connections: leave none inside a transaction.
            conn.commit()

    def _bind(self, conn: psycopg.Connection[Any], tenant_id: str) -> None:
        # set_config(..., true) is SET LOCAL with a parameter: it ends with the transaction,
        # so a pooled connection never carries one tenant's binding into another's work.
        conn.execute("SELECT set_config('cerniq.tenant_id', %s, true)", (tenant_id,))

    def _load_key(self, tenant_id: str, lead_id: str) -> bytes | None:
        with self._pool.connection() as conn, conn.transaction():
            self._bind(conn, tenant_id)
            row = conn.execute(
                "SELECT key FROM personal_data_keys WHERE tenant_id = %s AND lead_id = %s",
                (tenant_id, lead_id),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def _create_key(self, tenant_id: str, lead_id: str, key: bytes) -> bytes:
        with self._pool.connection() as conn, conn.transaction():
            self._bind(conn, tenant_id)
            # Under READ COMMITTED, a concurrent uncommitted insert of the same lead makes
            # ours wait for it and then do nothing; the SELECT, a new statement, then sees
            # the winner's committed key. No retry loop, no advisory lock.
            conn.execute(
                "INSERT INTO personal_data_keys (tenant_id, lead_id, key) VALUES (%s, %s, %s)"
                " ON CONFLICT (tenant_id, lead_id) DO NOTHING",
                (tenant_id, lead_id, key),
            )
            row = conn.execute(
                "SELECT key FROM personal_data_keys WHERE tenant_id = %s AND lead_id = %s",
                (tenant_id, lead_id),
            ).fetchone()
        if row is None:  # pragma: no cover - destroyed between the two statements
            raise EventStoreError(f"the key of lead {lead_id} vanished while being created")
        return bytes(row[0])

    def _delete_key(self, tenant_id: str, lead_id: str) -> bool:
        with self._pool.connection() as conn, conn.transaction():
            self._bind(conn, tenant_id)
            cur = conn.execute(
                "DELETE FROM personal_data_keys WHERE tenant_id = %s AND lead_id = %s",
                (tenant_id, lead_id),
            )
            return cur.rowcount > 0

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
