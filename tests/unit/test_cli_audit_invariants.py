"""`audit invariants` checks an `events export` file or stdin, and says so with its exit code."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from cerniq_outreach.entrypoints.cli import main

CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
# Monday 2 March 2026, 07:30 UTC: 09:30 in Bucharest (open), 07:30 in London (closed).
EARLY_MONDAY = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        monkeypatch.delenv(name)


def row(position: int, stream: str, version: int, event_type: str, **data: Any) -> bytes:
    at = EARLY_MONDAY.isoformat()
    return msgspec.json.encode(
        {
            "global_position": position,
            "tenant_id": "t1",
            "stream_id": stream,
            "stream_version": version,
            "event_type": event_type,
            "occurred_at": at,
            "recorded_at": at,
            "data": data,
        }
    )


def one_step(message: str = "m1") -> list[bytes]:
    """A lead enrolled whose first cold email step is queued and sent at EARLY_MONDAY."""
    company = {"name": "Agro Verde SRL", "email": "office@agro.ro"}
    queued = {"message_id": message, "channel": "EMAIL_COLD", "content_hash": "h"}
    return [
        row(1, "lead-1", 1, "LeadEnrolled", sequence_id="cold", company=company),
        row(2, "lead-1", 2, "MessageQueued", sequence_id="cold", step=1, **queued),
        row(3, "lead-1", 3, "MessageSent", **queued, provider="sandbox", external_id="x"),
    ]


def write(tmp_path, lines: list[bytes]) -> str:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return str(path)


def invoke(args: list[str], *, stdin: bytes | None = None, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(
        main, ["audit", "invariants", *args], input=stdin, prog_name="cerniq-outreach"
    )


def test_a_clean_export_exits_0_with_a_summary(tmp_path):
    """Every rule held: exit 0, no violation lines, a summary and the verdict."""
    result = invoke([write(tmp_path, one_step())])
    assert result.exit_code == 0, result.output
    summary = (
        "audited 3 events (1 tenant, 1 lead, 0 phones, positions 1..3); sent EMAIL_COLD 1; "
        "0 new WhatsApp conversations (busiest phone-day 0); 0 replies"
    )
    assert result.stdout.splitlines() == [summary, "every invariant held"]


def test_violations_are_listed_one_a_line_and_exit_1(tmp_path):
    """Each violation names rule, position, tenant and stream; the verdict counts them."""
    lines = [
        *one_step(),
        row(
            4,
            "lead-1",
            4,
            "MessageSent",
            message_id="m1",
            channel="EMAIL_COLD",
            provider="sandbox",
            external_id="x",
        ),
    ]
    lines.append(row(5, "lead-1", 7, "HumanTookControl", user="ana"))
    result = invoke([write(tmp_path, lines)])
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert out[0] == (
        "ONE_SEND_PER_MESSAGE position=4 tenant=t1 stream=lead-1: message m1 is sent again"
    )
    assert out[1] == "STREAM_ORDER position=5 tenant=t1 stream=lead-1: stream version 7 follows 4"
    assert out[-1] == "2 violations: ONE_SEND_PER_MESSAGE 1, STREAM_ORDER 1"


@pytest.mark.parametrize("args", [["-"], []], ids=["dash", "no file"])
def test_stdin_is_read_with_a_dash_or_no_file(args):
    """`-` or no FILE reads the export from stdin."""
    result = invoke(args, stdin=b"".join(line + b"\n" for line in one_step()))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "every invariant held"


def test_json_prints_one_document_with_the_report(tmp_path):
    """--json prints ok, zone, summary and violations as one JSON document."""
    lines = [
        *one_step(),
        row(4, "lead-1", 4, "StateChanged", from_state="COLD", to_state="NEGOTIATION", reason="x"),
    ]
    result = invoke([write(tmp_path, lines), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["zone"] == "Europe/Bucharest"
    assert document["summary"]["events"] == 4
    assert document["summary"]["violations"] == {"LEGAL_TRANSITIONS": 1}
    [violation] = document["violations"]
    assert violation["rule"] == "LEGAL_TRANSITIONS"
    assert violation["global_position"] == 4
    assert violation["stream_id"] == "lead-1"
    assert "not in the transition table" in violation["detail"]


def test_the_zone_defaults_to_the_configured_time_zone(tmp_path):
    """Business hours are read in CERNIQ_TIMEZONE unless --zone says otherwise."""
    path = write(tmp_path, one_step())
    assert invoke([path]).exit_code == 0  # 09:30 in Bucharest, the default
    london = invoke([path], env={"CERNIQ_TIMEZONE": "Europe/London"})
    assert london.exit_code == 1
    out = london.stdout.splitlines()
    assert out[0].startswith("QUEUED_OUTSIDE_HOURS position=2 tenant=t1 stream=lead-1:")
    assert out[1].startswith("BUSINESS_HOURS position=3 tenant=t1 stream=lead-1:")
    assert "at Mon 2026-03-02 07:30 GMT, outside business hours" in out[1]
    overridden = invoke(
        [path, "--zone", "Europe/Bucharest"], env={"CERNIQ_TIMEZONE": "Europe/London"}
    )
    assert overridden.exit_code == 0


def test_a_malformed_line_is_named_with_line_and_column(tmp_path):
    """A line that is not JSON stops the audit: exit 1, its line and column on stderr."""
    lines = [*one_step()[:2], b'{"global_position": 3,, }']
    result = invoke([write(tmp_path, lines)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"cerniq-outreach audit invariants: {tmp_path / 'export.jsonl'}: line 3, column 23: "
        "JSON is malformed"
    )


def test_a_row_whose_data_does_not_fit_its_type_names_the_line():
    """A well-formed line with impossible data is an input error naming its line."""
    lines = one_step()
    lines[1] = lines[1].replace(b'"EMAIL_COLD"', b'"SMS"')
    result = invoke(["-"], stdin=b"\n".join(lines))
    assert result.exit_code == 1
    assert "<stdin>: line 2, global position 2: MessageQueued data:" in result.stderr


@pytest.mark.parametrize(
    "args", [["--zone", "Mars/Olympus_Mons"], ["/no/such/export.jsonl"]], ids=["zone", "file"]
)
def test_a_bad_zone_or_missing_file_is_a_usage_error(args):
    """An unknown zone or a file that does not exist exits 2 with a message."""
    result = invoke(args, stdin=b"")
    assert result.exit_code == 2
    assert "Error:" in result.stderr
