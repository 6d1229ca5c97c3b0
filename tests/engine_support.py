"""Helpers for the engine's end-to-end tests: drive simulated days, then audit the log alone.

`audit_from_export` runs the real CLI (`events export`, then `replay --verify`) against the
store the engine wrote, and checks every invariant of `domain.md` from the export's lines
(`application.invariant_check`), so the proof rests on what an auditor would see.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
from click.testing import CliRunner

from cerniq_outreach.application.invariant_check import InvariantReport, check_jsonl
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.entrypoints.cli import main


def cli(env: dict[str, str], *args: str) -> Any:
    """Run the command line with `env` (the store's URL and friends)."""
    return CliRunner(env=env).invoke(main, list(args), prog_name="cerniq-outreach")


def export_lines(env: dict[str, str]) -> list[str]:
    """Every event of the store, as `events export` prints it."""
    result = cli(env, "events", "export")
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.strip()]


def audit_from_export(
    env: dict[str, str], hours: BusinessHours
) -> tuple[InvariantReport, Counter[str]]:
    """The invariant report of the store's export, and its event counts by type."""
    lines = export_lines(env)
    report = check_jsonl(lines, hours=hours)
    types = Counter(msgspec.json.decode(line)["event_type"] for line in lines)
    return report, types


def describe(report: InvariantReport, limit: int = 20) -> str:
    """The first violations, one a line, for an assertion message."""
    return "\n".join(
        f"{v.rule} {v.stream_id} @{v.global_position}: {v.detail}"
        for v in report.violations[:limit]
    )
