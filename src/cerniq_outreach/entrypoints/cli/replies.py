"""`analyze-reply`: the offline reply analyser over stdin, one JSON reading a line on stdout.

Each input line is a reply text, or, when it starts with `{`, a JSON object with a "text"
key (other keys are ignored, so the shipped `replies.jsonl` pipes in as it is). Blank lines
are skipped. Each reply gives one line `{"label", "score", "confidence", "triggers"}`, plus
`"out_of_office_until"` when an out-of-office reply names its return day. Output streams as
input arrives. A bad line is reported on stderr with its line (and column, for malformed JSON)
and skipped; the rest is still read, and the command then exits 1.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import msgspec

from cerniq_outreach.bootstrap import open_clock
from cerniq_outreach.domain.reply_analysis import ReplyAnalysis, analyse_reply
from cerniq_outreach.entrypoints.cli.base import (
    PROG,
    AwareDateTime,
    Command,
    command_path,
    settings,
)

_json = msgspec.json.Encoder()


class BadLine(ValueError):
    """An input line that holds no reply, with the column of the problem when one is known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


def _zone_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An IANA time zone name, checked as a usage error; None means the settings' zone."""
    del ctx, param
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not an IANA time zone (e.g. Europe/Bucharest)"
        ) from None
    return value


def reply_text(raw: bytes, *, first: bool = False) -> str | None:
    """The reply a raw input line holds: the line, or the "text" of a JSON object line.

    None for a blank line. `first` drops a UTF-8 byte-order mark some editors write.

    Raises:
        BadLine: the line is not UTF-8, or starts with `{` but is not a JSON object with a
            string "text".
    """
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BadLine("not UTF-8 text", exc.start + 1) from None
    if first:
        line = line.removeprefix("\ufeff")
    if not line.lstrip().startswith("{"):
        return line if line.strip() else None
    try:
        decoded: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"malformed JSON: {exc.msg}", exc.colno) from None
    text = decoded.get("text") if isinstance(decoded, dict) else None
    if not isinstance(text, str):
        raise BadLine('a JSON line must be an object with a string "text"')
    return text


def reading(analysis: ReplyAnalysis) -> dict[str, object]:
    """The JSON object written for one reply."""
    out: dict[str, object] = {
        "label": analysis.label.value,
        "score": analysis.score,
        "confidence": analysis.confidence,
        "triggers": sorted(t.value for t in analysis.triggers),
    }
    if analysis.out_of_office_until is not None:
        out["out_of_office_until"] = analysis.out_of_office_until
    return out


@click.command("analyze-reply", cls=Command)
@click.option(
    "--zone",
    callback=_zone_option,
    help="IANA time zone relative return dates are read in (default: CERNIQ_TIMEZONE).",
)
@click.option(
    "--received-at",
    type=AwareDateTime(),
    help="When the replies arrived, for dates like 'luni' or 'next week' (default: now).",
)
def analyze_reply(zone: str | None, received_at: datetime | None) -> None:
    """Classify reply texts read from stdin.

    Reads one text a line (or JSONL objects with a "text" key) and writes one JSON object a
    line: label, score, confidence and triggers, and out_of_office_until when an auto-reply
    says when its writer is back.
    """
    loaded = settings()
    zone = zone or loaded.timezone.key
    at = received_at or open_clock(loaded).now()
    stdin, stdout = sys.stdin.buffer, sys.stdout  # looked up now: test runners swap them
    bad_lines = 0
    for number, raw in enumerate(stdin, start=1):
        try:
            text = reply_text(raw, first=number == 1)
        except BadLine as exc:
            bad_lines += 1
            where = f"line {number}" + (f", column {exc.column}" if exc.column else "")
            _complain(f"{where}: {exc}")
            continue
        if text is None:
            continue
        encoded = _json.encode(reading(analyse_reply(text, received_at=at, zone=zone)))
        stdout.write(encoded.decode() + "\n")
        stdout.flush()  # a reader on a pipe gets each reading as soon as its reply is read
    if bad_lines:
        _complain(f"{bad_lines} bad line{'s' if bad_lines > 1 else ''} skipped")
        click.get_current_context().exit(1)


def _complain(message: str) -> None:
    """One line on stderr, prefixed with the command like every other error."""
    click.echo(f"{PROG} {command_path(click.get_current_context())}: {message}", err=True)


COMMANDS: Final = (analyze_reply,)
