"""Applies `migrations/<dialect>/NNNN_name.sql` in order, once each, recording what ran.

A small runner rather than a library: the schema is plain SQL per dialect, applied in one
transaction per file (PostgreSQL and SQLite both have transactional DDL), under an advisory
lock on PostgreSQL so two `migrate` processes never interleave. Re-running is a no-op.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"
_LOCK_KEY = 7_220_001  # pg advisory lock id for migrations (arbitrary, fixed)


class MigrationError(Exception):
    """A migration file failed; nothing of that file was applied."""


def migration_files(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The dialect's migration files in the order they apply."""
    folder = directory / dialect
    if not folder.is_dir():
        raise MigrationError(f"no migrations folder {folder}")
    return sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply what has not run yet; return the versions applied now."""
    if database_url.startswith("sqlite:///"):
        return migrate_sqlite(sqlite_path(database_url), directory)
    return migrate_postgres(database_url, directory)


def sqlite_path(database_url: str) -> str:
    """The file path of a `sqlite:///path` URL (`sqlite:///:memory:` stays in memory)."""
    return database_url.removeprefix("sqlite:///")


def migrate_postgres(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply PostgreSQL migrations as the connecting (owner) role."""
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in migration_files("postgres", directory):
            version = path.stem
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
                ).fetchone()
                if done:
                    continue
                try:
                    conn.execute(path.read_text(encoding="utf-8").encode())
                except psycopg.Error as exc:
                    raise MigrationError(f"{path.name}: {exc}".strip()) from exc
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied.append(version)
    return applied


def migrate_sqlite(path: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply SQLite migrations to the file at `path` (created if missing)."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return migrate_sqlite_connection(conn, directory)
    finally:
        conn.close()


def migrate_sqlite_connection(
    conn: sqlite3.Connection, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply SQLite migrations on an open autocommit connection (also for `:memory:`)."""
    applied: list[str] = []
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    for path in migration_files("sqlite", directory):
        version = path.stem
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone()
            if not done:
                # executescript would commit on its own; run statements one by one instead.
                for statement in _statements(path.read_text(encoding="utf-8")):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
                applied.append(version)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise MigrationError(f"{path.name}: {exc}") from exc
    return applied


def _statements(script: str) -> list[str]:
    """Split a script on `;` at statement ends (sqlite3.complete_statement decides)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current)
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        statements.append(current)
    return [s for s in statements if _has_sql(s)]


def _has_sql(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )


def reset_database(database_url: str) -> None:
    """Empty the database the URL names and leave it migrated (`demo --reset`).

    SQLite: the file (and its WAL) is deleted and created anew — the log refuses deletes by
    trigger, so a file is the unit of reset. PostgreSQL: every table but the migration
    record is truncated as the connecting (owner) role, positions restarting at 1.
    """
    if database_url.startswith("sqlite:///"):
        path = Path(sqlite_path(database_url))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        migrate_sqlite(str(path))
        return
    migrate_postgres(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables"
                " WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'"
            )
        ]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
