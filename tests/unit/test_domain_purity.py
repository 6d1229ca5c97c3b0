"""The domain imports nothing but the standard library and msgspec (style.md, rule 1).

import-linter forbids the I/O libraries by name; this test is the allow-list behind it, so a
new dependency cannot slip into the domain just because nobody thought to forbid it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import cerniq_outreach.domain

DOMAIN = Path(cerniq_outreach.domain.__file__).parent
ALLOWED_THIRD_PARTY = {"msgspec"}
# Standard-library modules that read the clock, randomness without a seed, or do I/O.
FORBIDDEN_STDLIB = {
    "asyncio", "http", "logging", "os", "secrets", "socket", "sqlite3", "subprocess",
    "threading", "time", "urllib",
}  # fmt: skip


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_imports_only_the_standard_library_and_msgspec():
    """Every module of the domain imports the standard library, msgspec, or the domain itself."""
    offenders = {}
    for path in sorted(DOMAIN.rglob("*.py")):
        bad = {
            root
            for root in imported_roots(path) - {"__future__", "cerniq_outreach"}
            if root not in sys.stdlib_module_names and root not in ALLOWED_THIRD_PARTY
        }
        bad |= imported_roots(path) & FORBIDDEN_STDLIB
        if bad:
            offenders[path.name] = sorted(bad)
    assert not offenders


def test_domain_reads_no_clock():
    """No `now()`, `today()` or `utcnow()` in the domain: time comes in as an argument."""
    calls = [
        f"{path.name}:{node.lineno}"
        for path in sorted(DOMAIN.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"now", "today", "utcnow", "time_ns", "monotonic"}
    ]
    assert not calls


def test_domain_imports_only_the_domain_from_the_project():
    """The domain never imports the application, adapters, entrypoints or settings."""
    for path in sorted(DOMAIN.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "cerniq_outreach"
            ):
                assert node.module.startswith("cerniq_outreach.domain"), (
                    f"{path.name}: {node.module}"
                )
