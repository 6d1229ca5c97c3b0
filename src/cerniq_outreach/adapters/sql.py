"""SqlTx adapters over sqlite3 and psycopg, so read-model SQL is written once.

Statements use `:name` parameters (SQLite's native style); for psycopg they are rewritten
to `%(name)s` once per distinct statement and cached.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import psycopg

# `:name` but not `::type` casts (which shared SQL avoids anyway) nor `:` inside strings.
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`:name` parameters to psycopg's `%(name)s` (literal `%` doubled)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


class SqliteTx:
    """SqlTx over an open sqlite3 connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return the rows it changed."""
        return self.conn.execute(sql, dict(params or {})).rowcount

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts."""
        cur = self.conn.execute(sql, dict(params or {}))
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class PsycopgTx:
    """SqlTx over a psycopg connection inside a transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; return the rows it changed."""
        cur = self.conn.execute(to_pyformat(sql), dict(params or {}))
        return cur.rowcount

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts."""
        cur = self.conn.execute(to_pyformat(sql), dict(params or {}))
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
