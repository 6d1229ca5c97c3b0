"""The log's own commands: migrate the schema, export the events, rebuild the read models."""

from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from cerniq_outreach.adapters.eventstore.serialization import export_data
from cerniq_outreach.adapters.migrations import migrate as apply_migrations
from cerniq_outreach.application.projections import UnknownProjection, projections_named
from cerniq_outreach.application.replay import rebuild
from cerniq_outreach.application.replay import verify as verify_read_models
from cerniq_outreach.bootstrap import scratch_read_models
from cerniq_outreach.domain import personal
from cerniq_outreach.entrypoints.cli.base import (
    AwareDateTime,
    Command,
    Group,
    fail,
    open_log,
    reported_errors,
    settings,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from datetime import datetime

    from cerniq_outreach.application.projector import Progress
    from cerniq_outreach.application.records import RecordedEvent

REDACTED: Final = "[redacted]"
# The keys of one exported line, in this order (interfaces.md, `events export`).
EXPORT_KEYS: Final = (
    "global_position",
    "tenant_id",
    "stream_id",
    "stream_version",
    "event_type",
    "occurred_at",
    "recorded_at",
    "data",
)

# `replay --verify` lists at most this many differences; a broken projection can differ on
# every row, and the count says how bad it is.
_SHOWN_DIFFERENCES: Final = 50

_json = msgspec.json.Encoder()


@click.command(cls=Command)
def migrate() -> None:
    """Apply migrations/ to the configured database.

    Idempotent: migrations already applied are skipped.
    """
    with reported_errors():
        applied = apply_migrations(settings().database_url)
    if not applied:
        click.echo("up to date")
    for version in applied:
        click.echo(f"applied {version}")


@click.group(cls=Group)
def events() -> None:
    """Read the event log."""


@events.command("export")
@click.option("--tenant", metavar="T", help="Only this tenant's events (its id).")
@click.option("--stream", metavar="ID", help="Only this stream (a lead id).")
@click.option(
    "--from-position", type=click.IntRange(min=0), help="First global position (inclusive)."
)
@click.option("--until", type=AwareDateTime(), help="Only events that occurred up to this time.")
@click.option("--redact", is_flag=True, help='Show personal fields as "[redacted]".')
def events_export(
    tenant: str | None,
    stream: str | None,
    from_position: int | None,
    until: datetime | None,
    redact: bool,
) -> None:
    """Write the event log as JSON lines, in global order.

    Each line holds global_position, tenant_id, stream_id, stream_version, event_type,
    occurred_at, recorded_at and data. Personal fields are in clear, or "[erased]" once the
    lead's key was destroyed; --redact hides them.
    """
    # Binary stdout, written in blocks: an export can be millions of lines.
    out = sys.stdout.buffer
    with reported_errors(), open_log() as log:
        records = log.store.export(
            tenant_id=tenant, stream_id=stream, from_position=from_position or 0, until=until
        )
        try:
            write_lines(out, (export_line(r, redact=redact) for r in records))
        except BrokenPipeError:
            # `events export | head`: the reader has what it wanted. Point stdout at devnull
            # so the interpreter's final flush does not raise a second time.
            _silence_stdout()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # no real file descriptor (a test runner's buffer): nothing to flush into a pipe


def export_line(record: RecordedEvent, *, redact: bool = False) -> bytes:
    """One event as the JSON object `events export` prints (without the newline)."""
    event_type = record.event_type
    data = export_data(record.event)
    if redact:
        data = redact_personal(event_type, data)
    line: dict[str, Any] = {
        "global_position": record.global_position,
        "tenant_id": record.tenant_id,
        "stream_id": record.stream_id,
        "stream_version": record.stream_version,
        "event_type": event_type,
        "occurred_at": record.occurred_at,
        "recorded_at": record.recorded_at,
        "data": data,
    }
    return _json.encode(line)


def redact_personal(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every personal value (domain.personal paths) shown as "[redacted]".

    Absent values stay null and erased ones stay "[erased]": neither tells anything about
    the person, and an auditor may want to know which leads were erased.
    """
    public, values = personal.split(event_type, data)
    shown = {
        path: personal.ERASED if value == personal.ERASED else REDACTED
        for path, value in values.items()
    }
    return personal.merge(event_type, public, shown)


def write_lines(out: Any, lines: Iterable[bytes], block: int = 1000) -> None:  # noqa: ANN401 - a binary stream
    """Write newline-terminated lines, `block` at a time, flushing after each block."""
    buffer: list[bytes] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= block:
            out.write(b"\n".join(buffer) + b"\n")
            out.flush()
            buffer.clear()
    if buffer:
        out.write(b"\n".join(buffer) + b"\n")
    out.flush()


@click.command(cls=Command)
@click.option("--tenant", metavar="T", help="Only this tenant's read models (its id).")
@click.option(
    "--projection",
    "projection_names",
    metavar="NAME",
    multiple=True,
    help="Only this read model (repeatable; default: all).",
)
@click.option(
    "--verify", is_flag=True, help="Rebuild into a scratch copy; exit 1 on any difference."
)
def replay(tenant: str | None, projection_names: tuple[str, ...], verify: bool) -> None:
    """Drop and rebuild read models from the event log.

    Without --verify the chosen read models are deleted and folded again from the whole log
    (projectors may keep running meanwhile). With --verify nothing live is touched: the log
    is folded into a scratch copy and compared row by row with the live tables; any
    difference is listed and the command exits 1.
    """
    try:
        chosen = projections_named(projection_names)
    except UnknownProjection as exc:
        raise click.BadParameter(str(exc), param_hint="--projection") from None
    names = ", ".join(p.name for p in chosen)
    # Results are printed after the bar has stopped: the bar redraws stderr in place, and a
    # line on stdout in the middle of it would be torn on a terminal.
    with reported_errors(), open_log() as log, progress_bar("replaying the log") as progress:
        if verify:
            with scratch_read_models() as scratch:
                differences = verify_read_models(
                    log.store,
                    log.read_models,
                    chosen,
                    scratch=scratch,
                    tenant=tenant,
                    progress=progress,
                )
        else:
            handled = rebuild(log.store, log.read_models, chosen, tenant=tenant, progress=progress)
            progress(handled, handled)  # complete the bar even when the log was empty
    if not verify:
        click.echo(f"rebuilt {names} from {handled} events")
        return
    if not differences:
        click.echo(f"verified {names}: the read models match the log")
        return
    for difference in differences[:_SHOWN_DIFFERENCES]:
        click.echo(str(difference))
    if len(differences) > _SHOWN_DIFFERENCES:
        click.echo(f"... and {len(differences) - _SHOWN_DIFFERENCES} more")
    count = len(differences)
    fail(f"{count} difference{'' if count == 1 else 's'} between the read models and the log")


@contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A rich progress bar on stderr (stdout carries the result), as a replay callback.

    The total is shown when the store can count its events, else the bar just counts.
    """
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield report


COMMANDS: Final = (migrate, events, replay)
